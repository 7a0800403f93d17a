"""With systemd's ProcSubset=pid and no MemoryMax= the group limit is unknown:
/proc/meminfo does not exist. Reproduced without root by a /proc mounted with
subset=pid in a user+mount+pid namespace (unshare -rmpf), the same procfs option
ProcSubset=pid uses:
  * a percentage (worker_max: 50%) refuses to start with one error naming the
    setting, the path and the errno, before any worker is spawned;
  * absolute sizes start, after one warning that says the same and that
    percentages cannot be resolved."""

import shutil
import subprocess

import lib
from lib import check

SUBSET_PROC = "mount -t proc -o subset=pid proc /proc && test ! -e /proc/meminfo && "


def in_namespace(t, script, timeout=15):
    p = subprocess.run(["unshare", "-rmpf", "sh", "-c", SUBSET_PROC + script],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, cwd=t.dir,
                       env={"PATH": "/usr/bin:/bin", lib.TAG_VAR: t.tag})
    return p.returncode, p.stderr.decode("utf-8", "replace")


def config(memory):
    return lib.config(0, count=1, command=["/bin/sleep", "60"], listen=[], memory=memory)


def events(err, name):
    return [l for l in map(lib.parse_logfmt, err.splitlines()) if l.get("event") == name]


def test(t):
    if not shutil.which("unshare"):
        lib.skip("no unshare(1)")
    rc, err = in_namespace(t, "true")
    if rc != 0:
        lib.skip("cannot mount a subset=pid /proc in a user namespace: %s" % err.strip())

    cfg = t.write_config(config({"worker_high": "256MiB", "worker_max": "50%"}), "percent.yaml")
    rc, err = in_namespace(t, "exec %s -c %s" % (lib.MEMWARD, cfg))
    check(rc != 0, "started with worker_max: 50%% and no known limit:\n%s" % err)
    unknown = events(err, "group_limit_unknown")
    check(len(unknown) == 1, "want one group_limit_unknown line:\n%s" % err)
    u = unknown[0]
    check(u.get("level") == "error", "percentage: level=%r, want error:\n%s" % (u.get("level"), err))
    check(u.get("setting") == "memory.worker_max", "setting=%r:\n%s" % (u.get("setting"), err))
    check(u.get("path") == "/proc/meminfo", "path=%r:\n%s" % (u.get("path"), err))
    check(u.get("error") == "No such file or directory", "error=%r:\n%s" % (u.get("error"), err))
    check(not events(err, "spawn"), "a worker was spawned:\n%s" % err)
    print("percentage: refused, exit %d: %s" % (rc, u.get("msg")))

    cfg = t.write_config(config({"worker_max": "512MiB"}), "absolute.yaml")
    rc, err = in_namespace(t, "timeout -s TERM 2 %s -c %s; true" % (lib.MEMWARD, cfg))
    check(events(err, "spawn"), "absolute sizes: no worker spawned:\n%s" % err)
    unknown = events(err, "group_limit_unknown")
    check(len(unknown) == 1 and unknown[0].get("level") == "warning",
          "absolute sizes: want one group_limit_unknown warning:\n%s" % err)
    check("percent" in unknown[0].get("msg", ""), "the warning does not mention percentages:\n%s" % err)
    check(unknown[0].get("path") == "/proc/meminfo", "path=%r" % unknown[0].get("path"))
    accounting = events(err, "accounting")
    check(accounting and accounting[0].get("group_limit") == "0", "accounting line:\n%s" % err)
    print("absolute sizes: started, warned once: %s" % unknown[0].get("msg"))


if __name__ == "__main__":
    lib.main(test)
