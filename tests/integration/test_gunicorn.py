"""examples/gunicorn behind memward, both ways, recycled by max_requests.

  * template (examples/gunicorn/memward.yaml, the way the README recommends): the
    example's own workers.mode and command, `python/bin/memward-gunicorn -c
    gunicorn.conf.py app:app`; every worker is forked from the template and reports
    READY=1 and X_REQUESTS itself. example_run's checks (no failed request, every slot
    recycled at its limit, answers only from spawned workers, a request held across a
    SIGHUP answered by the stopped worker), plus: every spawn came from a template, and
    the SIGHUP rolled onto a new one;
  * exec (examples/gunicorn/memward-exec.yaml): each slot runs `gunicorn -w 1 --bind
    fd://3 -c gunicorn_exec.conf.py app:app`; the post_request hook reports X_REQUESTS
    and post_worker_init says READY=1 (from gunicorn's worker, a grandchild of memward).
    Under a paced load the slots are recycled several times with zero failed requests.

Both run with the memory: policy of their config in force, which must recycle none of
the workers. Skips when Debian's gunicorn is not installed."""

import os

import yaml

import lib
from lib import check
from example_run import check_no_memory_recycle, example_policy, run_example

GUNICORN = "/usr/bin/gunicorn"
EXAMPLE = os.path.join(lib.REPO, "examples", "gunicorn")


def example_workers(name):
    with open(os.path.join(EXAMPLE, name)) as f:
        return yaml.safe_load(f)["workers"]


def template(t):
    w = example_workers("memward.yaml")
    check(w.get("mode") == "template", "examples/gunicorn/memward.yaml is not in template mode: %r" % w)
    mw = run_example(t, w["command"], directory=EXAMPLE, mode="template", ready_timeout="30s", policy="gunicorn")
    started = mw.events("template_ready")
    check(started and "gunicorn" in started[0].get("runtime", ""),
          "no template_ready from memward-gunicorn: %r" % [l.text for l in started])
    spawns = mw.events("spawn")
    check(spawns and all(e.get("template") for e in spawns),
          "spawns without a template: %r" % [e.text for e in spawns if not e.get("template")][:3])
    check(mw.events("template_switch", generation=2), "the SIGHUP did not switch to template 2")
    print("template: %d workers forked from %d templates" % (len(spawns), len(mw.events("template_ready"))))


def exec_path(t):
    w = example_workers("memward-exec.yaml")
    check(w["command"][0] == GUNICORN and "gunicorn_exec.conf.py" in w["command"],
          "examples/gunicorn/memward-exec.yaml runs %r" % w["command"])
    port = t.port()
    cfg = lib.config(port, count=2, command=w["command"],
                     workers={"directory": EXAMPLE, "ready_timeout": "30s",
                              "graceful_timeout": "10s"},
                     recycle={"max_requests": 20, "max_requests_jitter": 5},
                     memory=example_policy("gunicorn", "memward-exec.yaml"))
    mw = t.memward(cfg, name="exec")
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
    print("exec: %d recycles, %s" % (len(recycles), load.summary()))


def test(t):
    if not os.access(GUNICORN, os.X_OK):
        lib.skip("%s is not installed (apt-get install gunicorn)" % GUNICORN)
    template(t)
    exec_path(t)


if __name__ == "__main__":
    lib.main(test)
