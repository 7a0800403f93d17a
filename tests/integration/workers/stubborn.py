"""A worker that ignores SIGTERM when its slot is listed in $STUBBORN_SLOTS.

A stubborn worker also starts a child (same process group) that ignores SIGTERM as
well, so that only a SIGKILL to the whole group ends both. It writes
"<slot> <pid> <child pid>" to $STUBBORN_DIR/<pid>. Everyone else exits 0 on SIGTERM.
"""

import os
import signal
import subprocess
import sys
import time

import common     # installs the SIGTERM handler for the normal workers

slot = os.environ.get("MEMWARD_WORKER_ID", "")
stubborn = slot in os.environ.get("STUBBORN_SLOTS", "").split(",")
child = None
if stubborn:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # SIG_IGN survives exec, so the sleeper ignores SIGTERM too.
    child = subprocess.Popen(["/bin/sleep", "300"])
out = os.environ.get("STUBBORN_DIR")
if out:
    with open(os.path.join(out, str(os.getpid())), "w") as f:
        f.write("%s %d %d\n" % (slot, os.getpid(), child.pid if child else 0))
common.notify("READY=1")
if stubborn:
    while True:
        time.sleep(1)
common.idle_until_term()
sys.exit(0)
