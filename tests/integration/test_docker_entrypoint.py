"""packaging/docker/Dockerfile's ENTRYPOINT and CMD, run as the image declares them,
without a container engine (CI has none, docs/containers.md).

The test reads the Dockerfile's last stage: what it COPYs where, EXPOSE, STOPSIGNAL,
ENTRYPOINT and CMD. It runs ENTRYPOINT + CMD word for word, with each image path
that a COPY fills replaced by the file it copies (the memward binary under test for
the build stage's /usr/bin/memward, found through PATH as the image would), in new
PID and network namespaces like a container's: memward is PID 1, the 4 workers of
the image's memward.yaml serve on the EXPOSEd port 8000, /healthz on 9181 says
4/4, and the STOPSIGNAL (SIGTERM, what `docker stop` sends PID 1) stops it with exit
code 0."""

import json
import os
import re
import shutil
import signal
import subprocess
import time

import lib
from lib import check

DOCKERFILE = os.path.join(lib.REPO, "packaging", "docker", "Dockerfile")
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
NSENTER = shutil.which("nsenter") or "/usr/bin/nsenter"
PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


def last_stage():
    """{instruction: [arguments, ...]} of the Dockerfile's final stage."""
    with open(DOCKERFILE) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stage = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stage = {}
        stage.setdefault(word.upper(), []).append(rest.strip())
    return stage


def in_netns(pid, port, path):
    """GET http://127.0.0.1:port/path from inside pid's network namespace."""
    p = subprocess.run([NSENTER, "-t", str(pid), "-n", lib.PYTHON, "-c",
                        "import http.client as h; c = h.HTTPConnection('127.0.0.1', %d, timeout=5); "
                        "c.request('GET', %r); r = c.getresponse(); print(r.status, r.read().decode())"
                        % (port, path)], capture_output=True, text=True, timeout=15)
    check(p.returncode == 0, "GET :%d%s in the namespace: %s" % (port, path, p.stderr))
    status, _, body = p.stdout.partition(" ")
    return int(status), body


def test(t):
    if os.geteuid() != 0:
        lib.skip("new PID and network namespaces need root")
    stage = last_stage()
    entrypoint, cmd = json.loads(stage["ENTRYPOINT"][-1]), json.loads(stage["CMD"][-1])
    check(stage.get("STOPSIGNAL") == ["SIGTERM"], "STOPSIGNAL %r" % stage.get("STOPSIGNAL"))
    exposed = sorted(int(p) for line in stage["EXPOSE"] for p in line.split())
    check(exposed == [8000, 9181], "EXPOSE %r" % exposed)

    # What the image holds, and where it comes from on this machine.
    bindir = t.path("bin")
    os.mkdir(bindir)
    files = {}
    for line in stage["COPY"]:
        words = line.split()
        src, dest = words[-2], words[-1]
        if words[0] == "--from=build":
            check(dest == "/usr/bin/memward", "the build stage copies %s" % dest)
            os.symlink(lib.MEMWARD, os.path.join(bindir, "memward"))
        else:
            files[dest] = os.path.join(lib.REPO, src)
    check(entrypoint[0] == "memward", "ENTRYPOINT runs %r, not memward from PATH" % entrypoint[0])
    argv = [files.get(w, w) for w in entrypoint + cmd]
    check(sum(a != w for a, w in zip(argv, entrypoint + cmd)) == 2,
          "want the config and the worker from COPY in %r" % argv)

    memward = lib.MEMWARD
    lib.MEMWARD = UNSHARE
    try:
        mw = lib.Memward(t, ["--net", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL", "/bin/sh", "-c",
                             'ip link set lo up && exec "$@"', "sh"] + argv,
                         {"PATH": bindir + ":" + PATH}, None, "entrypoint")
    finally:
        lib.MEMWARD = memward
    t.memwards.append(mw)
    mw.wait_event("service_ready", timeout=30)
    start = mw.events("start")[0]
    check(start.get("pid") == "1" and start.get("workers") == "4", "not PID 1 with 4 workers: %s" % start.text)
    inner = lib.children_map().get(mw.pid, [])
    check(len(inner) == 1, "unshare's children: %r" % inner)

    status, body = in_netns(inner[0], 8000, "/")
    check(status == 200 and body.startswith("worker="), "GET :8000/ -> %d %r" % (status, body))
    status, body = in_netns(inner[0], 9181, "/healthz")
    check(status == 200 and body.startswith("ok: 4/4"), "GET :9181/healthz -> %d %r" % (status, body))

    os.kill(inner[0], signal.SIGTERM)               # docker stop: STOPSIGNAL to PID 1
    t0 = time.monotonic()
    rc = mw.wait_exit(35)
    check(rc == 0, "exit code %s after SIGTERM" % rc)
    print("ENTRYPOINT + CMD as PID 1: 4 workers on :8000, /healthz ok on :9181, SIGTERM -> exit 0 in %.2fs"
          % (time.monotonic() - t0))


if __name__ == "__main__":
    lib.main(test)
