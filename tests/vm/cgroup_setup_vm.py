#!/usr/bin/python3
"""What memward does with its cgroup at start-up, behind tests/vm/test_cgroup_setup.sh.

    /usr/bin/python3 tests/vm/cgroup_setup_vm.py setup

Inside the VM only. Same set-up as tests/vm/memory_vm.py (whose helpers it uses):
memward in /sys/fs/cgroup/app as a unit with Delegate=yes would find itself.

1. Stale leaves: app/worker-5-9 (a process inside) and app/template-2 (empty), left by
   an earlier memward that was killed, are killed and removed at start, before the
   first worker: cgroup_takeover says stale_leaves_removed=2 (memward(8): "Leaves left
   over by an earlier memward (worker-*) are killed and removed").
2. memory.worker_high / worker_max become each worker leaf's memory.high / memory.max,
   with memory.oom.group 1.
3. A systemd unit without Delegate=yes: INVOCATION_ID set, memward's cgroup
   /sys/fs/cgroup/fake.service without the trusted.delegate xattr: mode=procfs with
   reason "systemd unit without Delegate=yes" and no leaf created; the same cgroup
   with trusted.delegate=1 (what systemd writes for Delegate=yes): mode=cgroup.
"""

import os
import subprocess

import memory_vm as vm
from memory_vm import APP, CG, MIB, cg_read, check, lib, ok, wait_until

SERVICE = CG + "/fake.service"
HIGH, MAX = 200 * MIB, 300 * MIB


def start_in(t, cgroup, cfg, name, env=None):
    """memward inside `cgroup`, like `sh -c 'echo $$ > CG/cgroup.procs; exec memward -c CFG'`."""
    path = t.write_config(vm.vm_timeouts(cfg), name + ".yaml")
    real = lib.MEMWARD
    lib.MEMWARD = "/bin/sh"
    try:
        return t.memward(None, name=name, env=env, args=[
            "-c", 'echo $$ > "$0/cgroup.procs" || exit 125; exec "$@"', cgroup, real, "-c", path])
    finally:
        lib.MEMWARD = real


def scenario_setup(t):
    """stale worker-*/template-* leaves removed at start; worker_high/worker_max on the
    leaves; a systemd unit without Delegate=yes runs in procfs mode, with it in cgroup mode."""
    vm.setup_app()
    # 1. What a killed memward leaves behind.
    for leaf in ("worker-5-9", "template-2"):
        os.makedirs(os.path.join(APP, leaf), exist_ok=True)
    stale = subprocess.Popen(["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec sleep 600', APP + "/worker-5-9"],
                             env=dict(os.environ, **{lib.TAG_VAR: t.tag}))
    wait_until(lambda: vm.cgroup_of(stale.pid) == "/app/worker-5-9", 10, "the stale process to enter worker-5-9")

    port = t.port()
    mw = vm.start_memward(t, lib.config(port, count=2, memory={"worker_high": "200MiB", "worker_max": "300MiB"}))
    mw.wait_event("ready", count=2, timeout=60)
    take = mw.events("cgroup_takeover")
    check(take and take[0].get("stale_leaves_removed") == "2", "want stale_leaves_removed=2: %r" % take)
    check(stale.wait(10) is not None, "the process in the stale leaf survived")
    first_spawn = mw.events("spawn")[0]
    check(mw.lines().index(take[0]) < mw.lines().index(first_spawn), "the stale leaves went after the first spawn")
    names = {pid: vm.check_in_own_leaf(mw, pid) for pid in mw.current_workers().values()}
    check(vm.leaves() == sorted(names.values()) and not os.path.exists(APP + "/template-2"),
          "leaves under app/: %r, want only the workers' %r" % (os.listdir(APP), sorted(names.values())))
    ok("stale worker-5-9 (its process killed, %s) and template-2 removed before the first spawn: %s"
       % (lib.signal.Signals(-stale.returncode).name if stale.returncode < 0 else stale.returncode,
          take[0].text.split("event=", 1)[1]))

    # 2. The per-worker limits are the leaves' own.
    for pid, leaf in names.items():
        got = {f: cg_read("%s/%s/%s" % (APP, leaf, f)).strip() for f in ("memory.high", "memory.max", "memory.oom.group")}
        check(got == {"memory.high": str(HIGH), "memory.max": str(MAX), "memory.oom.group": "1"},
              "%s: %r, want memory.high %d (worker_high 200MiB), memory.max %d (worker_max 300MiB), oom.group 1"
              % (leaf, got, HIGH, MAX))
    ok("every worker leaf: memory.high %d, memory.max %d, memory.oom.group 1" % (HIGH, MAX))
    vm.stop_and_check_no_leaves(mw)

    # 3. Under systemd (INVOCATION_ID) in a unit's cgroup: only with the delegation mark.
    os.makedirs(SERVICE, exist_ok=True)
    for delegated in (False, True):
        if delegated:
            os.setxattr(SERVICE, "trusted.delegate", b"1")
        name = "delegated" if delegated else "undelegated"
        mw = start_in(t, SERVICE, lib.config(t.port(), count=1), name, env={"INVOCATION_ID": "0123456789abcdef"})
        mw.wait_event("ready", timeout=60)
        acct = mw.events("accounting")[0]
        want = ("cgroup", "delegated cgroup2 subtree with the memory controller") if delegated else \
            ("procfs", "systemd unit without Delegate=yes")
        check((acct.get("mode"), acct.get("reason")) == want, "%s: %s, want mode=%s reason=%r"
              % (name, acct.text, want[0], want[1]))
        leaves = sorted(d for d in os.listdir(SERVICE) if d.startswith("worker-"))
        check(bool(leaves) == delegated, "%s: worker leaves in fake.service: %r" % (name, leaves))
        check(mw.stop(timeout=30) == 0, "%s: memward did not exit 0" % name)
        ok("%s fake.service: mode=%s reason=\"%s\"" % (name, want[0], want[1]))


if __name__ == "__main__":
    vm.main({"setup": scenario_setup})
