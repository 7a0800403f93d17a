"""A worker whose memory spikes on its own timer and is given back each time.

Every $SPIKE_EVERY_MS (default 5000) it allocates $SPIKE_MIB (default 200) MiB,
touches every page, holds it $SPIKE_MS (default 1000) and frees it (a bytearray
this large is its own mmap, so the pages go back to the kernel at once). The first
spike comes $SPIKE_FIRST_MS (default: $SPIKE_EVERY_MS) after READY=1.

On SIGUSR1 (memward forwards it to every worker) it allocates $SPIKE_MIB MiB once
more and keeps it: the positive control for a test that expects no recycle while
the memory is only borrowed.

It prints to stderr, which memward passes through:
  spiker pid=P spike=N anon_kib=K    at the top of spike N (K: its own Anonymous)
  spiker pid=P freed=N anon_kib=K    after freeing it
  spiker pid=P keeping mib=M anon_kib=K
Exits 0 on SIGTERM/SIGINT.
"""

import os
import signal
import sys
import time

import common

MIB = 1 << 20
PAGE = 4096

mib = int(os.environ.get("SPIKE_MIB", "200"))
hold = int(os.environ.get("SPIKE_MS", "1000")) / 1000
every = int(os.environ.get("SPIKE_EVERY_MS", "5000")) / 1000
first = int(os.environ.get("SPIKE_FIRST_MS", str(int(every * 1000)))) / 1000

keep_requested = []
kept = []
signal.signal(signal.SIGUSR1, lambda *_: keep_requested.append(1))


def anon_kib():
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("Anonymous:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def touched(n_bytes):
    buf = bytearray(n_bytes)
    buf[::PAGE] = b"\x01" * len(range(0, n_bytes, PAGE))
    return buf


def say(text):
    sys.stderr.write("spiker pid=%d %s anon_kib=%d\n" % (os.getpid(), text, anon_kib()))
    sys.stderr.flush()


def sleep_until(deadline):
    """Sleeps until deadline (monotonic); False when asked to stop meanwhile."""
    while not common._stop:
        if keep_requested and not kept:
            kept.append(touched(mib * MIB))
            say("keeping mib=%d" % mib)
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, 0.05))
    return False


common.notify("READY=1\nSTATUS=spiking %d MiB every %gs" % (mib, every))
n = 0
next_spike = time.monotonic() + first
while sleep_until(next_spike):
    n += 1
    buf = touched(mib * MIB)
    say("spike=%d" % n)
    ok = sleep_until(time.monotonic() + hold)
    del buf
    say("freed=%d" % n)
    if not ok:
        break
    next_spike += every
sys.exit(0)
