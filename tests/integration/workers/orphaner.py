"""A worker that leaves $ORPHANS (default 100) orphaned grandchildren behind.

Each orphan is double-forked: the intermediate child exits at once, so the
grandchild is re-parented to the nearest subreaper (memward) and exits after
$ORPHAN_SLEEP_MS (default 300 ms). With $ORPHAN_SETSID=1 the grandchild calls
setsid() first: a daemon that left its worker's process group. Then READY=1 and idle
until SIGTERM.
"""

import os
import sys
import time

import common

n = int(os.environ.get("ORPHANS", "100"))
sleep_s = int(os.environ.get("ORPHAN_SLEEP_MS", "300")) / 1000
setsid = os.environ.get("ORPHAN_SETSID") == "1"
for i in range(n):
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            if setsid:
                os.setsid()
            time.sleep(sleep_s)
            os._exit(0)
        os._exit(0)
    os.waitpid(pid, 0)          # reap the intermediate child ourselves
common.notify("READY=1\nSTATUS=left %d orphans" % n)
common.idle_until_term()
sys.exit(0)
