"""memward SIGKILLed in workers.mode: template: no forked worker outlives it.

An exec'd worker dies with memward through the PR_SET_PDEATHSIG(SIGKILL) memward sets
between fork and exec (test_supervisor_killed). A forked worker is not exec'd by
memward: the Python runtime sets the same signal in the worker once the double fork
has re-parented it to memward (docs/fork-server.md section 3 step 4.6). Here memward
runs memward-asgi (uvicorn has no parent check of its own, so nothing else would stop
its workers) and memward-gunicorn, 3 workers each, one of them forked again after a
SIGHUP rolled them onto a second template; memward is SIGKILLed, and every worker and
the template must be gone within DEADLINE seconds.

Skips when /usr/bin/python3 cannot import uvicorn and gunicorn."""

import os
import signal
import subprocess
import time

import lib
from lib import check

APPS = os.path.join(lib.REPO, "python", "tests", "apps")
BIN = os.path.join(lib.REPO, "python", "bin")
DEADLINE = 3.0


def importable(module):
    return subprocess.run([lib.PYTHON, "-c", "import " + module], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def run(t, name, command):
    port = t.port()
    cfg = lib.config(port, count=3, command=[lib.PYTHON, os.path.join(BIN, command[0])] + command[1:],
                     workers={"mode": "template", "directory": APPS, "ready_timeout": "30s"})
    mw = t.memward(cfg, name=name)
    mw.wait_event("ready", count=3, timeout=60)
    # A reload: the workers running now were forked from the second template.
    mw.signal(signal.SIGHUP)
    mw.wait_event("reload_done", timeout=60)
    check(lib.http_get(port, "/")[0] == 200, "%s: the workers do not serve" % name)
    workers = sorted(mw.current_workers().values())
    check(len(workers) == 3, "%s: want 3 workers, have %r" % (name, workers))
    for pid in workers:
        ppid = lib.proc_stat(pid)[1]
        check(ppid == mw.proc.pid, "%s: worker %d has parent %d, not memward %d" % (name, pid, ppid, mw.proc.pid))
    templates = [int(e.get("pid")) for e in mw.events("template_ready")]
    template = templates[-1]
    check(lib.alive(template), "%s: template %d is not running" % (name, template))

    mw.proc.send_signal(signal.SIGKILL)
    mw.proc.wait(timeout=5)
    killed = time.monotonic()
    gone = {}
    while time.monotonic() < killed + DEADLINE and len(gone) < len(workers) + 1:
        for pid in workers + [template]:
            if pid not in gone and not lib.alive(pid):
                gone[pid] = time.monotonic() - killed
        time.sleep(0.01)
    left = [p for p in workers + [template] if p not in gone]
    for pid in left:
        os.kill(pid, signal.SIGKILL)        # the runner's tag would get them too; say it here
    check(not left, "%s: %r outlived memward's SIGKILL by %.0f s (workers %r, template %d)"
          % (name, left, DEADLINE, workers, template))
    print("%s: memward %d SIGKILLed; workers %s and template %d gone %s s later" % (
        name, mw.proc.pid, workers, template,
        ", ".join("%.3f" % gone[p] for p in workers + [template])))


def test(t):
    if not importable("uvicorn") or not importable("gunicorn"):
        lib.skip("%s cannot import uvicorn and gunicorn (apt-get install gunicorn python3-uvicorn)"
                 % lib.PYTHON)
    run(t, "asgi", ["memward-asgi", "asgi_app:app"])
    run(t, "gunicorn", ["memward-gunicorn", "-c", "gunicorn.conf.py", "wsgi_app:app"])


if __name__ == "__main__":
    lib.main(test)
