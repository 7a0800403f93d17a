"""A worker that exits 1 at once is respawned with exponential backoff.

restart_backoff {initial: 100ms, max: 2s}: over 5 s there are only a handful of
spawns (0, .1, .3, .7, 1.5, 3.1, 5.1 s -> about 7), the gaps grow, memward keeps
running (an exit status of 1 is a crash, not a command that cannot be executed; the
start limit, which would end it after 5 failures, is off here: test_start_limit)."""

import time

import lib
from lib import check

WINDOW = 5.0


def test(t):
    port = t.port()
    cfg = lib.config(port, count=1, command=["/bin/false"],
                     workers={"restart_backoff": {"initial": "100ms", "max": "2s"}, "start_limit_burst": 0})
    mw = t.memward(cfg)
    first = mw.wait_event("spawn", timeout=10)[0].t
    time.sleep(WINDOW - (time.monotonic() - first) + 0.05)
    check(mw.running(), "memward exited %s" % mw.proc.poll())
    times = [l.t for l in mw.events("spawn") if l.t <= first + WINDOW]
    gaps = [round(b - a, 3) for a, b in zip(times, times[1:])]
    check(3 <= len(times) <= 8, "%d spawns in %.0fs (gaps %r)" % (len(times), WINDOW, gaps))
    for a, b in zip(gaps, gaps[1:]):
        check(b >= a * 0.75, "backoff shrank: gaps %r" % gaps)
    check(gaps[-1] >= 4 * gaps[0], "backoff does not grow: gaps %r" % gaps)
    check(max(gaps) <= 2.6, "a gap above restart_backoff.max: %r" % gaps)
    exits = mw.events("exit")
    check(exits and all(e.get("code") == "1" for e in exits),
          "exit lines do not say code=1: %r" % exits[:3])
    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    print("%d spawns in %.0fs, gaps %r" % (len(times), WINDOW, gaps))


if __name__ == "__main__":
    lib.main(test)
