"""gunicorn (Debian's 20.1) as the worker, recycled for the memory a request left.

Each slot runs `gunicorn -w 1` with examples/gunicorn/gunicorn_exec.conf.py and bench/seed's app,
whose every 4th request builds ~120 MiB of small objects and keeps one in 2,000, so
pymalloc keeps nearly all of it. memward's worker is the gunicorn arbiter; the app and
its memory live in the arbiter's child. With `retained_requests: 1` the request-end
reading must count that child: the heavy request's gunicorn is recycled, reason
retained, source request_end, within 2 s of the response, and the light requests that
follow are answered by its replacement, without a failed request."""

import os
import time

import lib
from lib import check

GUNICORN = "/usr/bin/gunicorn"
HOOKS = os.path.join(lib.REPO, "examples", "gunicorn", "gunicorn_exec.conf.py")
APP_DIR = os.path.join(lib.REPO, "bench", "seed")
MIB = 1 << 20


def test(t):
    if not os.access(GUNICORN, os.X_OK):
        lib.skip("%s is not installed (apt-get install gunicorn)" % GUNICORN)
    port = t.port()
    cfg = lib.config(port, count=1,
                     command=[GUNICORN, "-w", "1", "--bind", "fd://3", "-c", HOOKS, "app:app"],
                     workers={"directory": APP_DIR, "ready_timeout": "30s",
                              "graceful_timeout": "10s",
                              "env": {"HEAVY_EVERY": "4", "HEAVY_MIB": "120", "KEEP_EVERY": "2000"}},
                     memory={"metric": "anon", "retained_requests": 1, "retained_max": "60MiB",
                             "retained_window": "60s", "boundary_min_interval": "0"})
    mw = t.memward(cfg)
    arbiter = mw.wait_event("ready", timeout=30)[0].int("pid")

    for i in range(1, 4):
        status, _, body = lib.http_get(port, "/", timeout=30)
        check(status == 200 and body.startswith("ok "), "request %d: %d %r" % (i, status, body))
    time.sleep(0.3)
    check(not mw.events("recycle"), "recycled before the heavy request: %s" % mw.events("recycle"))

    status, _, body = lib.http_get(port, "/", timeout=60)
    t_done = time.time()                # compared with memward's time=, not when we read its line
    check(status == 200 and body.startswith("heavy "), "request 4 was not the heavy one: %d %r" % (status, body))
    app_pid = int(body.split("pid=")[1].split()[0])
    check(app_pid != arbiter and app_pid in lib.descendants(arbiter),
          "the app ran in %d, not in a child of the arbiter %d" % (app_pid, arbiter))

    rec = mw.wait_event("recycle", reason="retained", timeout=10)[0]
    latency = rec.at - t_done
    check(rec.int("pid") == arbiter, "recycled %s, not the arbiter %d: %s" % (rec.get("pid"), arbiter, rec.text))
    check(rec.get("source") == "request_end", "not decided at the request end: %s" % rec.text)
    check(rec.int("floor") > 60 * MIB, "floor below retained_max: %s" % rec.text)
    check(latency <= 2.0, "recycled %.2fs after the heavy response, want <= 2 s" % latency)

    mw.wait_event("exit", pid=str(arbiter), timeout=20)
    for i in range(5):
        status, _, body = lib.http_get(port, "/", timeout=30)
        check(status == 200, "after the recycle, request %d: %d %r" % (i, status, body))
        check("pid=%d " % app_pid not in body, "answered by the recycled gunicorn: %r" % body)

    rc = mw.stop(timeout=30)
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    print("gunicorn kept %d MiB: recycled %.2fs after the heavy response"
          % (rec.int("floor") // MIB, latency))


if __name__ == "__main__":
    lib.main(test)
