"""gunicorn settings of tests/vm/test_template_user.sh: post_fork, the first hook that runs
in a forked worker, records the worker's cgroup and ids before anything else of the app."""

import os
import sys


def post_fork(server, worker):
    app = sys.modules.get("app")
    if app is not None:
        app.FIRST.update(pid=os.getpid(), cgroup=app.cgroup(), ruid=os.getuid(), euid=os.geteuid())
