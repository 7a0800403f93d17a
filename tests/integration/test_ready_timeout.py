"""Readiness: a worker that never says READY=1 is killed after ready_timeout and
respawned; `ready: immediate` and `ready: <duration>` need no READY=1, and a
recycle under them still stops the old worker once the replacement counts as ready.
Every interval is read on memward's own clock (the time= of its lines): when this test
reads a line also depends on how busy the machine is; and every wait is bounded at
several times the interval, for a loaded machine to start memward and its workers."""


import lib
from lib import check


def test(t):
    port = t.port()
    mw = t.memward(lib.config(port, count=1, command=["/bin/sleep", "60"],
                              workers={"ready_timeout": "1s",
                                       "restart_backoff": {"initial": "100ms", "max": "200ms"}}),
                   name="notify")
    spawns = mw.wait_event("spawn", count=2, timeout=15)
    # memward counts a worker's time from the pass that spawns it, before the fork and
    # exec; its spawn line comes after them, on a loaded machine 260 ms later (seen). So
    # the earliest the respawn may come is measured from the start line, which precedes
    # the first pass; the latest from the first spawn line.
    start = mw.events("start")[0]
    early, gap = spawns[1].at - start.at, spawns[1].at - spawns[0].at
    check(early >= 0.9 and gap <= 3.0, "respawned %.2fs after spawn (%.2fs after memward's start) with "
          "ready_timeout 1s" % (gap, early))
    check(not mw.events("ready"), "a silent worker was declared ready")
    first = spawns[0].get("pid")
    ex = mw.wait_event("exit", pid=first, timeout=10)[0]
    check(ex.get("status") == "killed", "the silent worker was not killed: %s" % ex.text)
    check(mw.stop() == 0, "memward did not exit 0")

    # ready: immediate, and a recycle (max_lifetime) still replaces the old worker.
    mw = t.memward(lib.config(port, count=2, command=["/bin/sleep", "60"],
                              workers={"ready": "immediate", "ready_timeout": "1s",
                                       "graceful_timeout": "1s"},
                              recycle={"max_lifetime": "1500ms"}),
                   name="immediate")
    spawns = mw.wait_event("spawn", count=2, timeout=10)[:2]
    # Neither killed at ready_timeout (1 s) nor respawned: each lives its whole
    # max_lifetime and is then recycled, stopped with SIGTERM once its replacement runs.
    # Its life counts from the pass that spawned it, which follows the start line (its
    # spawn line comes after the fork and exec: seen 260 ms later, an exit 1.245 s after
    # it under load).
    start = mw.events("start")[0]
    for sp in spawns:
        ex = mw.wait_event("exit", pid=sp.get("pid"), timeout=15)[0]
        check(ex.get("signal") == "SIGTERM", "not stopped with SIGTERM: %s" % ex.text)
        lived = ex.at - start.at
        check(lived >= 1.45, "a ready: immediate worker exited %.3fs after its spawn (max_lifetime 1.5s, "
              "ready_timeout 1s): %s" % (lived, ex.text))
        rec = mw.events("recycle", pid=sp.get("pid"))
        check(rec and rec[0].get("reason") == "max_lifetime", "pid %s: recycles %r" % (sp.get("pid"), rec))
        early = [l.text for l in mw.events("spawn")[2:] if l.at < start.at + 1.45]
        check(not early, "ready: immediate workers were respawned before max_lifetime: %r" % early)
    check(not mw.events("ready_timeout"), "ready_timeout with ready: immediate: %r" % mw.events("ready_timeout"))
    check(len(mw.events("ready")) >= 2, "no event=ready line for ready: immediate workers")
    check(mw.stop() == 0, "memward did not exit 0")

    mw = t.memward(lib.config(port, count=1, command=["/bin/sleep", "60"],
                              workers={"ready": "500ms", "ready_timeout": "5s"}),
                   name="delay")
    spawn = mw.wait_event("spawn", timeout=10)[0]
    ready = mw.wait_event("ready", timeout=10)[0]
    start = mw.events("start")[0]       # the earliest bound from the start line, as above
    check(ready.at - start.at >= 0.45 and ready.at - spawn.at <= 1.5, "ready: 500ms took %.3fs after the spawn "
          "line, %.3fs after memward's start" % (ready.at - spawn.at, ready.at - start.at))
    check(mw.stop() == 0, "memward did not exit 0")


if __name__ == "__main__":
    lib.main(test)
