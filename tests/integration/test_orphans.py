"""Orphaned grandchildren are reaped: no zombie ever stays with memward as parent.

The worker double-forks 100 sleepers and reaps the intermediate children, so the
sleepers are re-parented to memward (PR_SET_CHILD_SUBREAPER). They exit about a
second later; memward must reap all of them, and keep running."""

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
    rc = mw.stop()
    check(rc == 0, "memward exited %s" % rc)
    print("%d orphans adopted and reaped" % len(adopted))


if __name__ == "__main__":
    lib.main(test)
