"""The Python runtime of python/ as memward's template: memward-gunicorn and memward-asgi
(python/README.md) behind memward itself, in workers.mode: template.

  * memward-gunicorn -c gunicorn.conf.py wsgi_app:app (python/tests/apps), 2 workers,
    max_requests 10, a paced load of 300 requests: no request fails, every answer comes
    from a worker whose parent is memward and whose LISTEN_PID is its own pid, the
    workers are recycled by max_requests (forked again from the same template), and a
    SIGHUP rolls them onto a new template with no failed request;
  * memward-asgi asgi_app:app (uvicorn): the workers serve, as memward's children, with
    the variables of their SPAWN (NOTIFY_SOCKET, MEMWARD_WORKER_ID/GENERATION and, with
    workers.watchdog, WATCHDOG_USEC; WATCHDOG_PID their own pid).

Skips when /usr/bin/python3 cannot import gunicorn or uvicorn."""

import json
import os
import signal
import subprocess

import lib
from lib import check

APPS = os.path.join(lib.REPO, "python", "tests", "apps")
BIN = os.path.join(lib.REPO, "python", "bin")


def importable(module):
    return subprocess.run([lib.PYTHON, "-c", "import " + module], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def answers(port, n, mw_pid):
    pids = set()
    for _ in range(n):
        status, _, body = lib.http_get(port, "/")
        check(status == 200, "answer: %d %r" % (status, body[:200]))
        d = json.loads(body)
        check(d["ppid"] == mw_pid, "a worker whose parent is %d, not memward %d" % (d["ppid"], mw_pid))
        check(d["env"]["LISTEN_PID"] in (None, str(d["pid"])), "LISTEN_PID %r in pid %d" % (
            d["env"]["LISTEN_PID"], d["pid"]))
        check(d["env"]["MEMWARD_CONTROL_FD"] is None, "a worker sees the control fd")
        pids.add(d["pid"])
    return pids


def gunicorn(t):
    port = t.port()
    cfg = lib.config(port, count=2, command=[lib.PYTHON, os.path.join(BIN, "memward-gunicorn"),
                                             "-c", "gunicorn.conf.py", "wsgi_app:app"],
                     workers={"mode": "template", "directory": APPS, "ready_timeout": "30s"},
                     recycle={"max_requests": 10})
    mw = t.memward(cfg, name="gunicorn")
    mw.wait_event("ready", count=2, timeout=60)
    ready = mw.events("template_ready")[0]
    check("gunicorn" in ready.get("runtime", ""), "runtime: %s" % ready.text)
    answers(port, 5, mw.proc.pid)

    load = t.load(port, threads=4, total=300, rate=60)
    load.join(120).check_no_failures()
    recycles = mw.events("recycle", reason="max_requests")
    check(len(recycles) >= 4, "only %d max_requests recycles" % len(recycles))
    check(all(e.get("template") == "1" for e in mw.events("spawn")), "spawns from another template")

    load = t.load(port, threads=4, rate=60)
    mw.signal(signal.SIGHUP)
    mw.wait_event("reload_done", timeout=60)
    load.stop().check_no_failures()
    check(mw.events("template_switch", generation=2), "no switch to template 2")
    answers(port, 5, mw.proc.pid)
    check(mw.stop(timeout=30) == 0, "memward exit code")
    print("gunicorn: %d recycles" % len(recycles))


def asgi(t):
    port = t.port()
    cfg = lib.config(port, count=2, command=[lib.PYTHON, os.path.join(BIN, "memward-asgi"), "asgi_app:app"],
                     workers={"mode": "template", "directory": APPS, "ready_timeout": "30s", "watchdog": "30s"})
    mw = t.memward(cfg, name="asgi")
    mw.wait_event("ready", count=2, timeout=60)
    pids = answers(port, 10, mw.proc.pid)
    check(pids, "no answer")
    # The SPAWN's ENV: the worker's own NOTIFY_SOCKET, slot, generation and watchdog.
    status, _, body = lib.http_get(port, "/")
    d = json.loads(body)
    env = d["env"]
    check(env["WATCHDOG_USEC"] == "30000000" and env["WATCHDOG_PID"] == str(d["pid"]),
          "watchdog variables: %r" % env)
    check(env["MEMWARD_WORKER_ID"] in ("0", "1") and env["MEMWARD_WORKER_GENERATION"] == "1" and
          env["NOTIFY_SOCKET"].startswith("@memward/"), "worker variables: %r" % env)
    check(mw.stop(timeout=30) == 0, "memward exit code")


def test(t):
    if not importable("gunicorn") or not importable("uvicorn"):
        lib.skip("%s cannot import gunicorn and uvicorn (apt-get install gunicorn python3-uvicorn)" % lib.PYTHON)
    gunicorn(t)
    asgi(t)


if __name__ == "__main__":
    lib.main(test)
