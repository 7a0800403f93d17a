"""Orphaned grandchildren are reaped: no zombie ever stays with memward as parent.

The worker double-forks 100 sleepers and reaps the intermediate children, so the
sleepers are re-parented to memward (PR_SET_CHILD_SUBREAPER). They stay in the
worker's process group, so they are its own (memward(8), ORPHANS): memward lets them
live until they exit about a second later, reaps all of them, and keeps running.

Daemons (ORPHAN_SETSID=1: the sleepers setsid() first) have left their worker's process
group: memward cannot tell whose they are and kills them at its next sample tick, with
one orphans_killed line, while their worker keeps serving."""

import time

import lib
from lib import check

ORPHANS = 100


def test(t):
    port = t.port()
    cfg = lib.config(port, count=1, command=lib.test_worker("orphaner.py"),
                     workers={"env": {"ORPHANS": str(ORPHANS), "ORPHAN_SLEEP_MS": "1000"}})
    mw = t.memward(cfg)
    mw.wait_event("ready", count=1)
    worker = int(mw.events("ready")[0].get("pid"))

    # They are memward's children now (the subreaper), not init's.
    adopted = [p for p in lib.children_map().get(mw.pid, []) if p != worker]
    check(len(adopted) >= ORPHANS // 2,
          "only %d orphans re-parented to memward (subreaper?)" % len(adopted))

    deadline = time.monotonic() + 6
    while True:
        kids = [p for p in lib.children_map().get(mw.pid, []) if p != worker]
        zombies = lib.zombies_of(mw.pid)
        if not kids and not zombies:
            break
        if time.monotonic() > deadline:
            lib.fail("%d children of memward left (%d zombies)" % (len(kids), len(zombies)))
        time.sleep(0.1)

    check(mw.running(), "memward died")
    check(lib.alive(worker), "the worker died")
    check(not mw.events("spawn", worker=0)[1:], "the worker was respawned")
    check(not mw.events("orphans_killed"), "orphans in the worker's process group were killed: %s"
          % mw.events("orphans_killed"))
    rc = mw.stop()
    check(rc == 0, "memward exited %s" % rc)
    print("%d orphans adopted and reaped" % len(adopted))


def daemons(t):
    port = t.port()
    cfg = lib.config(port, count=1, command=lib.test_worker("orphaner.py"),
                     workers={"env": {"ORPHANS": "20", "ORPHAN_SLEEP_MS": "60000", "ORPHAN_SETSID": "1"}},
                     memory={"sample_interval": "500ms", "retained_window": "2s"})
    mw = t.memward(cfg)
    ready = mw.wait_event("ready", count=1)[0]
    worker = ready.int("pid")
    killed = mw.wait_event("orphans_killed", timeout=5)[0]
    check(killed.get("trigger") in ("tick", "reaped"), "killed on %s: %s" % (killed.get("trigger"), killed.text))
    deadline = time.monotonic() + 5
    while [p for p in lib.children_map().get(mw.pid, []) if p != worker]:
        if time.monotonic() > deadline:
            lib.fail("daemons of the live worker still run: %s" % lib.children_map().get(mw.pid))
        time.sleep(0.05)
    total = sum(l.int("count") for l in mw.events("orphans_killed"))
    check(total == 20, "orphans_killed counts %d, want 20" % total)
    check(lib.alive(worker) and not mw.events("exit"), "the worker was touched")
    check(mw.stop() == 0, "memward's exit code")
    print("20 daemons of a live worker killed %.2fs after it was ready (trigger=%s)"
          % (killed.t - ready.t, killed.get("trigger")))


def both(t):
    test(t)
    daemons(t)


if __name__ == "__main__":
    lib.main(both)
