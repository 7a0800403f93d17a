#!/usr/bin/python3
"""A small memward worker: a synchronous HTTP/1.1 server, standard library only.

It speaks the two protocols memward gives every worker:

  * socket activation: the listening sockets are inherited at fd 3.. ($LISTEN_FDS,
    $LISTEN_PID must be our own pid, $LISTEN_FDNAMES names them);
  * sd_notify: "READY=1" once we accept, "X_REQUESTS=<n>" (cumulative) after every
    request, "WATCHDOG=1" at half of $MEMWARD_WATCHDOG_USEC or $WATCHDOG_USEC,
    "STOPPING=1" when asked to stop.

One request at a time, like a gunicorn sync worker. Every response carries
"Connection: close". On SIGTERM (or SIGINT) the worker finishes the request in
flight, stops calling accept() and exits 0: the listening socket is shared with
the other workers and with memward, so connections still queued in its backlog are
accepted by the other workers rather than dropped. SIGQUIT exits at once.

Endpoints (all GET):
  /                 "worker=<id> pid=<pid> generation=<g> requests=<n> message=<msg>"
  /status           the same as JSON, plus retained memory
  /sleep?ms=N       answers after N milliseconds (holds the worker busy)
  /alloc?mib=N&ms=M allocates N MiB, touches every page and keeps it; answers after M ms
  /free?ms=M        drops everything /alloc kept; answers after M ms
  /spike?mib=N&ms=M allocates N MiB, holds it M ms, frees it, then answers
  /exit?code=N      answers, then exits with code N (a crash, for tests)

Environment knobs (optional): EXAMPLE_MESSAGE (text in the / body),
EXAMPLE_BOOT_DELAY_MS (sleep before READY=1, to simulate a slow start).
"""

import errno
import json
import os
import select
import signal
import socket
import sys
import time
from urllib.parse import parse_qs, urlsplit

SD_LISTEN_FDS_START = 3
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
CLIENT_TIMEOUT = 30.0
MIB = 1024 * 1024
PAGE = 4096


def log(msg):
    sys.stderr.write("worker[%d]: %s\n" % (os.getpid(), msg))
    sys.stderr.flush()


def listen_sockets():
    """Returns the inherited listening sockets, like sd_listen_fds(1)."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    try:
        n = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(key, None)
    socks = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + n):
        s = socket.socket(fileno=fd)    # family and type are read from the fd
        s.set_inheritable(False)
        s.setblocking(False)            # shared: another worker may win the accept()
        socks.append(s)
    return socks


class Notifier:
    """sd_notify(3) without libsystemd: one datagram per message, never blocks."""

    def __init__(self):
        addr = os.environ.get("NOTIFY_SOCKET", "")
        self.sock = None
        if not addr or addr[0] not in "/@":
            return
        if addr[0] == "@":
            addr = "\0" + addr[1:]      # abstract namespace
        self.addr = addr
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.settimeout(1.0)

    def send(self, msg, wait=True):
        """wait=False for messages that the next one supersedes (X_REQUESTS is
        cumulative, WATCHDOG=1 repeats): dropped, not queued, when memward's queue
        is full, so a busy supervisor never slows a request down."""
        if self.sock is None:
            return
        try:
            if wait:
                self.sock.sendto(msg.encode(), self.addr)
            else:
                self.sock.sendto(msg.encode(), socket.MSG_DONTWAIT, self.addr)
        except BlockingIOError:
            pass
        except OSError as e:
            log("sd_notify(%r): %s" % (msg, e))


def watchdog_interval():
    for key in ("MEMWARD_WATCHDOG_USEC", "WATCHDOG_USEC"):
        value = os.environ.get(key)
        if value:
            try:
                usec = int(value)
            except ValueError:
                continue
            if usec > 0:
                return usec / 1e6 / 2
    return None


class Request:
    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        parts = urlsplit(target)
        self.path = parts.path
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}

    def int_arg(self, name, default=0):
        try:
            return max(0, int(self.query.get(name, default)))
        except ValueError:
            return default


class BadRequest(Exception):
    pass


def read_request(conn):
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEADER_BYTES:
            raise BadRequest("header too large")
        chunk = conn.recv(8192)
        if not chunk:
            if buf:
                raise BadRequest("truncated request")
            return None
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise BadRequest("bad request line")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest("bad header line")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length", "0")
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        raise BadRequest("bad content-length")
    remaining = int(length) - len(rest)
    while remaining > 0:                # the body is read and ignored
        chunk = conn.recv(min(remaining, 65536))
        if not chunk:
            raise BadRequest("truncated body")
        remaining -= len(chunk)
    return Request(method, target, version, headers)


def touch(n_bytes):
    buf = bytearray(n_bytes)
    buf[::PAGE] = b"\x01" * len(range(0, n_bytes, PAGE))   # make every page resident
    return buf


class Worker:
    def __init__(self):
        self.worker_id = os.environ.get("MEMWARD_WORKER_ID", "-")
        self.generation = os.environ.get("MEMWARD_WORKER_GENERATION", "-")
        self.message = os.environ.get("EXAMPLE_MESSAGE", "hello")
        self.requests = 0
        self.kept = []
        self.stopping = False
        self.parent = os.getppid()
        self.listeners = listen_sockets()
        self.notifier = Notifier()
        self.watchdog = watchdog_interval()
        self.next_ping = time.monotonic()

        # Signals only set a flag; the wake-up pipe interrupts select().
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self.on_stop)
        signal.signal(signal.SIGINT, self.on_stop)
        signal.signal(signal.SIGQUIT, lambda *_: os._exit(0))

    def on_stop(self, signum, frame):
        self.stopping = True

    def describe(self):
        return {
            "worker": self.worker_id,
            "pid": os.getpid(),
            "generation": self.generation,
            "requests": self.requests,
            "message": self.message,
            "kept_mib": sum(len(b) for b in self.kept) // MIB,
        }

    def handle(self, req):
        """Returns (status, content type, body, action after the response)."""
        if req.method not in ("GET", "HEAD"):
            return 405, "text/plain", "method not allowed\n", None
        if req.path == "/":
            d = self.describe()
            body = "worker=%s pid=%d generation=%s requests=%d message=%s\n" % (
                d["worker"], d["pid"], d["generation"], d["requests"], d["message"])
            return 200, "text/plain", body, None
        if req.path == "/status":
            return 200, "application/json", json.dumps(self.describe()) + "\n", None
        if req.path == "/sleep":
            time.sleep(req.int_arg("ms") / 1000)
            return 200, "text/plain", "slept %d ms in pid %d\n" % (req.int_arg("ms"), os.getpid()), None
        if req.path == "/alloc":
            mib = req.int_arg("mib")
            self.kept.append(touch(mib * MIB))
            time.sleep(req.int_arg("ms") / 1000)
            return 200, "text/plain", "kept %d MiB\n" % self.describe()["kept_mib"], None
        if req.path == "/free":
            self.kept.clear()
            time.sleep(req.int_arg("ms") / 1000)
            return 200, "text/plain", "kept 0 MiB\n", None
        if req.path == "/spike":
            buf = touch(req.int_arg("mib") * MIB)
            time.sleep(req.int_arg("ms") / 1000)
            del buf
            return 200, "text/plain", "spiked %d MiB\n" % req.int_arg("mib"), None
        if req.path == "/exit":
            return 200, "text/plain", "exiting\n", ("exit", req.int_arg("code"))
        return 404, "text/plain", "not found\n", None

    def serve_connection(self, conn):
        conn.setblocking(True)
        conn.settimeout(CLIENT_TIMEOUT)
        action = None
        try:
            try:
                req = read_request(conn)
            except BadRequest as e:
                req, status, ctype, body = None, 400, "text/plain", "%s\n" % e
            else:
                if req is None:
                    return False        # the client went away without a request
                status, ctype, body, action = self.handle(req)
            payload = body.encode()
            reason = {200: "OK", 400: "Bad Request", 404: "Not Found",
                      405: "Method Not Allowed"}[status]
            head = ("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                    "Connection: close\r\nX-Worker-Pid: %d\r\n\r\n"
                    % (status, reason, ctype, len(payload), os.getpid()))
            if req is not None and req.method == "HEAD":
                payload = b""
            conn.sendall(head.encode() + payload)
        except OSError as e:
            log("connection: %s" % e)
        finally:
            try:
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            conn.close()
        if action and action[0] == "exit":
            os._exit(action[1])
        return True

    def ping_watchdog(self):
        if self.watchdog is None:
            return None
        now = time.monotonic()
        if now >= self.next_ping:
            self.notifier.send("WATCHDOG=1", wait=False)
            self.next_ping = now + self.watchdog
        return max(0.0, self.next_ping - now)

    def run(self):
        if not self.listeners:
            log("no listening socket: run me under memward (LISTEN_FDS/LISTEN_PID)")
            return 2
        delay = int(os.environ.get("EXAMPLE_BOOT_DELAY_MS", "0") or 0)
        if delay > 0:
            time.sleep(delay / 1000)
        self.notifier.send("READY=1\nSTATUS=serving")
        fds = [self.wake_r] + self.listeners
        while not self.stopping:
            timeout = self.ping_watchdog()
            if timeout is None or timeout > 1.0:
                timeout = 1.0           # also notice a dead parent within a second
            try:
                readable, _, _ = select.select(fds, [], [], timeout)
            except InterruptedError:
                continue
            if os.getppid() != self.parent:
                log("supervisor went away, exiting")
                return 0
            if self.wake_r in readable:
                try:
                    os.read(self.wake_r, 512)
                except BlockingIOError:
                    pass
            for listener in readable:
                if listener is self.wake_r or self.stopping:
                    continue
                try:
                    conn, _ = listener.accept()
                except OSError as e:
                    if e.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EINTR):
                        continue        # another worker took it
                    raise
                if self.serve_connection(conn):
                    self.requests += 1
                    self.notifier.send("X_REQUESTS=%d" % self.requests, wait=False)
        self.notifier.send("STOPPING=1")
        for listener in self.listeners:
            listener.close()            # our fd only; never shutdown() a shared socket
        return 0


if __name__ == "__main__":
    sys.exit(Worker().run())
