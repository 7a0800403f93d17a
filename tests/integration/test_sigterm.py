"""SIGTERM/SIGINT: graceful shutdown of every worker, SIGKILL for stragglers.

1. Three example workers, one request in flight (/sleep?ms=700): SIGTERM lets
   the request finish, every worker exits 0, memward exits 0, nothing is left.
2. A worker that ignores SIGTERM (and has a child that ignores it too), next to a
   normal one, graceful_timeout 1s: the normal worker exits 0, the stubborn one and
   its child are SIGKILLed after about a second, memward exits 0, nothing is left.
3. SIGINT is the same as SIGTERM.
4. SIGQUIT is the fast shutdown: stubborn workers are SIGKILLed well before a 30 s
   graceful_timeout."""

import os
import signal

import lib
from lib import check


def graceful(t):
    port = t.port()
    mw = t.memward(lib.config(port, count=3, workers={"graceful_timeout": "5s"}), name="graceful")
    mw.wait_event("ready", count=3)
    workers = mw.current_workers()
    # SIGTERM once a worker has accepted the request.
    th, result = lib.request_in_flight(port, "/sleep?ms=700", workers.values())
    mw.signal(signal.SIGTERM)
    rc = mw.wait_exit(15)
    th.join(10)
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    took = mw.shutdown_seconds()
    check(result and isinstance(result[0], tuple) and result[0][0] == 200,
          "the in-flight request did not complete: %r" % result)
    check(took < 4, "graceful shutdown took %.1fs" % took)
    for slot, pid in workers.items():
        ex = mw.events("exit", pid=pid)
        check(ex, "no exit line for worker %s pid %d" % (slot, pid))
        check(ex[-1].get("status") == "exited" and ex[-1].get("code") == "0",
              "worker %s did not exit 0: %s" % (slot, ex[-1].text))
    check(mw.events("shutdown"), "no event=shutdown line")
    left = t.leftovers()
    check(not left, "processes left after shutdown: %r" % left)


def stubborn(t):
    port = t.port()
    out = t.path("stubborn")
    os.mkdir(out)
    cfg = lib.config(port, count=2, command=lib.test_worker("stubborn.py"),
                     workers={"graceful_timeout": "1s",
                              "env": {"STUBBORN_SLOTS": "0", "STUBBORN_DIR": out}})
    mw = t.memward(cfg, name="stubborn")
    mw.wait_event("ready", count=2)
    workers = mw.current_workers()
    children = {}
    for name in os.listdir(out):
        slot, pid, child = open(os.path.join(out, name)).read().split()
        children[slot] = int(child)
    check(children.get("0") and lib.alive(children["0"]), "stubborn child missing: %r" % children)

    mw.signal(signal.SIGTERM)
    rc = mw.wait_exit(15)
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    took = mw.shutdown_seconds()
    check(0.9 <= took <= 4.0, "shutdown with graceful_timeout 1s took %.2fs" % took)

    ex0 = mw.events("exit", pid=workers["0"])
    check(ex0 and ex0[-1].get("status") == "killed" and ex0[-1].get("signal") == "SIGKILL",
          "the stubborn worker was not SIGKILLed: %r" % ex0)
    ex1 = mw.events("exit", pid=workers["1"])
    check(ex1 and ex1[-1].get("status") == "exited" and ex1[-1].get("code") == "0",
          "the normal worker did not exit 0: %r" % ex1)
    check(not lib.alive(children["0"]), "the stubborn worker's child survived")
    left = t.leftovers()
    check(not left, "processes left after shutdown: %r" % left)


def sigint(t):
    port = t.port()
    mw = t.memward(lib.config(port, count=2), name="sigint")
    mw.wait_event("ready", count=2)
    mw.signal(signal.SIGINT)
    rc = mw.wait_exit(10)
    check(rc == 0, "memward exited %s after SIGINT" % rc)
    check(not t.leftovers(), "processes left after SIGINT: %r" % t.leftovers())


def sigquit(t):
    """SIGQUIT is the fast shutdown: stragglers get SIGKILL after a short grace, not
    after graceful_timeout."""
    port = t.port()
    out = t.path("quit")
    os.mkdir(out)
    cfg = lib.config(port, count=2, command=lib.test_worker("stubborn.py"),
                     workers={"graceful_timeout": "30s",
                              "env": {"STUBBORN_SLOTS": "0,1", "STUBBORN_DIR": out}})
    mw = t.memward(cfg, name="sigquit")
    mw.wait_event("ready", count=2)
    mw.signal(signal.SIGQUIT)
    rc = mw.wait_exit(15)
    check(rc == 0, "memward exited %s after SIGQUIT" % rc)
    took = mw.shutdown_seconds()
    check(took < 5, "SIGQUIT shutdown took %.1fs (graceful_timeout is 30s)" % took)
    check(not t.leftovers(), "processes left after SIGQUIT: %r" % t.leftovers())


def test(t):
    graceful(t)
    stubborn(t)
    sigint(t)
    sigquit(t)


if __name__ == "__main__":
    lib.main(test)
