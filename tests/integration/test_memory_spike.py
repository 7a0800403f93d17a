"""Memory a worker only borrows is never a reason to recycle it.

2 spiker workers (tests/integration/workers/spiker.py): each, on its own timer, takes
200 MiB for 1 s every 5 s and gives it back. memory {metric: anon, sample_interval:
500ms, retained_max: 150MiB, retained_window: 3s}: every spike is far above
retained_max and seen by two samples or more, but the floor over 3 s never is. Over
~20 s (4 spikes per worker, each confirmed at ~200 MiB of the worker's own Anonymous)
no worker is recycled or restarted.
Control, same memward: SIGUSR1 (forwarded to the workers) makes them keep 200 MiB,
and then they are recycled with reason=retained, so the quiet phase was not quiet
for lack of measuring."""

import re
import signal
import time

import lib
from lib import check

MIB = 1 << 20
SPIKE_MIB = 200
OBSERVE = 20.0
SPIKE_RX = re.compile(r"^spiker pid=(\d+) spike=(\d+) anon_kib=(\d+)")


def test(t):
    port = t.port()
    cfg = lib.config(port, count=2, command=lib.test_worker("spiker.py"), memory={
        "metric": "anon",
        "sample_interval": "500ms",
        "retained_max": "150MiB",
        "retained_window": "3s",
    }, workers={"env": {"SPIKE_MIB": str(SPIKE_MIB), "SPIKE_MS": "1000", "SPIKE_EVERY_MS": "5000",
                        "SPIKE_FIRST_MS": "2000"}})
    mw = t.memward(cfg)
    mw.wait_event("ready", count=2, timeout=15)
    t0 = time.monotonic()
    pids = set(mw.current_workers().values())
    check(len(pids) == 2, "want 2 workers: %r" % mw.current_workers())

    time.sleep(OBSERVE)
    check(not mw.events("recycle"), "a worker that only spikes was recycled: %r" % mw.events("recycle"))
    spawns = mw.events("spawn")
    check(len(spawns) == 2, "workers were restarted: %r" % spawns)
    check(not mw.events("exit"), "a worker exited: %r" % mw.events("exit"))

    spikes = {}
    for line in mw.lines():
        m = SPIKE_RX.match(line.text)
        if m and line.t >= t0:
            spikes.setdefault(int(m.group(1)), []).append(int(m.group(3)) * 1024)
    for pid in pids:
        sizes = spikes.get(pid, [])
        check(len(sizes) >= 3, "worker %d spiked %d times in %.0fs, want >= 3 (lines: %r)"
              % (pid, len(sizes), OBSERVE, [l.text for l in mw.lines() if "spiker" in l.text][-10:]))
        check(all(s >= SPIKE_MIB * MIB for s in sizes),
              "worker %d's spikes were not all >= %d MiB resident: %r MiB"
              % (pid, SPIKE_MIB, [s // MIB for s in sizes]))

    # Control: the same memory, kept, is recycled.
    t_keep = time.monotonic()
    mw.signal(signal.SIGUSR1)
    rec = mw.wait_event("recycle", reason="retained", timeout=10)[0]
    check(rec.int("pid") in pids, "recycled an unknown worker: %s" % rec.text)
    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    print("%.0fs of spikes, no recycle; spikes per worker %s (resident at the top: %s MiB); "
          "kept after SIGUSR1 -> recycled with reason=retained %.2fs later, floor=%.1f MiB"
          % (OBSERVE, {p: len(s) for p, s in spikes.items()},
             sorted({s // MIB for v in spikes.values() for s in v}), rec.t - t_keep,
             rec.int("floor") / MIB))


if __name__ == "__main__":
    lib.main(test)
