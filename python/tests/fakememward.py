"""The test plays memward: a child subreaper that starts a template as memward would
(docs/fork-server.md section 1) and talks to it over the control channel.

    become_subreaper()
    with FakeMemward([BIN_GUNICORN, "wsgi_app:app"], cwd=APPS) as mw:
        mw.wait_ready()
        answer = mw.spawn(0, 1, env={"NOTIFY_SOCKET": notify.name})
        ...

Everything it started (template, workers, orphans re-parented to the test) is killed
and reaped when the `with` block ends.
"""

from __future__ import annotations

import array
import ctypes
import errno
import fcntl
import http.client
import json
import os
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from typing import Dict, Iterable, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
APPS = os.path.join(HERE, "apps")
BIN = os.path.join(PYTHON_DIR, "bin")
BIN_GUNICORN = os.path.join(BIN, "memward-gunicorn")
BIN_ASGI = os.path.join(BIN, "memward-asgi")
sys.path.insert(0, PYTHON_DIR)

from memward import protocol  # noqa: E402

# The scripts' own interpreter when there is one: Debian's python3, with its
# gunicorn and uvicorn packages.
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

# Generous: a busy 2-core machine can take seconds to import gunicorn.
TIMEOUT = float(os.environ.get("MEMWARD_PY_TEST_TIMEOUT", "60"))

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphans of our descendants, the workers among them, become our children."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


_HAVE: Dict[str, bool] = {}


def python_has(module: str) -> bool:
    """Whether PYTHON can import `module` (asked once per module)."""
    if module not in _HAVE:
        import subprocess
        _HAVE[module] = subprocess.run([PYTHON, "-c", "import " + module],
                                       stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL).returncode == 0
    return _HAVE[module]


def wait_pid(pid: int, timeout: float) -> Optional[int]:
    """Waits for our child `pid` to exit; its exit code (-N for signal N), or None if it
    is still running after `timeout` seconds."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        pidfd = -1
    try:
        if pidfd >= 0:
            select.select([pidfd], [], [], timeout)
        got, status = os.waitpid(pid, os.WNOHANG)
        if got == 0:
            return None
        return os.waitstatus_to_exitcode(status)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def reap_all() -> None:
    """Reaps every exited child (orphans re-parented to us included)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def proc_status(pid: int) -> Dict[str, str]:
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def smaps_rollup_kb(pid: int) -> Dict[str, int]:
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def signal_bits(*signals: int) -> int:
    bits = 0
    for sig in signals:
        bits |= 1 << (int(sig) - 1)
    return bits


def python_default_ignored() -> int:
    """SigIgn of a freshly started worker: SIGPIPE and SIGXFSZ (CPython's start-up), plus
    whichever signals CPython cannot touch (32 and 33, which glibc reserves) were ignored
    when this test started: those are inherited through fork and exec, and no runtime can
    set them back (a CI runner or a shell may start us with them ignored)."""
    own = int(proc_status(os.getpid())["SigIgn"], 16)
    untouchable = 0
    for sig in range(1, 65):
        if sig not in signal.valid_signals():
            untouchable |= 1 << (sig - 1)
    return signal_bits(signal.SIGPIPE, signal.SIGXFSZ) | (own & untouchable)


def http_get(port: int, path: str = "/", timeout: float = TIMEOUT) -> Tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, json.loads(body) if body.startswith(b"{") else {"raw": body}
    finally:
        conn.close()


def wait_accepted(sock: socket.socket, timeout: float = TIMEOUT) -> None:
    """Returns once a server has accept()ed our TCP connection `sock` (127.0.0.1): its
    end has an inode in /proc/net/tcp, which one still in the listen backlog has not."""
    ours = "%08X:%04X" % (0x0100007F, sock.getsockname()[1])
    peer = "%08X:%04X" % (0x0100007F, sock.getpeername()[1])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == peer and fields[2] == ours and fields[9] != "0":
                    return
        time.sleep(0.01)
    raise AssertionError("no server accepted the connection within %.0f s" % timeout)


def http_on(sock: socket.socket, path: str = "/") -> bytes:
    """Sends one GET with Connection: close on `sock` and returns the whole reply."""
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode())
    reply = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        reply += chunk
    return reply


# <asm-generic/socket.h>; Python's socket module does not name them. The cmsg carries a
# struct timespec of the clock CLOCK_REALTIME.
SO_TIMESTAMPNS = SCM_TIMESTAMPNS = 35


class NotifySocket:
    """A unix datagram socket standing for memward's notify socket, with the sender's
    pid from SCM_CREDENTIALS on every datagram and the time the kernel queued it."""

    def __init__(self, abstract: bool, directory: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if abstract:
            self.name = "@memward-py-test-%d-%s" % (os.getpid(), os.urandom(4).hex())
            self.sock.bind("\0" + self.name[1:])
        else:
            self.name = os.path.join(directory, "notify")
            self.sock.bind(self.name)
        self.received: List[Tuple[int, str]] = []
        self.arrived: List[float] = []      # the kernel's stamp of each of received, seconds

    def _receive(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return False
        data, ancdata, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(16))
        pid, arrived = 0, None
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
            elif level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                sec, nsec = struct.unpack("@ll", payload[:struct.calcsize("@ll")])
                arrived = sec + nsec / 1e9
        if arrived is None:
            raise AssertionError("a datagram without SCM_TIMESTAMPNS")
        self.received.append((pid, data.decode("utf-8", "replace")))
        self.arrived.append(arrived)
        return True

    def wait_for(self, pid: int, line: str, timeout: float = TIMEOUT) -> str:
        """The first datagram from `pid` that has `line` among its lines."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for sender, text in self.received[seen:]:
                if sender == pid and line in text.split("\n"):
                    return text
            seen = len(self.received)
            left = deadline - time.monotonic()
            if left <= 0 or not self._receive(left):
                raise AssertionError("no %r from pid %d in %.0f s; got %r"
                                     % (line, pid, timeout, self.received))

    def gaps(self, pid: int, line: str, seconds: float) -> List[float]:
        """Seconds between consecutive datagrams from `pid` with `line` among their
        lines, sent over the next `seconds`: by when the kernel queued each, so that how
        late this process got to read them (a busy machine) does not count."""
        stamps = []
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._receive(left):
                break
            sender, text = self.received[-1]
            if sender == pid and line in text.split("\n"):
                stamps.append(self.arrived[-1])
        return [round(b - a, 3) for a, b in zip(stamps, stamps[1:])]

    def close(self) -> None:
        self.sock.close()


class FakeMemward:
    """One template started as memward would start it, and the workers it spawned."""

    def __init__(self, argv: List[str], *, cwd: str = APPS, env: Optional[dict] = None,
                 listen_count: int = 1) -> None:
        self.argv = argv
        self.cwd = cwd
        self.extra_env = dict(env or {})
        self.listen_count = listen_count
        self.tmp = tempfile.mkdtemp(prefix="memward-py-test-")
        self.log_path = os.path.join(self.tmp, "template.log")
        self.pid = 0
        self.exit_code: Optional[int] = None
        self.workers: List[int] = []
        self.listeners: List[socket.socket] = []
        self.control: Optional[socket.socket] = None

    # ------------------------------------------------------------ the template

    @property
    def port(self) -> int:
        return self.listeners[0].getsockname()[1]

    def start(self) -> "FakeMemward":
        for _ in range(self.listen_count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            s.listen(128)
            self.listeners.append(s)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control = ours
        control_fd = 3 + self.listen_count
        # Each source fd moved above 100 first, so that no dup2 onto 3... can clobber
        # another source.
        sources = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100)
                   for fd in [s.fileno() for s in self.listeners] + [theirs.fileno()]]
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                            "LISTEN_PID", "LISTEN_FDNAMES", "MEMWARD_GC_FREEZE")}
        env.update({"LISTEN_FDS": str(self.listen_count),
                    "LISTEN_FDNAMES": ":".join(["http"] * self.listen_count),
                    "MEMWARD_CONTROL_FD": str(control_fd),
                    "MEMWARD_TEMPLATE_GENERATION": "1",
                    "MEMWARD_PROTOCOL": "1",
                    "PYTHONUNBUFFERED": "1"})
        env.update(self.extra_env)
        argv = [PYTHON] + self.argv
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                         0o644)
        null_fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        try:
            # fork + exec as memward's spawn does (glibc's posix_spawn would leave its
            # internal signals 32 and 33 ignored in the template). The child only makes
            # system calls before execve.
            pid = os.fork()
            if pid == 0:
                try:
                    os.setpgid(0, 0)
                    for target, fd in enumerate(sources, start=3):
                        os.dup2(fd, target)
                    os.dup2(null_fd, 0)
                    os.dup2(log_fd, 1)
                    os.dup2(log_fd, 2)
                    os.chdir(self.cwd)
                    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
                        signal.signal(sig, signal.SIG_DFL)
                    signal.pthread_sigmask(signal.SIG_SETMASK, ())
                    env["LISTEN_PID"] = str(os.getpid())
                    os.execve(PYTHON, argv, env)
                finally:
                    os._exit(127)
            self.pid = pid
        finally:
            for fd in sources + [log_fd, null_fd]:
                os.close(fd)
            theirs.close()
        return self

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def receive(self, timeout: float = TIMEOUT) -> Optional[protocol.Message]:
        """The template's next message; None at EOF."""
        assert self.control is not None
        ready, _, _ = select.select([self.control], [], [], timeout)
        if not ready:
            raise AssertionError("no message from the template in %.0f s; its log:\n%s"
                                 % (timeout, self.log()))
        data = self.control.recv(protocol.MAX_MESSAGE + 1)
        if not data:
            return None
        return protocol.parse_message(data)

    def wait_ready(self, timeout: float = TIMEOUT) -> protocol.Ready:
        message = self.receive(timeout)
        if not isinstance(message, protocol.Ready):
            raise AssertionError("expected READY, got %r; the template's log:\n%s"
                                 % (message, self.log()))
        return message

    def send_raw(self, data: bytes, fds: Iterable[int] = ()) -> None:
        assert self.control is not None
        fds = list(fds)
        ancdata = ([(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
                   if fds else [])
        self.control.sendmsg([data], ancdata)

    def spawn(self, slot: int = 0, generation: int = 1, env: Optional[dict] = None,
              leaf_fd: Optional[int] = None, timeout: float = TIMEOUT) -> protocol.Message:
        """Sends SPAWN and returns the answer; a SPAWNED pid is tracked for cleanup."""
        request = protocol.Spawn(slot, generation, leaf_fd is not None,
                                 tuple((env or {}).items()))
        self.send_raw(protocol.format_message(request),
                      [leaf_fd] if leaf_fd is not None else [])
        answer = self.receive(timeout)
        if isinstance(answer, protocol.Spawned):
            self.workers.append(answer.pid)
        return answer

    def spawn_placed(self, slot: int = 0, generation: int = 1, env: Optional[dict] = None,
                     errno_: int = 0, before_placed=None, timeout: float = TIMEOUT
                     ) -> Tuple[protocol.Place, protocol.Message]:
        """SPAWN with PLACE=1: receives the template's PLACE, calls before_placed(place)
        (where memward would move the pid), answers PLACED (with ERRNO errno_ unless 0)
        and returns (the PLACE, the answer to the SPAWN)."""
        request = protocol.Spawn(slot, generation, False, tuple((env or {}).items()), place=True)
        self.send_raw(protocol.format_message(request))
        place = self.receive(timeout)
        if not isinstance(place, protocol.Place):
            raise AssertionError("expected PLACE, got %r; the template's log:\n%s"
                                 % (place, self.log()))
        if before_placed is not None:
            before_placed(place)
        self.send_raw(protocol.format_message(protocol.Placed(slot, generation, errno_)))
        answer = self.receive(timeout)
        if isinstance(answer, protocol.Spawned):
            self.workers.append(answer.pid)
        return place, answer

    def close_control(self) -> None:
        if self.control is not None:
            self.control.close()
            self.control = None

    def wait_exit(self, timeout: float = TIMEOUT) -> int:
        code = wait_pid(self.pid, timeout)
        if code is None:
            raise AssertionError("the template is still running after %.0f s; its log:\n%s"
                                 % (timeout, self.log()))
        self.exit_code = code
        return code

    # ------------------------------------------------------------- clean-up

    def stop_worker(self, pid: int, sig: int = signal.SIGTERM, timeout: float = TIMEOUT
                    ) -> Optional[int]:
        """Signals a worker's process group, as memward would, and reaps it."""
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        code = wait_pid(pid, timeout)
        if code is not None and pid in self.workers:
            self.workers.remove(pid)
        return code

    def cleanup(self) -> None:
        for pid in list(self.workers):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            wait_pid(pid, 10)
        self.workers.clear()
        self.close_control()
        if self.pid and self.exit_code is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            wait_pid(self.pid, 10)
        reap_all()
        for s in self.listeners:
            s.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "FakeMemward":
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def children_of(pid: int) -> List[int]:
    """The live children of `pid`, from /proc/PID/task/*/children."""
    out: List[int] = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def is_our_child(pid: int) -> bool:
    """True when `pid` is a live child of this process (waitpid accepts it)."""
    try:
        got, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return got == 0


def errno_name(number: int) -> str:
    return errno.errorcode.get(number, str(number))
