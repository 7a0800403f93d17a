"""A tiny WSGI app for the template tests, with knobs in the environment.

At import (in the template) it changes the template's own signal state, which the
worker's reset must undo: SIGHUP ignored, SIGUSR2 blocked. TEST_TABLE_SIZE=N builds a
table of N small objects (the GC test), TEST_HEAP_HOLES=N leaves holes in the malloc heap
(the shared-state test); TEST_START_THREAD=1 starts a Python thread
that runs until the template gets SIGALRM.

    GET /          {"pid", "ppid", "env", "post_fork", "gc_enabled", "frozen"}
    GET /collect   the same, after gc.collect()
    GET /pkg_resources  the same, with the kind of sys.modules["pkg_resources"] before and
                   after a use of it, and gunicorn's version from it
"""

import gc
import json
import os
import signal
import sys
import threading
import time

signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})

ENV_KEYS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET",
            "MEMWARD_WORKER_ID", "MEMWARD_WORKER_GENERATION", "WATCHDOG_USEC",
            "WATCHDOG_PID", "MEMWARD_CONTROL_FD", "TEST_VALUE")

POST_FORK = {}          # filled in the worker by gunicorn.conf.py's post_fork

TABLE = [{"id": i, "name": "row %d" % i, "tags": [i, i + 1]}
         for i in range(int(os.environ.get("TEST_TABLE_SIZE", "0")))]

# TEST_HEAP_HOLES=N: N malloc'd blocks of 1,000 bytes (above pymalloc's 512), every
# other one freed again, so that the template's malloc heap has a hole on every page,
# as a real app's has after its imports (the shared-state test).
_blocks = [b"%d" % i + bytes(1000) for i in range(int(os.environ.get("TEST_HEAP_HOLES", "0")))]
KEPT = _blocks[::2]
del _blocks

_stop = threading.Event()
if os.environ.get("TEST_START_THREAD") == "1":
    signal.signal(signal.SIGALRM, lambda signum, frame: _stop.set())
    threading.Thread(target=_stop.wait, name="test-background-thread").start()


def _module_kind(name):
    """The class of sys.modules[name] ('module' once run), or None when not imported."""
    module = sys.modules.get(name)
    return None if module is None else type(module).__name__


def app(environ, start_response):
    extra = {}
    if environ.get("PATH_INFO") == "/collect":
        gc.collect()
    elif environ.get("PATH_INFO") == "/slow":
        time.sleep(0.5)
    elif environ.get("PATH_INFO") == "/pkg_resources":
        # What the worker had, then a use of it: the gunicorn runtime defers it.
        extra["pkg_resources_before"] = _module_kind("pkg_resources")
        import pkg_resources
        extra["gunicorn_version"] = pkg_resources.get_distribution("gunicorn").version
        extra["pkg_resources_after"] = _module_kind("pkg_resources")
    body = json.dumps(dict(extra, **{
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "env": {k: os.environ.get(k) for k in ENV_KEYS},
        "post_fork": POST_FORK,
        "gc_enabled": gc.isenabled(),
        "frozen": gc.get_freeze_count(),
        "table": len(TABLE),
    })).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
