"""Orphaned grandchildren are reaped: no zombie ever stays with memward as parent.

The worker double-forks 100 sleepers and reaps the intermediate children, so the
sleepers are re-parented to memward (PR_SET_CHILD_SUBREAPER). They stay in the
worker's process group, so they are its own (memward(8), ORPHANS): memward lets them
live until they exit some seconds later, reaps all of them, and keeps running.

Daemons (ORPHAN_SETSID=1: the sleepers setsid() first) have left their worker's process
group: memward cannot tell whose they are and kills them at its next sample tick, with
one orphans_killed line, while their worker keeps serving.

Children memward had before it started any (`sh -c 'sleep 300 & exec memward'`, the
container entrypoint `cron & exec memward`) are its own: several sample ticks later the
sidecar still runs and no orphans_killed was logged.

A worker whose shell started 20 `cmd &` children in its process group, stopped normally
(a max_lifetime recycle): its group is killed with it, and those 20 are no orphans:
memward_orphans_killed_total stays 0 and no orphans_killed line is logged, then or at
memward's own stop."""

import time

import lib
from lib import check

ORPHANS = 100
# How long each orphan lives from its fork: long enough that most of them are still there
# when we look, after 200 forks and our read of the ready line on a loaded machine (at
# 1 s, the first ones could be gone before we looked).
ORPHAN_SLEEP_S = 5


def test(t):
    port = t.port()
    cfg = lib.config(port, count=1, command=lib.test_worker("orphaner.py"),
                     workers={"env": {"ORPHANS": str(ORPHANS), "ORPHAN_SLEEP_MS": str(ORPHAN_SLEEP_S * 1000)}})
    mw = t.memward(cfg)
    mw.wait_event("ready", count=1)
    worker = int(mw.events("ready")[0].get("pid"))

    # They are memward's children now (the subreaper), not init's.
    adopted = [p for p in lib.children_map().get(mw.pid, []) if p != worker]
    check(len(adopted) >= ORPHANS // 2,
          "only %d orphans re-parented to memward (subreaper?)" % len(adopted))

    deadline = time.monotonic() + ORPHAN_SLEEP_S + 8
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


def inherited(t):
    port = t.port()
    cfg = lib.config(port, count=1, memory={"sample_interval": "200ms", "retained_window": "2s"})
    mw = t.memward(cfg, name="inherited", prefix=["/bin/sh", "-c", 'sleep 300 & exec "$0" "$@"'])
    worker = mw.wait_event("ready", count=1)[0].int("pid")
    sidecars = [p for p in lib.children_map().get(mw.pid, []) if p != worker]
    check(len(sidecars) == 1, "want the one inherited sleep among memward's children: %s" % sidecars)
    noted = mw.events("inherited_children")
    check(len(noted) == 1 and noted[0].get("count") == "1", "inherited_children: %s" % noted)
    time.sleep(2)  # 10 sample ticks
    check(lib.alive(sidecars[0]), "the inherited sidecar was killed: %s" % mw.events("orphans_killed"))
    check(not mw.events("orphans_killed"), "orphans_killed: %s" % mw.events("orphans_killed"))
    check(mw.stop() == 0, "memward's exit code")
    print("inherited sidecar pid %d alive after 10 sample ticks, no orphans_killed" % sidecars[0])


# 20 sleepers in the worker's process group, then the example worker.
GROUP_CHILDREN = ["/bin/sh", "-c", 'i=0; while [ $i -lt 20 ]; do sleep 300 & i=$((i + 1)); done; exec "$0" "$@"'] \
    + lib.EXAMPLE_COMMAND


def group_stop(t):
    port, mport = t.port(), t.port()
    cfg = lib.config(port, count=1, command=GROUP_CHILDREN, recycle={"max_lifetime": "2s"},
                     memory={"sample_interval": "200ms", "retained_window": "2s"},
                     metrics={"listen": "127.0.0.1:%d" % mport})
    mw = t.memward(cfg, name="group_stop")
    first = mw.wait_event("ready", count=1)[0].int("pid")
    sleepers = lib.children_map().get(first, [])
    check(len(sleepers) == 20, "the worker has %d children, want 20" % len(sleepers))
    mw.wait_event("exit", pid=first, timeout=20)
    deadline = time.monotonic() + 5
    while [p for p in sleepers if lib.alive(p)]:
        if time.monotonic() > deadline:
            lib.fail("sleepers of the stopped worker still run")
        time.sleep(0.05)
    time.sleep(1)  # 5 sample ticks
    status, _, body = lib.http_get(mport, "/metrics")
    check(status == 200, "/metrics: %d" % status)
    total = [l for l in body.splitlines() if l.startswith("memward_orphans_killed_total ")]
    check(total == ["memward_orphans_killed_total 0"], "after a normal stop: %s; %s"
          % (total, mw.events("orphans_killed")))
    check(not mw.events("orphans_killed"), "orphans_killed: %s" % mw.events("orphans_killed"))
    check(mw.stop() == 0, "memward's exit code")
    # Nor at memward's own stop: its last worker's group goes with that worker.
    check(not mw.events("orphans_killed"), "orphans_killed at the stop: %s" % mw.events("orphans_killed"))
    print("a worker with 20 `cmd &` children recycled: all gone, memward_orphans_killed_total 0")


def both(t):
    test(t)
    daemons(t)
    inherited(t)
    group_stop(t)


if __name__ == "__main__":
    lib.main(both)
