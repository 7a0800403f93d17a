#!/usr/bin/python3
"""A synchronous WSGI worker for memward, standard library only: bench/seed's server.

Like a gunicorn sync worker: one connection at a time, "Connection: close" on every
response. It speaks memward's two protocols:

  * socket activation: the listening sockets are inherited at fd 3.. ($LISTEN_FDS,
    $LISTEN_PID must be our own pid);
  * sd_notify: "READY=1" once the app is imported, and "X_REQUESTS=<n>" (cumulative)
    after every request -- sent only once the response is fully written and the
    connection closed, so a boundary check in memward sees exactly the memory the
    request left behind, not the response still in flight.

SIGTERM/SIGINT: finish the request in flight, stop accepting, exit 0 (the listening
socket is shared, so queued connections go to the other workers). SIGQUIT exits at
once. The worker exits by itself when its parent goes away.

Environment: WSGI_APP ("module:callable", default "app:app", imported from this
directory), and whatever the app reads (HEAVY_EVERY, HEAVY_MIB, KEEP_EVERY).
"""

import errno
import importlib
import io
import os
import select
import signal
import socket
import sys
import traceback

SD_LISTEN_FDS_START = 3
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
CLIENT_TIMEOUT = 30.0
REASONS = {200: "OK", 400: "Bad Request", 500: "Internal Server Error"}


def log(msg):
    sys.stderr.write("seed-worker[%d]: %s\n" % (os.getpid(), msg))
    sys.stderr.flush()


def listen_sockets():
    """The inherited listening sockets, like sd_listen_fds(1)."""
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
        s = socket.socket(fileno=fd)
        s.set_inheritable(False)
        s.setblocking(False)            # shared: another worker may win the accept()
        socks.append(s)
    return socks


class Notifier:
    """sd_notify(3) without libsystemd: one datagram per message."""

    def __init__(self):
        addr = os.environ.get("NOTIFY_SOCKET", "")
        self.sock = None
        if not addr or addr[0] not in "/@":
            return
        self.addr = "\0" + addr[1:] if addr[0] == "@" else addr
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.settimeout(1.0)

    def send(self, msg, wait=True):
        """wait=False for cumulative messages: dropped, never queued, when memward's
        queue is full, so the supervisor never slows a request down."""
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


class BadRequest(Exception):
    pass


def read_request(conn):
    """Returns (method, target, version, headers, body) or None if the client left."""
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
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise BadRequest("bad request line")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest("bad header line")
        headers.append((name.strip(), value.strip()))
    length = next((v for n, v in headers if n.lower() == "content-length"), "0")
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        raise BadRequest("bad content-length")
    while len(body) < int(length):
        chunk = conn.recv(min(int(length) - len(body), 65536))
        if not chunk:
            raise BadRequest("truncated body")
        body += chunk
    return method, target, version, headers, body[:int(length)]


def load_app():
    """The WSGI callable named by WSGI_APP (imported once: template.py does it before
    the forks)."""
    module, _, name = os.environ.get("WSGI_APP", "app:app").partition(":")
    return getattr(importlib.import_module(module), name or "app")


class Worker:
    def __init__(self):
        self.app = load_app()
        self.requests = 0
        self.stopping = False
        self.parent = os.getppid()
        self.listeners = listen_sockets()
        self.notifier = Notifier()

        # Signals only set a flag; the wake-up pipe interrupts select().
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self.on_stop)
        signal.signal(signal.SIGINT, self.on_stop)
        signal.signal(signal.SIGQUIT, lambda *_: os._exit(0))

    def on_stop(self, signum, frame):
        self.stopping = True

    def environ(self, conn, req, server):
        method, target, version, headers, body = req
        path, _, query = target.partition("?")
        env = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": str(server[0]),
            "SERVER_PORT": str(server[1]) if len(server) > 1 else "",
            "SERVER_PROTOCOL": version,
            "REMOTE_ADDR": "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        for name, value in headers:
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                env[key] = value
            else:
                env["HTTP_" + key] = value
        return env

    def call_app(self, env):
        """Returns the whole response as bytes (status line, headers, body)."""
        state = {}

        def start_response(status, headers, exc_info=None):
            if exc_info and state:
                raise exc_info[1].with_traceback(exc_info[2])
            state["status"], state["headers"] = status, headers
            return lambda data: chunks.append(data)

        chunks = []
        result = self.app(env, start_response)
        try:
            for data in result:
                chunks.append(data)
        finally:
            if hasattr(result, "close"):
                result.close()
        head = "HTTP/1.1 %s\r\n" % state["status"]
        head += "".join("%s: %s\r\n" % (n, v) for n, v in state["headers"]
                        if n.lower() != "connection")
        head += "Connection: close\r\n\r\n"
        return head.encode("latin-1") + b"".join(chunks)

    def error_response(self, status, text):
        body = (text + "\n").encode()
        return ("HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                "Connection: close\r\n\r\n" % (status, REASONS[status], len(body))).encode() + body

    def serve_connection(self, conn, server):
        """Serves one connection; True when a request was answered."""
        conn.setblocking(True)
        conn.settimeout(CLIENT_TIMEOUT)
        try:
            try:
                req = read_request(conn)
                if req is None:
                    return False        # the client went away without a request
                try:
                    response = self.call_app(self.environ(conn, req, server))
                except Exception:
                    log("app raised:\n" + traceback.format_exc())
                    response = self.error_response(500, "internal server error")
            except BadRequest as e:
                response = self.error_response(400, str(e))
            conn.sendall(response)
            return True
        except OSError as e:
            log("connection: %s" % e)
            return False
        finally:
            try:
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            conn.close()

    def run(self):
        if not self.listeners:
            log("no listening socket: run me under memward (LISTEN_FDS/LISTEN_PID)")
            return 2
        self.notifier.send("READY=1\nSTATUS=serving")
        fds = [self.wake_r] + self.listeners
        servers = {l: l.getsockname() for l in self.listeners}
        while not self.stopping:
            try:
                readable, _, _ = select.select(fds, [], [], 1.0)
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
                if self.serve_connection(conn, servers[listener]):
                    self.requests += 1
                    # After close(): what the worker holds now is what the request left.
                    self.notifier.send("X_REQUESTS=%d" % self.requests, wait=False)
        self.notifier.send("STOPPING=1")
        for listener in self.listeners:
            listener.close()            # our fd only; never shutdown() a shared socket
        return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(Worker().run())
