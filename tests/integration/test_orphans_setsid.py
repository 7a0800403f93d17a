"""Nothing a worker starts outlives it, nor memward (issue 16 §3), in procfs mode.

The worker of slot 1 forks 1,000 children that setsid() (a kill of its process group
misses them), ignore SIGTERM and SIGHUP, and keep the listening socket open; slot 0's
worker forks 200 such children. They are their worker's children while it lives.

  1. SIGTTOU stops slot 1's worker: its 1,000 children, re-parented to memward, are all
     gone within 5 s of memward's exit line for it (memward logs orphans_killed), and
     slot 0's 200, whose worker lives, are untouched.
  2. SIGTERM: memward exits 0, with none of the 200 left, and a second memward on the
     same port starts at once: its start line, no listen_failed, a worker serving.

Without the sweep, the children survive both, and the second memward cannot bind."""

import os
import signal
import time

import lib
from lib import check

BIG, SMALL = 1000, 200


def children_of(pids):
    """Those of pids that still run (zombies count as gone)."""
    return [p for p in pids if lib.alive(p)]


def setsid_children(worker):
    """The worker's children in a session of their own."""
    out = []
    for p in lib.children_map().get(worker, []):
        st = lib.proc_stat(p)
        if st and st[2] == p:
            out.append(p)
    return out


def wait_gone(pids, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        left = children_of(pids)
        if not left:
            return time.monotonic()
        if time.monotonic() > deadline:
            lib.fail("%d of %d %s still run after %.0fs (e.g. %s)" % (len(left), len(pids), what, timeout, left[:5]))
        time.sleep(0.05)


def scenario(t, start, mode, big=BIG, small=SMALL, bound=5.0, extra=None):
    """The two steps; start(t, cfg, name) starts a memward (the VM test starts it inside
    its cgroup); mode is the accounting mode it must be in. Returns the second memward's
    start-up time."""
    port = t.port()
    cfg = lib.config(port, count=2, command=lib.test_worker("setsider.py"),
                     workers={"ready_timeout": "120s", "graceful_timeout": "5s",
                              "env": {"SETSIDERS_0": str(small), "SETSIDERS_1": str(big)}}, **(extra or {}))
    mw = start(t, cfg, "first")
    mw.wait_event("ready", count=2, timeout=120)
    acc = mw.events("accounting")[0]
    check(acc.get("mode") == mode, "not in %s mode: %s" % (mode, acc.text))
    workers = mw.current_workers()
    w0, w1 = workers["0"], workers["1"]
    kids1, kids0 = setsid_children(w1), setsid_children(w0)
    check(len(kids1) == big, "slot 1's worker has %d setsid'd children, want %d" % (len(kids1), big))
    check(len(kids0) == small, "slot 0's worker has %d setsid'd children, want %d" % (len(kids0), small))

    # 1. The worker of slot 1 stops (scale down): its children go with it.
    mw.signal(signal.SIGTTOU)
    ex = mw.wait_event("exit", pid=w1, timeout=30)[0]
    gone = wait_gone(kids1, bound, "children of the stopped worker")
    check(len(children_of(kids0)) == small, "children of the live worker were killed: %d of %d left"
          % (len(children_of(kids0)), small))
    check(lib.alive(w0), "slot 0's worker died")
    how = "the leaf's cgroup.kill"
    if mode == "procfs":
        killed = sum(int(l.get("count")) for l in mw.events("orphans_killed"))
        check(killed == big, "memward logged %d orphans killed, want %d: %s" % (killed, big, mw.events("orphans_killed")))
        how = "orphans_killed, sweeps took %s" % ", ".join(l.get("took") for l in mw.events("orphans_killed"))
    print("1. %d children of the stopped worker gone %.2fs after its exit line (%s); the live worker's %d "
          "untouched" % (big, gone - ex.t, how, small))

    # 2. memward exits: nothing it or its workers started is left, the port is free.
    rc = mw.stop(timeout=60)
    check(rc == 0, "memward exited %s" % rc)
    left = children_of(kids0 + kids1)
    check(not left, "%d children outlived memward (e.g. %s)" % (len(left), left[:5]))
    check(not t.leftovers(), "processes of this test outlived memward: %s" % t.leftovers()[:5])
    t0 = time.monotonic()
    mw2 = start(t, lib.config(port, count=1, command=lib.test_worker("setsider.py"), **(extra or {})), "second")
    mw2.wait_event("start", timeout=30)
    started = time.monotonic() - t0
    check(not mw2.events("listen_failed"), "the second memward could not bind: %s" % mw2.events("listen_failed"))
    mw2.wait_event("ready", timeout=60)
    check(mw2.stop(timeout=60) == 0, "the second memward's exit code")
    print("2. memward exited 0 with no child left; a second memward on port %d started in %.2fs" % (port, started))
    return started


def test(t):
    scenario(t, lambda t, cfg, name: t.memward(cfg, name=name), "procfs")


if __name__ == "__main__":
    lib.main(test)
