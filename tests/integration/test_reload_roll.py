"""SIGHUP with a good, changed config rolls every worker under continuous load.

Three example workers with EXAMPLE_MESSAGE=v1 in workers.env; the file is changed
to v2 and memward gets SIGHUP: every slot gets a new pid, every old worker exits 0,
afterwards only v2 answers, and not one request fails meanwhile."""

import signal
import time

import lib
from lib import check

COUNT = 3


def test(t):
    port = t.port()

    def cfg(message):
        return lib.config(port, count=COUNT, workers={"env": {"EXAMPLE_MESSAGE": message}})

    mw = t.memward(cfg("v1"), name="memward", config_name="memward.yaml")
    mw.wait_event("ready", count=COUNT)
    old = mw.current_workers()
    check(len(old) == COUNT, "workers after start-up: %r" % old)
    check("message=v1" in lib.http_get(port)[2], "v1 not served")

    load = t.load(port, threads=6)
    time.sleep(0.5)
    t.write_config(cfg("v2"), "memward.yaml")
    since = time.monotonic()
    mw.signal(signal.SIGHUP)

    def rolled(lines):
        exited = {l.get("pid") for l in lines if l.event == "exit" and l.t >= since}
        ready = {l.get("worker") for l in lines if l.event == "ready" and l.t >= since}
        return (all(str(p) in exited for p in old.values())
                and all(s in ready for s in old)) or None
    mw.wait_for(rolled, 30, "every old worker replaced and exited")
    time.sleep(0.5)
    load.stop()
    load.check_no_failures()
    check(load.ok > 100, "the load barely ran: " + load.summary())

    new = mw.current_workers()
    check(sorted(new) == sorted(old), "slots changed: %r -> %r" % (old, new))
    for slot in old:
        check(new[slot] != old[slot], "slot %s kept pid %d" % (slot, old[slot]))
    for pid in old.values():
        ex = mw.events("exit", pid=pid)
        check(ex and ex[-1].get("code") == "0", "old worker %d did not exit 0: %r" % (pid, ex))
    check(mw.events("reload", since=since), "no event=reload line")
    reasons = {l.get("reason") for l in mw.events("recycle", since=since)}
    check(reasons == {"reload"}, "recycle reasons after SIGHUP: %r" % reasons)
    for _ in range(10):
        body = lib.http_get(port)[2]
        check("message=v2" in body, "still serving the old config: %r" % body)

    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    print("rolled %r -> %r; %s" % (old, new, load.summary()))


if __name__ == "__main__":
    lib.main(test)
