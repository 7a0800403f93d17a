"""N workers serve a real HTTP load and are recycled by max_requests with jitter.

4 example workers, recycle {max_requests: 50, max_requests_jitter: 10}, 2,000
requests from 8 concurrent clients, each holding its worker 10 ms (/sleep): with more
clients than workers, every worker has requests waiting, so a hot worker cannot take
every connection (which worker accepts is the kernel's choice; an idle worker that just
answered often wins it), and every slot is recycled several times; no
request fails, every recycle line reports a drawn limit in [50, 60] and at least
that many requests -- or, for a recycle started ahead of the limit so that the
replacement is ready in time, when the limit was expected (expected_in=) -- and every
replaced worker exits 0 (stopped gracefully). test_max_requests_bound checks that the
limit holds under a load that queues recycles."""

import collections

import lib
from lib import check

COUNT = 4
TOTAL = 2000


def test(t):
    port = t.port()
    mw = t.memward(lib.config(port, count=COUNT,
                              recycle={"max_requests": 50, "max_requests_jitter": 10}))
    mw.wait_event("ready", count=COUNT, timeout=15)
    first = mw.current_workers()
    check(sorted(first) == [str(i) for i in range(COUNT)], "slots after start-up: %r" % first)

    # Paced at up to 300 requests/s: a rolling recycle (start, wait for READY=1, stop)
    # takes ~0.1 s, so flat out the load would be over before the slots could take turns.
    load = t.load(port, threads=8, total=TOTAL, rate=300, path="/sleep?ms=10").join(120)
    load.check_no_failures()
    check(load.ok == TOTAL, "only %d of %d requests answered" % (load.ok, TOTAL))

    recycles = mw.events("recycle", reason="max_requests")
    per_slot = collections.Counter(r.get("worker") for r in recycles)
    for slot in range(COUNT):
        check(per_slot[str(slot)] >= 3,
              "slot %d recycled %d times (want several); per slot: %r"
              % (slot, per_slot[str(slot)], dict(per_slot)))
    limits = []
    for r in recycles:
        limit, requests = r.int("limit"), r.int("requests")
        check(50 <= limit <= 60, "limit outside [50, 60]: %s" % r.text)
        check(requests >= limit or r.get("expected_in"),
              "recycled before reaching its limit, and not ahead of it: %s" % r.text)
        limits.append(limit)
    check(len(set(limits)) >= 2, "no jitter: every limit drawn was %r" % sorted(set(limits)))
    check(len(load.pids) > COUNT, "only %d distinct workers answered" % len(load.pids))

    # Everything recycled so far was stopped gracefully: it exited 0 by itself.
    recycled = {r.get("pid") for r in recycles}
    for e in mw.events("exit"):
        if e.get("pid") in recycled:
            check(e.get("status") == "exited" and e.get("code") == "0",
                  "a recycled worker did not exit 0: %s" % e.text)

    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    print("%d recycles, per slot %r, limits %d..%d, %s" % (
        len(recycles), dict(per_slot), min(limits), max(limits), load.summary()))


if __name__ == "__main__":
    lib.main(test)
