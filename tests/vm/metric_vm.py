#!/usr/bin/python3
"""memory.metric in cgroup mode, behind tests/vm/test_memory_metric.sh.

    /usr/bin/python3 tests/vm/metric_vm.py current

Inside the VM only; memward in /sys/fs/cgroup/app as tests/vm/memory_vm.py sets it up.
The worker (tests/integration/workers/mapper.py) holds 32 MiB of shared memory (a
memfd, charged to its leaf: in memory.current, not in anon) and a few MiB of anon.
With retained_max 20MiB, metric current recycles it (the recycle line says
metric=current, floor above 20 MiB); metric anon never does, although the leaf's
memory.current is above 20 MiB all along (the control). test_recycle_scheduling
checks rss and pss the same way on the host."""

import os
import time

import memory_vm as vm
from cgroup_setup_vm import start_in
from memory_vm import APP, CG, MIB, cg_int, cg_keyed, check, lib, ok

LIMIT = 20 * MIB


def scenario_current(t):
    """metric current recycles a worker whose leaf holds 32 MiB of shared memory at
    retained_max 20MiB; metric anon does not."""
    vm.setup_app()
    for metric in ("anon", "current"):
        # One memward per delegated cgroup: a second one could not enter app/, which
        # has controllers for its children now.
        group = APP if metric == "current" else CG + "/anon.app"
        cfg = lib.config(t.port(), count=1, command=lib.test_worker("mapper.py"), listen=[],
                         workers={"ready": "1s", "env": {"MAPPER_MIB": "32"}},
                         memory={"metric": metric, "sample_interval": "200ms", "retained_window": "600ms",
                                 "retained_max": "20MiB"})
        if group != APP:
            os.makedirs(group, exist_ok=True)
        mw = start_in(t, group, cfg, metric)
        spawn = mw.wait_event("spawn", timeout=60)[0]
        mw.wait_event("ready", timeout=60)
        leaf = "%s/%s" % (group, spawn.get("cgroup"))
        check(spawn.get("cgroup", "").startswith("worker-"), "not in a leaf of its own: %s" % spawn.text)
        if metric == "current":
            r = mw.wait_event("recycle", reason="retained", timeout=30)[0]
            check(r.get("metric") == "current" and int(r.get("floor")) > LIMIT,
                  "want metric=current with a floor above 20 MiB: %s" % r.text)
            ok("metric current: recycled, floor %.1f MiB (anon %.1f MiB)"
               % (int(r.get("floor")) / MIB, int(r.get("anon")) / MIB))
        else:
            vm.wait_until(lambda: cg_int(leaf + "/memory.current") > LIMIT + 8 * MIB, 30,
                          "the leaf's memory.current to pass 28 MiB")
            time.sleep(3.0)     # five retained windows
            current = cg_int(leaf + "/memory.current")
            anon = cg_keyed(leaf + "/memory.stat")["anon"]
            check(not mw.events("recycle"), "metric anon recycled a worker with anon %.1f MiB: %r"
                  % (anon / MIB, mw.events("recycle")))
            check(current > LIMIT and anon < LIMIT, "the control: memory.current %.1f MiB, anon %.1f MiB"
                  % (current / MIB, anon / MIB))
            ok("metric anon: no recycle in 3 s with the leaf's memory.current %.1f MiB, anon %.1f MiB"
               % (current / MIB, anon / MIB))
        check(mw.stop(timeout=30) == 0, "%s: memward did not exit 0" % metric)


if __name__ == "__main__":
    vm.main({"current": scenario_current})
