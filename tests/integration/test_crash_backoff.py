"""A worker that exits 1 at once is respawned with exponential backoff.

restart_backoff {initial: 100ms, max: 2s}: each exit line says the delay memward chose
(respawn_in=100ms, 200ms, 400ms, ... doubling up to 2000ms, failures=1, 2, 3, ...),
and memward's own clock (the time= of the exit and of the next spawn) shows it waited
that long: never less (but for the few ms between the decision and its log line),
and not much more. The test's clock judges nothing, so a busy machine cannot make
0.1 s look like 0.2 s, nor does it count spawns in a window of its own: it waits for
the 7th crash, the first after the capped delay. memward keeps running (an exit status
of 1 is a crash, not a command that cannot be executed; the start limit, which would
end it after 8 failures, is off here: test_start_limit)."""


import lib
from lib import check

SPAWNS = 7           # at 0, .1, .3, .7, 1.5, 3.1, 5.1 s: the last after the cap
INITIAL_MS, MAX_MS = 100, 2000
LATE_MS = 1000      # how late memward's timer may fire on a busy machine (load 10 on 2 cores)


def wall_ms(line):
    """memward's own time= (UTC, millisecond precision), in ms."""
    return line.at * 1000


def test(t):
    port = t.port()
    cfg = lib.config(port, count=1, command=["/bin/false"],
                     workers={"restart_backoff": {"initial": "%dms" % INITIAL_MS, "max": "%dms" % MAX_MS},
                              "start_limit_burst": 0})
    mw = t.memward(cfg)
    # As many crashes as reach the cap, however long a busy machine makes them take.
    mw.wait_event("exit", count=SPAWNS, timeout=30)
    check(mw.running(), "memward exited %s" % mw.proc.poll())
    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)

    lines = mw.lines()
    crashed = lines[:next(i for i, l in enumerate(lines) if l.event == "shutdown")]   # not those SIGTERM ends
    spawns = [l for l in crashed if l.event == "spawn"]
    exits = [l for l in crashed if l.event == "exit"]
    check(exits and all(e.get("code") == "1" for e in exits), "exit lines do not say code=1: %r" % exits[:3])
    check(len(spawns) >= SPAWNS and len(exits) >= SPAWNS, "%d spawns, %d exits" % (len(spawns), len(exits)))
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
    check(chosen[-1] == MAX_MS, "the backoff never reached its cap: respawn_in %r ms" % chosen)
    print("%d spawns in %.1fs; respawn_in %r ms, waited %r ms (memward's clock)"
          % (len(spawns), (wall_ms(spawns[-1]) - wall_ms(spawns[0])) / 1000, chosen, waited))


if __name__ == "__main__":
    lib.main(test)
