"""gunicorn settings for the template tests: every hook writes `name pid` to
$TEST_HOOK_LOG, and post_fork records what the worker looks like after the reset."""

import os
import sys


def _log(name):
    path = os.environ.get("TEST_HOOK_LOG")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, ("%s %d\n" % (name, os.getpid())).encode())
        finally:
            os.close(fd)


def on_starting(server):
    _log("on_starting")


def when_ready(server):
    _log("when_ready")


def pre_fork(server, worker):
    _log("pre_fork")


def post_fork(server, worker):
    _log("post_fork")
    wsgi_app = sys.modules.get("wsgi_app")     # loaded in the template, when it is the app
    if wsgi_app is None:
        return
    wsgi_app.POST_FORK.update(pid=os.getpid(), ppid=os.getppid(), worker_ppid=worker.ppid,
                              LISTEN_PID=os.environ.get("LISTEN_PID"),
                              LISTEN_FDS=os.environ.get("LISTEN_FDS"))


def post_worker_init(worker):
    _log("post_worker_init")


def pre_request(worker, req):
    _log("pre_request")


def post_request(worker, req, environ, resp):
    _log("post_request")


def worker_exit(server, worker):
    _log("worker_exit")


def on_exit(server):
    _log("on_exit")
