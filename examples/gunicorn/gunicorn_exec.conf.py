"""gunicorn settings and hooks for running gunicorn as a memward worker.

memward starts this gunicorn (arbiter + its own worker) in one slot, hands it the
listening socket at fd 3 and a NOTIFY_SOCKET. These hooks tell memward:

  * READY=1 when the gunicorn worker has loaded the app and is about to accept —
    not when the arbiter boots, which is when gunicorn itself would say it;
  * X_REQUESTS=<n> after every request, n counting every request served by this
    gunicorn (all of its workers together), so memward's recycle.max_requests works.

memward accepts these datagrams from any descendant of the process it started, so
sending them from gunicorn's worker process is fine.
"""

import os
import socket

# Leave recycling and the worker count to memward: one gunicorn worker per slot.
workers = 1
# Finish in-flight requests on SIGTERM; keep this below memward's graceful_timeout.
graceful_timeout = 20

_NOTIFY_ENV = "MEMWARD_NOTIFY_SOCKET"
_counter = None


def _notify(message, wait=0.0):
    """Sends one datagram; without `wait` it is dropped if memward's queue is full
    (the next X_REQUESTS carries the new total), with it the send waits that long."""
    addr = os.environ.get(_NOTIFY_ENV) or os.environ.get("NOTIFY_SOCKET")
    if not addr or addr[0] not in "/@":
        return
    if addr[0] == "@":
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            if wait:
                s.settimeout(wait)
            else:
                s.setblocking(False)
            s.sendto(message.encode(), addr)
    except OSError:
        pass            # memward is gone or busy: never fail a request over this


def on_starting(server):
    """Runs in the arbiter before it opens its sockets and announces READY=1."""
    global _counter
    # gunicorn 20.1 takes fd N twice when --bind fd://N names it *and* LISTEN_FDS
    # announces it (memward always sets LISTEN_FDS/LISTEN_PID), and dies with EBADF on
    # the second. With an fd:// bind, let --bind alone decide; and mark the sockets as
    # inherited so that gunicorn never unlinks a unix socket path it does not own.
    if (any(isinstance(a, int) for a in server.cfg.address)
            and os.environ.get("LISTEN_PID") == str(os.getpid())):
        for key in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            os.environ.pop(key, None)
        server.systemd = True
    # Hide NOTIFY_SOCKET from the arbiter, which would say READY=1 before any worker
    # has loaded the app; post_worker_init says it instead.
    addr = os.environ.pop("NOTIFY_SOCKET", None)
    if addr:
        os.environ[_NOTIFY_ENV] = addr
    try:
        from multiprocessing import Value
        _counter = Value("Q", 0)        # shared with the workers forked later
    except (ImportError, OSError):
        _counter = None


def post_worker_init(worker):
    # Said once, so it waits for room: under load the other workers' X_REQUESTS fill
    # memward's queue, and a dropped READY=1 would leave this slot never ready.
    _notify("READY=1\nSTATUS=gunicorn worker %d accepting" % os.getpid(), wait=5.0)


def post_request(worker, req, environ, resp):
    if _counter is not None:
        with _counter.get_lock():
            _counter.value += 1
            total = _counter.value
    else:
        worker.memward_requests = getattr(worker, "memward_requests", 0) + 1
        total = worker.memward_requests
    _notify("X_REQUESTS=%d" % total)

