"""Forked gunicorn workers stop themselves at memward's request limit (issue 15 §4).

memward-gunicorn (python/tests/apps/wsgi_app.py, gunicorn's sync worker), 3 workers in
template mode, recycle.max_requests 30 (jitter 0), hey from 4 clients without keep-alive
at up to 1,000 requests/s for 10 s. Each worker is given its drawn limit in its SPAWN
(MEMWARD_MAX_REQUESTS) and gunicorn's worker finishes the 30th request and exits by
itself -- also the worker memward has not adopted yet (its SPAWNED not read), which
memward alone stopped late: 46 requests in bench/fork's run before.

Checked on what memward logged: every worker life (event=exit requests=, memward's count
of the worker's X_REQUESTS when it was reaped) is at most 30, the limit itself, since a
sync worker serves one request at a time and its count stops at 30; not one exit is
unexpected (a worker that left at its limit is a max_requests recycle, with no backoff:
no respawn_in= line); and not one request fails."""

import os
import re
import shutil
import subprocess

import lib
from lib import check

APPS = os.path.join(lib.REPO, "python", "tests", "apps")
BIN = os.path.join(lib.REPO, "python", "bin")
COUNT, LIMIT = 3, 30
CLIENTS, RATE, SECONDS = 4, 1000, 10


def importable(module):
    return subprocess.run([lib.PYTHON, "-c", "import " + module], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def hey(port):
    """hey's answers: {status: count}, and the count of its errors (refused, reset, ...)."""
    p = subprocess.run(["hey", "-z", "%ds" % SECONDS, "-c", str(CLIENTS), "-q", str(RATE // CLIENTS),
                        "-disable-keepalive", "http://127.0.0.1:%d/" % port],
                       capture_output=True, text=True, timeout=SECONDS + 60)
    check(p.returncode == 0, "hey failed: %s" % (p.stderr or p.stdout)[-500:])
    status = {int(c): int(n) for c, n in re.findall(r"^\s*\[(\d+)\]\s+(\d+) responses", p.stdout, re.M)}
    errors = 0
    if "Error distribution:" in p.stdout:
        errors = sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]", p.stdout.split("Error distribution:", 1)[1],
                                                re.M))
    return status, errors, p.stdout


def test(t):
    if not importable("gunicorn"):
        lib.skip("%s cannot import gunicorn (apt-get install gunicorn)" % lib.PYTHON)
    if not shutil.which("hey"):
        lib.skip("hey is not installed (apt-get install hey)")
    port = t.port()
    cfg = lib.config(port, count=COUNT, command=[lib.PYTHON, os.path.join(BIN, "memward-gunicorn"),
                                                 "-c", "gunicorn.conf.py", "wsgi_app:app"],
                     workers={"mode": "template", "directory": APPS, "ready_timeout": "30s"},
                     recycle={"max_requests": LIMIT, "max_requests_jitter": 0})
    mw = t.memward(cfg)
    mw.wait_event("ready", count=COUNT, timeout=60)

    status, errors, out = hey(port)
    rc = mw.stop(timeout=30)
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    failed = sum(n for c, n in status.items() if c != 200) + errors
    check(failed == 0 and status.get(200, 0) > 0, "failed requests: %s, %d errors\n%s" % (status, errors, out))

    exits = [e for e in mw.events("exit") if e.get("requests") is not None]
    served = [e.int("requests") for e in exits]
    check(len(exits) >= 20, "only %d workers exited: the load did not reach the limits" % len(exits))
    over = [e.text for e in exits if e.int("requests") > LIMIT]
    check(not over, "lives past the limit %d: %s" % (LIMIT, over[:5]))
    unexpected = [e.text for e in exits if e.get("unexpected") == "yes"]
    check(not unexpected, "exits taken for failures: %r" % unexpected[:5])
    backoff = [l for l in mw.lines() if "respawn_in=" in l.text or l.event == "spawn_failed"]
    check(not backoff, "backoff: %r" % [l.text for l in backoff][:5])
    recycles = mw.events("recycle")
    check(all(r.get("reason") == "max_requests" for r in recycles),
          "other recycles: %r" % [r.text for r in recycles if r.get("reason") != "max_requests"][:3])
    by_worker = len([e for e in exits if e.get("stopped_by") == "worker"])
    print("%d answered at %s, %d lives: requests per life max %d, min %d; %d stopped by the worker itself, "
          "%d max_requests recycles" % (status.get(200, 0), re.search(r"Requests/sec:\s+([\d.]+)", out).group(1),
                                         len(exits), max(served), min(served), by_worker, len(recycles)))


if __name__ == "__main__":
    lib.main(test)
