"""A worker that reports who it runs as, then becomes the example worker.

Writes $WHOAMI_DIR/<pid>.json: real, effective and saved uid and gid, supplementary
groups, umask, effective and permitted capabilities, parent pid. Then execs
examples/python/worker.py with the same pid, so the ids reported are those of the
process that serves requests, sends READY=1 and is recycled."""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "..", "examples", "python", "worker.py")


def status_field(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split()[1]
    return None


mask = os.umask(0)
os.umask(mask)
report = {
    "pid": os.getpid(),
    "ppid": os.getppid(),
    "uids": list(os.getresuid()),
    "gids": list(os.getresgid()),
    "groups": sorted(os.getgroups()),
    "umask": mask,
    "cap_eff": status_field("CapEff"),
    "cap_prm": status_field("CapPrm"),
}
out = os.environ["WHOAMI_DIR"]
tmp = os.path.join(out, ".%d.tmp" % os.getpid())
with open(tmp, "w") as f:
    json.dump(report, f)
os.rename(tmp, os.path.join(out, "%d.json" % os.getpid()))
sys.stdout.flush()
os.execv(sys.executable, [sys.executable, os.path.normpath(EXAMPLE)])
