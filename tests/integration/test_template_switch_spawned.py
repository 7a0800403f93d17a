"""A SPAWNED the old template sent before memward read the new template's READY is taken,
not given up (docs/fork-server.md §3 step 4.7).

One worker of the test template, max_requests 1, every SPAWNED answered 3 s after the
fork (the worker already serves). A request makes memward recycle the worker: SPAWN to
template 1. SIGHUP starts template 2; memward is then SIGSTOPped until template 2 has said
READY (about 0.5 s) and template 1 has sent its SPAWNED (3 s): on SIGCONT both wait in
one wake-up, template 2's READY first. memward must take template 1's SPAWNED before it
retires template 1: the worker is adopted (event=spawn template=1) and rolled onto
template 2 like any other. Giving the spawn up instead (spawn_cancelled) would leave that
worker, which was serving, to be killed as an orphan with the connections it had taken:
the rare failed request of test_template_python."""

import os
import signal
import time

import lib
from lib import check

ANSWER_DELAY_MS = 3000


def test(t):
    port = t.port()
    cfg = lib.config(port, count=1, command=lib.test_worker("template.py"),
                     workers={"mode": "template", "ready_timeout": "20s", "fork_timeout": "30s",
                              "env": {"TEST_TEMPLATE_ANSWER_DELAY_MS": str(ANSWER_DELAY_MS)}},
                     recycle={"max_requests": 1})
    mw = t.memward(cfg)
    mw.wait_event("ready", timeout=30)
    first = mw.events("spawn")[0]

    status, _, _ = lib.http_get(port, "/")
    check(status == 200, "the first request: %d" % status)
    mw.wait_event("recycle", reason="max_requests", pid=first.get("pid"), timeout=10)
    asked = time.monotonic()            # the SPAWN to template 1 goes out with the recycle
    mw.signal(signal.SIGHUP)
    mw.wait_event("template_start", generation=2, timeout=10)
    mw.signal(signal.SIGSTOP)
    try:
        # Template 2 says READY within ~0.5 s; template 1 answers 3 s after its fork.
        time.sleep(max(0.0, asked + ANSWER_DELAY_MS / 1000 + 1.5 - time.monotonic()))
    finally:
        mw.signal(signal.SIGCONT)

    mw.wait_event("template_switch", generation=2, timeout=10)
    mw.wait_event("reload_done", timeout=30)
    spawns = [e for e in mw.events("spawn") if e.get("template") == "1"]
    check(len(spawns) == 2, "template 1's second worker was not adopted: spawns %r, cancelled %r, killed %r"
          % ([e.text for e in mw.events("spawn")], [e.text for e in mw.events("spawn_cancelled")],
             [e.text for e in mw.events("orphans_killed") + mw.events("template_orphan_killed")]))
    check(not mw.events("spawn_cancelled"), "spawn given up: %r" % [e.text for e in mw.events("spawn_cancelled")])
    check(not mw.events("orphans_killed") and not mw.events("template_orphan_killed"),
          "a worker killed as an orphan: %r" % [e.text for e in mw.events("orphans_killed")])
    adopted = spawns[1]
    mw.wait_event("exit", pid=adopted.get("pid"), timeout=20)
    check(mw.events("recycle", pid=adopted.get("pid")), "the adopted worker was not rolled: %r"
          % [e.text for e in mw.events("exit", pid=adopted.get("pid"))])
    status, _, _ = lib.http_get(port, "/")
    check(status == 200, "after the reload: %d" % status)
    check(mw.stop() == 0, "memward exit code")
    print("template 1's SPAWNED, read after template 2's READY: worker %s adopted (%s) and rolled"
          % (adopted.get("pid"), adopted.text.split("event=")[1]))


if __name__ == "__main__":
    lib.main(test)
