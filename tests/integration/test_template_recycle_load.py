"""Many quick max_requests recycles of forked workers under load, and not one failed
request: 2 workers forked by the test template, max_requests 4, 8 clients sending
1,200 requests at 150/s, so roughly 250 recycles, each a fork from the template, a
READY=1, then the old worker's graceful stop."""

import lib
from lib import check

COUNT = 2
TOTAL = 1200


def test(t):
    port = t.port()
    cfg = lib.config(port, count=COUNT, command=lib.test_worker("template.py"),
                     workers={"mode": "template"}, recycle={"max_requests": 4})
    mw = t.memward(cfg)
    mw.wait_event("ready", count=COUNT, timeout=20)

    load = t.load(port, threads=8, total=TOTAL, rate=150).join(180)
    load.check_no_failures()
    check(load.ok == TOTAL, "only %d of %d answered" % (load.ok, TOTAL))

    recycles = mw.events("recycle", reason="max_requests")
    check(len(recycles) >= 50, "only %d recycles" % len(recycles))
    check(not mw.events("spawn_failed"), "spawns failed: %r" % [e.text for e in mw.events("spawn_failed")][:3])
    check(not mw.events("template_exited"), "the template died")
    spawns = mw.events("spawn")
    check(all(e.get("template") == "1" for e in spawns), "a spawn without the template")
    unexpected = [e.text for e in mw.events("exit") if e.get("unexpected") == "yes"]
    check(not unexpected, "workers died: %r" % unexpected[:3])
    rc = mw.stop()
    check(rc == 0, "memward exited %s" % rc)
    print("%d recycles, %d spawns, %s" % (len(recycles), len(spawns), load.summary()))


if __name__ == "__main__":
    lib.main(test)
