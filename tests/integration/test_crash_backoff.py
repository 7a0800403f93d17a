"""A worker that exits 1 at once is respawned with exponential backoff.

restart_backoff {initial: 100ms, max: 2s}: each exit line says the delay memward chose
(respawn_in=100ms, 200ms, 400ms, ... doubling up to 2000ms, failures=1, 2, 3, ...),
and memward's own clock (the time= of the exit and of the next spawn) shows it waited
that long: never less (but for the few ms between the decision and its log line),
and not much more. The test's clock judges nothing, so a busy machine cannot make
0.1 s look like 0.2 s. memward keeps running (an exit status of 1 is a crash, not a
command that cannot be executed; the start limit, which would end it after 8
failures, is off here: test_start_limit)."""

import datetime
import time

import lib
from lib import check

WINDOW = 6.0         # long enough for the cap: 0, .1, .3, .7, 1.5, 3.1, 5.1 s
INITIAL_MS, MAX_MS = 100, 2000
LATE_MS = 1000      # how late memward's timer may fire on a busy machine (load 10 on 2 cores)


def wall_ms(line):
    """memward's own time= (UTC, millisecond precision), in ms."""
    dt = datetime.datetime.strptime(line.get("time"), "%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000


def test(t):
    port = t.port()
    cfg = lib.config(port, count=1, command=["/bin/false"],
                     workers={"restart_backoff": {"initial": "%dms" % INITIAL_MS, "max": "%dms" % MAX_MS},
                              "start_limit_burst": 0})
    mw = t.memward(cfg)
    first = mw.wait_event("spawn", timeout=10)[0].t
    time.sleep(WINDOW - (time.monotonic() - first) + 0.05)
    check(mw.running(), "memward exited %s" % mw.proc.poll())
    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)

    spawns, exits = mw.events("spawn"), mw.events("exit")
    check(exits and all(e.get("code") == "1" for e in exits), "exit lines do not say code=1: %r" % exits[:3])
    check(6 <= len(spawns) <= 8, "%d spawns in %.0fs" % (len(spawns), WINDOW))
    chosen, waited = [], []
    for i, (e, s) in enumerate(zip(exits, spawns[1:])):
        want = min(INITIAL_MS << i, MAX_MS)
        check(e.get("failures") == str(i + 1), "exit %d says failures=%s: %s" % (i + 1, e.get("failures"), e.text))
        check(e.get("respawn_in") == "%dms" % want, "exit %d: respawn_in=%s, want %dms" % (i + 1, e.get("respawn_in"), want))
        gap = wall_ms(s) - wall_ms(e)
        # The exit line is written a little after the moment the delay counts from.
        check(want * 0.9 - 1 <= gap <= want + LATE_MS, "respawn %d came %.0fms after the exit, memward said %dms"
              % (i + 1, gap, want))
        chosen.append(want)
        waited.append(round(gap))
    print("%d spawns in %.0fs; respawn_in %r ms, waited %r ms (memward's clock)"
          % (len(spawns), WINDOW, chosen, waited))


if __name__ == "__main__":
    lib.main(test)
