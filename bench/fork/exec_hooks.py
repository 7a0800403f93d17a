"""gunicorn hooks for bench/fork's exec setup: `memward -- gunicorn -w 1 -c exec_hooks.py`.

What examples/gunicorn's exec-mode hooks do, with memward's own notify module
(python/memward/notify.py): the arbiter never sees NOTIFY_SOCKET (it would say READY=1
before its worker has loaded the app), its worker says READY=1 once it has, and
X_REQUESTS=<n> after every request so that recycle.max_requests counts. With -w 1
the worker's own count is the slot's.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "python"))
from memward.notify import Notifier  # noqa: E402

workers = 1
_ADDRESS = "MEMWARD_BENCH_NOTIFY_SOCKET"


def on_starting(server):
    # gunicorn 20.1 opens fd 3 twice when --bind fd://3 and LISTEN_FDS both name it.
    if os.environ.get("LISTEN_PID") == str(os.getpid()):
        for key in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            os.environ.pop(key, None)
        server.systemd = True
    os.environ[_ADDRESS] = os.environ.pop("NOTIFY_SOCKET", "")


def post_worker_init(worker):
    worker.memward = Notifier(os.environ.get(_ADDRESS) or None)
    worker.memward_requests = 0
    worker.memward.ready()


def post_request(worker, req, environ, resp):
    worker.memward_requests += 1
    worker.memward.requests(worker.memward_requests)
