"""A real Prometheus server scrapes memward and answers queries about every worker.

3 example workers, metrics on a free loopback port; Debian's prometheus started by
the test on another free loopback port (scrape_interval 1s, storage in the test's
temporary directory). Through Prometheus' HTTP query API:
  * up{job="memward"} is 1 (the scrape itself succeeded: format, content type);
  * memward_worker_memory_bytes{kind="anon"} has one series for every slot, with the
    pid of the worker running there now;
  * memward_recycles_total{reason="max_requests"} counts the recycles the log shows;
  * memward_worker_requests_total{slot} counts what was served: 7 requests sum to 7 in
    Prometheus. They go 3 at once, each holding its worker a second, so no worker takes
    more than 3 of them, a second apart: far from max_requests 8 at that rate, memward
    starts no replacement ahead of the limit (expected_in=), as it would for one hot
    worker taking 7 requests at a busy machine's pace (its reset would undo the sum);
  * it starts again at 0 when the slot's worker is replaced, and Prometheus sees that
    as a counter reset (resets() > 0), its increase() keeping at least the 7 it saw
    before and what the slots count at the end.
Prometheus samples each counter once a second: the last requests of a worker recycled
between two scrapes are never seen (with one hot worker taking every connection, a life
of 8 requests at 15/s is shorter than a scrape interval), so increase() is compared
with what Prometheus itself saw, never with the number of requests sent."""

import time

import lib
import metrics_helpers as mh
from lib import check

COUNT = 3
LIMIT = 8
SEEN = LIMIT - 1        # requests no worker can reach its limit with


def wait_query(prom, expr, pred, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = prom.query(expr)
        if pred(last):
            return last
        time.sleep(0.25)
    lib.fail("%s: %s gave %r after %.0fs\nprometheus log:\n%s" % (what, expr, last, timeout, prom.log()))


def test(t):
    port, mport = t.port(), t.port()
    mw = t.memward(mh.config(port, "127.0.0.1:%d" % mport, count=COUNT, recycle={"max_requests": LIMIT}))
    mw.wait_event("ready", count=COUNT, timeout=15)

    prom = mh.Prometheus(t, ["127.0.0.1:%d" % mport])
    try:
        prom.wait_ready()
        wait_query(prom, 'up{job="memward"}', lambda r: r and r[0]["value"][1] == "1", 20, "scrape")

        workers = mw.current_workers()
        result = wait_query(
            prom, 'memward_worker_memory_bytes{job="memward",kind="anon"}',
            lambda r: {s["metric"].get("slot") for s in r} == set(workers), 15, "memory of every slot")
        for s in result:
            slot = s["metric"]["slot"]
            check(s["metric"]["pid"] == str(workers[slot]), "slot %s: pid %s, running %d"
                  % (slot, s["metric"]["pid"], workers[slot]))
            check(float(s["value"][1]) > 0, "slot %s: anon %s" % (slot, s["value"][1]))

        # Counted as served, before any recycle: 3 + 3 + 1 held requests, one per worker
        # and round (sent one after another, a hot worker could take all 7, fast enough
        # for memward to start its replacement early).
        for n in (COUNT, COUNT, SEEN - 2 * COUNT):
            lib.get_at_once(port, "/sleep?ms=1000", n)
        wait_query(prom, 'sum(memward_worker_requests_total{job="memward"})',
                   lambda r: r and float(r[0]["value"][1]) == SEEN, 10, "the %d requests served" % SEEN)
        check(not mw.events("recycle"), "recycled below the limit: %r" % mw.events("recycle"))

        # Recycles counted as the log counts them.
        load = t.load(port, threads=1, total=40, rate=15).join(60)
        load.check_no_failures()
        mw.wait_event("recycle", count=3, timeout=15, reason="max_requests")
        time.sleep(0.5)
        logged = len(mw.events("recycle", reason="max_requests"))
        wait_query(prom, 'memward_recycles_total{job="memward",reason="max_requests"}',
                   lambda r: r and float(r[0]["value"][1]) == len(mw.events("recycle", reason="max_requests")),
                   10, "recycles counted")
        wait_query(prom, 'sum(resets(memward_worker_requests_total{job="memward"}[1m]))',
                   lambda r: r and float(r[0]["value"][1]) >= 1, 10, "a counter reset at a recycle")
        # What the slots count at the end, once Prometheus has scraped it.
        counted = []

        def scraped_as_counted(r):
            _, samples = mh.scrape(mport)
            counted[:] = [sum(v for _, v in mh.values(samples, "memward_worker_requests_total"))]
            return r and float(r[0]["value"][1]) == counted[0]
        wait_query(prom, 'sum(memward_worker_requests_total{job="memward"})', scraped_as_counted, 10,
                   "the final counts scraped")
        final = counted[0]
        total = wait_query(prom, 'sum(increase(memward_worker_requests_total{job="memward"}[1m]))',
                           lambda r: r and float(r[0]["value"][1]) >= max(SEEN, final), 10,
                           "requests across resets (at least the %d seen before them and the %d "
                           "counted at the end)" % (SEEN, final))
        print("prometheus scraped %d slots; %d recycles; increase(requests) %.0f (%d seen before "
              "the recycles, %d counted at the end)" % (len(result), logged, float(total[0]["value"][1]),
                                                        SEEN, final))
    finally:
        prom.stop()
    check(mw.stop() == 0, "memward did not exit 0")


if __name__ == "__main__":
    lib.main(test)
