"""A worker whose children leave its process group and outlive it.

Before READY=1 it forks $SETSIDERS_<slot> children ($MEMWARD_WORKER_ID is the slot),
or $SETSIDERS when that is not set (default 0). Each
child calls setsid(), so a kill of the worker's process group misses it, ignores
SIGTERM and SIGHUP, keeps the listening socket (fd 3) open, and execs `sleep 3600`
(small, and it keeps fd 3 and the ignored signals across the exec). They stay the
worker's children while it lives; when it exits they are re-parented to memward.

Prints "setsider pid=W slot=S children=N" on stderr once all have exec'd, then
READY=1, then idles until SIGTERM/SIGINT and exits 0, leaving the children running.
"""

import os
import signal
import sys

import common

slot = os.environ.get("MEMWARD_WORKER_ID", "")
n = int(os.environ.get("SETSIDERS_" + slot, os.environ.get("SETSIDERS", "0")))
os.fstat(3)             # the listening socket is there to be kept

pids = []
for _ in range(n):
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        try:
            os.execv("/bin/sleep", ["sleep", "3600"])   # closes w: the parent's read ends
        finally:
            os._exit(127)
    os.close(w)
    os.read(r, 1)       # EOF once the child has exec'd
    os.close(r)
    pids.append(pid)
sys.stderr.write("setsider pid=%d slot=%s children=%d\n" % (os.getpid(), slot, len(pids)))
sys.stderr.flush()
common.notify("READY=1\nSTATUS=%d children in sessions of their own" % len(pids))
common.idle_until_term()
sys.exit(0)
