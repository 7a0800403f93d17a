"""gunicorn (Debian's 20.1) as the worker command, recycled by max_requests.

Each slot runs `gunicorn -w 1 --bind fd://3 -c gunicorn.conf.py app:app` from
examples/gunicorn; the post_request hook reports X_REQUESTS and post_worker_init
says READY=1 (from gunicorn's worker, a grandchild of memward). Under a paced load
the slots are recycled several times with zero failed requests, and the example's
memory: policy, in force, recycles none of them."""

import os

import lib
from lib import check
from example_run import check_no_memory_recycle, example_policy

GUNICORN = "/usr/bin/gunicorn"
EXAMPLE = os.path.join(lib.REPO, "examples", "gunicorn")


def test(t):
    if not os.access(GUNICORN, os.X_OK):
        lib.skip("%s is not installed (apt-get install gunicorn)" % GUNICORN)
    port = t.port()
    cfg = lib.config(port, count=2,
                     command=[GUNICORN, "-w", "1", "--bind", "fd://3",
                              "-c", "gunicorn.conf.py", "app:app"],
                     workers={"directory": EXAMPLE, "ready_timeout": "30s",
                              "graceful_timeout": "10s"},
                     recycle={"max_requests": 20, "max_requests_jitter": 5},
                     memory=example_policy("gunicorn"))
    mw = t.memward(cfg)
    mw.wait_event("ready", count=2, timeout=30)
    status, _, body = lib.http_get(port, "/hello")
    check(status == 200 and "path=/hello" in body, "unexpected answer %d %r" % (status, body))

    # ~400 requests over several seconds: a gunicorn needs a moment to boot.
    load = t.load(port, threads=4, total=400, pause=0.04).join(120)
    load.check_no_failures()

    recycles = mw.events("recycle", reason="max_requests")
    check(len(recycles) >= 4, "only %d max_requests recycles" % len(recycles))
    for r in recycles:
        check(20 <= r.int("limit") <= 25, "limit outside [20, 25]: %s" % r.text)
        check(r.int("requests") >= r.int("limit") or r.get("expected_in"),
              "recycled early, and not ahead of its limit: %s" % r.text)
    check(len(load.pids) >= 4, "answers came from only %d gunicorn workers" % len(load.pids))

    recycled = {r.get("pid") for r in recycles}
    exits = [e for e in mw.events("exit") if e.get("pid") in recycled]
    check(exits, "no exit line for any recycled gunicorn")
    for e in exits:
        check(e.get("code") == "0", "a recycled gunicorn did not exit 0: %s" % e.text)

    check_no_memory_recycle(mw, cfg["memory"])

    rc = mw.stop(timeout=30)
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    print("%d recycles, %s" % (len(recycles), load.summary()))


if __name__ == "__main__":
    lib.main(test)
