"""A worker with a heavy start-up, flat afterwards, that grows only when told to.

Like a real application: it starts small (the bare interpreter), spends
$STARTUP_MS (default 1500) "importing", then allocates and keeps $STARTUP_MIB
(default 40) MiB, says READY=1 and stays flat. On SIGUSR1 (memward forwards it) it
allocates and keeps $GROW_MIB (default 80) MiB more: growth after warm-up.

Prints to stderr (memward passes it through):
  grower pid=P loaded mib=M anon_kib=K     when start-up is done, before READY=1
  grower pid=P grew mib=M anon_kib=K       after SIGUSR1
Exits 0 on SIGTERM/SIGINT.
"""

import os
import signal
import sys
import time

import common

PAGE = 4096
kept = []
grow = []
signal.signal(signal.SIGUSR1, lambda *_: grow.append(1))


def keep(mib):
    buf = bytearray(mib << 20)
    buf[::PAGE] = b"\x01" * len(range(0, len(buf), PAGE))
    kept.append(buf)


def say(text):
    anon = -1
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Anonymous:"):
                anon = int(line.split()[1])
    sys.stderr.write("grower pid=%d %s anon_kib=%d\n" % (os.getpid(), text, anon))
    sys.stderr.flush()


time.sleep(int(os.environ.get("STARTUP_MS", "1500")) / 1000)
keep(int(os.environ.get("STARTUP_MIB", "40")))
say("loaded mib=%s" % os.environ.get("STARTUP_MIB", "40"))
common.notify("READY=1")
parent = os.getppid()
grown = False
while not common._stop and os.getppid() == parent:
    if grow and not grown:
        grown = True
        keep(int(os.environ.get("GROW_MIB", "80")))
        say("grew mib=%s" % os.environ.get("GROW_MIB", "80"))
    time.sleep(0.05)
sys.exit(0)
