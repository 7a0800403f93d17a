"""sd_notify for memward's workers, standard library only.

Notifier sends one datagram per message to $NOTIFY_SOCKET (a path, or '@name' for
the abstract namespace), never blocking: when memward's queue is full the message is
dropped, and the next report carries the new totals. WorkerReporter is what the
adapters call from a worker's loop: READY=1 once, WATCHDOG=1 at a steady pace when
memward watches the worker (WATCHDOG_USEC), X_REQUESTS/X_INFLIGHT after every request,
STOPPING=1 when the worker starts to stop.

memward accepts a datagram only from the worker's pid or a descendant of it (it reads
SCM_CREDENTIALS, which the kernel fills in), so these are sent from the worker itself.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import threading
import time
from typing import Mapping, Optional

LAST_REPORT_WAIT = 1.0          # seconds the report at the request limit may wait for room
MAX_STATUS = 512                # characters of STATUS= we send; memward logs it


def socket_address(text: Optional[str]) -> Optional[str]:
    """The address to sendto() for a NOTIFY_SOCKET value, or None when there is none
    we can use: '@name' is the abstract name '\\0name', '/path' a filesystem path."""
    if not text:
        return None
    if text[0] == "@" and len(text) > 1:
        return "\0" + text[1:]
    if text[0] == "/":
        return text
    return None


def watchdog_seconds(environ: Mapping[str, str] = os.environ, pid: Optional[int] = None
                     ) -> Optional[float]:
    """The watchdog interval memward expects pings within, as sd_watchdog_enabled(3)
    reads it: WATCHDOG_USEC, for us only when WATCHDOG_PID is unset or our pid."""
    usec = environ.get("WATCHDOG_USEC", "")
    owner = environ.get("WATCHDOG_PID")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if owner is not None and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 1e6


def max_requests(environ: Mapping[str, str] = os.environ) -> Optional[int]:
    """The request limit memward drew for this worker (MEMWARD_MAX_REQUESTS): after that
    many requests the worker may stop by itself, gracefully, which memward counts as a
    max_requests recycle (docs/fork-server.md §2). 0: memward set none. None: not run by
    a memward that says (or a value that is no count): the runtime keeps its own."""
    text = environ.get("MEMWARD_MAX_REQUESTS", "")
    return int(text) if text.isdigit() else None


class Notifier:
    """One unix datagram socket to memward. Thread-safe: sendto() is one syscall."""

    def __init__(self, address: Optional[str] = None,
                 environ: Mapping[str, str] = os.environ) -> None:
        self.address = socket_address(environ.get("NOTIFY_SOCKET") if address is None
                                      else address)
        self._sock: Optional[socket.socket] = None
        self._warned = False
        if self.address is not None:
            self._sock = socket.socket(socket.AF_UNIX,
                                       socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *lines: str, wait: float = 0.0) -> bool:
        """Sends the lines as one datagram; True when it went out. On memward's full
        queue (net.unix.max_dgram_qlen datagrams, 10 by default) it is dropped at once,
        or tried again every millisecond for up to `wait` seconds."""
        if self._sock is None:
            return False
        data = "\n".join(lines).encode("utf-8", "replace")
        deadline = time.monotonic() + wait
        while True:
            try:
                self._sock.sendto(data, socket.MSG_DONTWAIT, self.address)
                return True
            except OSError as e:
                full = e.errno in (errno.EAGAIN, errno.ENOBUFS)
                if full and time.monotonic() < deadline:
                    time.sleep(0.001)
                    continue
                if not full and not self._warned:
                    # Said once: memward gone or the address wrong. Never fail a request.
                    self._warned = True
                    sys.stderr.write("memward: sd_notify to %r failed: %s\n"
                                     % (os.environ.get("NOTIFY_SOCKET"), e))
                return False

    def ready(self, status: Optional[str] = None) -> bool:
        return self.send("READY=1", *self._status(status))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.send(*self._status(text))

    def stopping(self, status: Optional[str] = None) -> bool:
        return self.send("STOPPING=1", *self._status(status))

    def requests(self, total: int, inflight: Optional[int] = None, wait: float = 0.0) -> bool:
        lines = ["X_REQUESTS=%d" % total]
        if inflight is not None:
            lines.append("X_INFLIGHT=%d" % inflight)
        return self.send(*lines, wait=wait)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @staticmethod
    def _status(text: Optional[str]) -> list:
        if text is None:
            return []
        return ["STATUS=" + text.replace("\n", " ")[:MAX_STATUS]]


class WorkerReporter:
    """What a worker tells memward, driven from the worker's own loop.

    heartbeat() is called by the server's loop whenever it comes round (gunicorn
    workers call notify() there, uvicorn calls its tick): the first call says READY=1,
    the worker now accepts (again on the next calls until that datagram went out); later calls say WATCHDOG=1, at most once per quarter of
    the watchdog interval, so a busy loop does not flood memward.
    request_started()/request_finished() bracket every request, from any thread.
    """

    def __init__(self, notifier: Notifier, watchdog: Optional[float] = None,
                 name: str = "python worker", limit: Optional[int] = None) -> None:
        self.notifier = notifier
        self.watchdog = watchdog
        self.limit = limit or None      # MEMWARD_MAX_REQUESTS: the worker stops there
        self.name = name
        self.ready_sent = False
        self.requests = 0
        self.inflight = 0
        self._lock = threading.Lock()
        self._last_ping = 0.0

    @classmethod
    def from_environ(cls, name: str = "python worker") -> "WorkerReporter":
        reporter = cls(Notifier(), watchdog_seconds(), name, max_requests())
        _worker_reporters.append(reporter)
        return reporter

    def final_report(self) -> None:
        """The count memward judges the worker's exit by (a worker that stopped itself at
        MEMWARD_MAX_REQUESTS is a recycle, not a crash), sent on the way out: a per-request
        report may have been dropped on a full queue, and blocking here, at the worker's
        end, delays no request (in a request, on asyncio's loop, it would stall them all).
        Waits up to LAST_REPORT_WAIT for room."""
        with self._lock:
            if self.requests > 0:
                self.notifier.requests(self.requests, self.inflight, wait=LAST_REPORT_WAIT)

    def ping_interval(self) -> Optional[float]:
        """Seconds between watchdog pings; a server's loop must come round this often."""
        return None if self.watchdog is None else self.watchdog / 4

    def heartbeat(self) -> None:
        if not self.ready_sent:
            # Until READY=1 has gone out: under load memward's notify queue is often
            # full of the other workers' X_REQUESTS, and a READY=1 dropped there would
            # leave this worker never ready in memward's eyes (not recycled at its
            # limits, killed at workers.ready_timeout). The next heartbeat tries again.
            if self.notifier.ready("%s %d accepting" % (self.name, os.getpid())):
                self.ready_sent = True
                self._last_ping = time.monotonic()
            return
        interval = self.ping_interval()
        if interval is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= interval:
            self._last_ping = now
            self.notifier.watchdog()

    def request_started(self) -> None:
        with self._lock:
            self.inflight += 1

    def request_finished(self) -> None:
        # Sent under the lock, so that memward gets the totals in the order they were
        # counted (gthread's pool threads finish requests concurrently). sendto() with
        # MSG_DONTWAIT never blocks: the lock is held for one syscall.
        with self._lock:
            self.inflight -= 1
            self.requests += 1
            # Never waits: the count memward judges a self-stop by goes again, waiting for
            # room, on the way out (final_report()).
            self.notifier.requests(self.requests, self.inflight)

    def stopping(self) -> None:
        self.notifier.stopping("%s %d stopping" % (self.name, os.getpid()))


# The reporters of this worker process (WorkerReporter.from_environ()), for final_reports().
_worker_reporters: list = []


def final_reports() -> None:
    """Sends each reporter's final count (WorkerReporter.final_report()); the template's
    worker calls it on its way out, whatever ended it."""
    for reporter in _worker_reporters:
        try:
            reporter.final_report()
        except Exception:
            pass            # the worker exits anyway: never fail its exit over a report
