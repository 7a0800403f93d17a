"""A gunicorn slot is judged by what it costs, each copy-on-write page once.

examples/gunicorn's exec-mode command line runs a gunicorn arbiter and its sync worker
in one slot. The worker is forked from the arbiter, so the two share the interpreter's
and gunicorn's anonymous pages copy-on-write. Summing each process's Anonymous counted
those pages twice (40 MiB for a slot whose processes' Pss adds up to 25 MiB). memward's
anon must be about the tree's summed Pss -- within 20 % -- and well below that sum of
Anonymous, at the sample tick (/status, /metrics) and at request ends (the floor of
retained_requests), with the figure named (anon_from)."""

import json
import os
import time

import lib
import metrics_helpers as mh
from lib import check

GUNICORN = "/usr/bin/gunicorn"
EXAMPLE = os.path.join(lib.REPO, "examples", "gunicorn")
MIB = 1 << 20


def smaps_tree(pid):
    """Pss and Anonymous summed over pid and its descendants, in bytes."""
    total = {"Pss": 0, "Anonymous": 0}
    for p in [pid] + lib.descendants(pid):
        with open("/proc/%d/smaps_rollup" % p) as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in total:
                    total[key] += int(rest.split()[0]) * 1024
    return total


def test(t):
    if not os.access(GUNICORN, os.X_OK):
        lib.skip("%s is not installed (apt-get install gunicorn)" % GUNICORN)
    port, mport = t.port(), t.port()
    cfg = mh.config(port, "127.0.0.1:%d" % mport, count=1,
                    command=[GUNICORN, "-w", "1", "--bind", "fd://3", "-c", "gunicorn_exec.conf.py", "app:app"],
                    workers={"directory": EXAMPLE, "ready_timeout": "30s", "graceful_timeout": "10s"},
                    memory={"metric": "anon", "sample_interval": "250ms", "retained_requests": 1,
                            "boundary_min_interval": "0"})
    mw = t.memward(cfg)
    arbiter = mw.wait_event("ready", timeout=30)[0].int("pid")
    for i in range(20):
        status, _, body = lib.http_get(port, "/")
        check(status == 200, "request %d: %d %r" % (i, status, body))
    time.sleep(1)
    check(len(lib.descendants(arbiter)) >= 1, "the arbiter %d has no worker" % arbiter)

    status, _, body = lib.http_get(mport, "/status")
    check(status == 200, "/status: %d" % status)
    mem = json.loads(body)["workers"][0]["memory"]
    tree = smaps_tree(arbiter)
    _, samples = mh.scrape(mport)
    exported = [v for _, v in mh.values(samples, "memward_worker_memory_bytes", kind="anon")]
    mode = mw.events("accounting")[0].get("mode")

    report = ("anon %.1f MiB (%s), request-end floor %.1f MiB (%s), tree Pss %.1f MiB, tree Anonymous %.1f MiB"
              % (mem["anon"] / MIB, mem.get("anon_from"), (mem["retained"] or 0) / MIB, mem["retained_source"],
                 tree["Pss"] / MIB, tree["Anonymous"] / MIB))
    check(abs(mem["anon"] - tree["Pss"]) <= 0.2 * tree["Pss"], "anon is not the slot's cost: %s" % report)
    check(mem["anon"] <= 0.75 * tree["Anonymous"], "anon counts shared pages twice: %s" % report)
    check(mem.get("anon_from") == ("pss_anon" if mode == "procfs" else "memory.stat"),
          "anon read from %r in %s mode: %s" % (mem.get("anon_from"), mode, report))
    check(mem["metric"] == mem["anon"], "judged %d, reported anon %d" % (mem["metric"], mem["anon"]))
    check(len(exported) == 1 and abs(exported[0] - mem["anon"]) <= 0.1 * mem["anon"],
          "/metrics anon %r against /status %d" % (exported, mem["anon"]))
    # The request-end reading is the same figure, not statm's sum over both processes.
    check(mem["retained_source"] == "request_end", "no request-end floor: %s" % report)
    check(abs(mem["retained"] - tree["Pss"]) <= 0.2 * tree["Pss"], "request-end floor off: %s" % report)

    check(not mw.events("recycle"), "recycled: %s" % [e.text for e in mw.events("recycle")])
    check(mw.stop(timeout=30) == 0, "memward exit code")
    print(report)


if __name__ == "__main__":
    lib.main(test)
