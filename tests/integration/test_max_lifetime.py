"""recycle.max_lifetime: every worker is replaced after its drawn lifetime
(1 s + up to 500 ms jitter), rolling, with the reason and age in the log, and no
failed request meanwhile."""

import time

import lib
from lib import check


def test(t):
    port = t.port()
    mw = t.memward(lib.config(port, count=2, recycle={"max_lifetime": "1s",
                                                      "max_lifetime_jitter": "500ms"}))
    mw.wait_event("ready", count=2)
    load = t.load(port, threads=4, pause=0.01)
    recycles = mw.wait_event("recycle", count=4, timeout=15, reason="max_lifetime")
    load.stop()
    load.check_no_failures()
    for r in recycles:
        age = lib.parse_duration(r.get("age"))
        check(age is not None and age >= 1, "recycled too young: %s" % r.text)
    slots = {r.get("worker") for r in recycles}
    check(slots == {"0", "1"}, "recycled slots: %r" % slots)
    rc = mw.stop()
    check(rc == 0, "memward exited %s" % rc)
    print("%d lifetime recycles, %s" % (len(recycles), load.summary()))


if __name__ == "__main__":
    lib.main(test)
