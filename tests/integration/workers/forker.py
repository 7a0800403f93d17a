"""A worker that leaves a helper behind, out of its reach.

Before READY=1 it forks one child (memward's grandchild) that calls setsid(), so it
is in a session and process group of its own (a kill of the worker's process group
misses it), ignores SIGTERM, SIGINT and SIGHUP, and sleeps until killed. When the
worker's $MEMWARD_WORKER_GENERATION is listed in $FORKER_LEAK_GENERATIONS (comma
separated, default "1"), that helper first allocates and keeps $FORKER_LEAK_MIB MiB
(default 0): a leaked helper holding memory, charged to the worker's cgroup.

Prints "forker pid=W generation=G grandchild=P leak_mib=M" on stderr (memward passes
it through), then READY=1, then idles until SIGTERM/SIGINT and exits 0, leaving the
helper running.
"""

import os
import signal
import sys
import time

import common

PAGE = 4096
generation = os.environ.get("MEMWARD_WORKER_GENERATION", "")
leak_generations = os.environ.get("FORKER_LEAK_GENERATIONS", "1").split(",")
leak_mib = int(os.environ.get("FORKER_LEAK_MIB", "0")) if generation in leak_generations else 0

r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    os.setsid()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    kept = bytearray(leak_mib << 20)
    if leak_mib:
        kept[::PAGE] = b"\x01" * len(range(0, len(kept), PAGE))
    os.write(w, b"ok")
    os.close(w)
    while True:
        time.sleep(3600)
os.close(w)
os.read(r, 2)           # the helper has its memory before we say READY=1
os.close(r)
sys.stderr.write("forker pid=%d generation=%s grandchild=%d leak_mib=%d\n"
                 % (os.getpid(), generation, pid, leak_mib))
sys.stderr.flush()
common.notify("READY=1\nSTATUS=helper %d" % pid)
common.idle_until_term()
sys.exit(0)
