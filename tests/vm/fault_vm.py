#!/usr/bin/python3
"""Fault injection behind tests/vm/test_fault_*.sh, one interpreter per VM test.

    /usr/bin/python3 tests/vm/fault_vm.py leaf_removed|leaf_frozen|group_oom|psi_pollerr|reload_fd_limit

Same set-up as tests/vm/memory_vm.py (whose helpers these scenarios use): memward in
/sys/fs/cgroup/app as under systemd with Delegate=yes, the test driver in the root
cgroup. Each scenario breaks something under memward's feet the way an administrator
or the kernel would, and checks that memward keeps supervising: no crash, no busy
loop (its CPU time is measured), a clear log line, and the slot served again.
"""

import errno
import os
import signal
import time

import memory_vm as vm
from memory_vm import APP, CG, MIB, cg_int, cg_keyed, cg_read, cg_write, check, lib, ok, wait_until

# Where an administrator moves a worker before removing its leaf.
ELSEWHERE = CG + "/elsewhere"
# memward's CPU share while a fault lasts: a busy loop on an EPOLLERR fd shows as ~1.0.
# Spawning the replacement in the same 2 s took 8-9 % under TCG with one host core kept
# busy (a preempted vCPU's time is charged to whatever ran on it): room for twice that.
CPU_SHARE_MAX = 0.35


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_share(pid, seconds):
    """memward's CPU time over the next `seconds`, as a share of one CPU."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def check_quiet(mw, what, seconds=2.0):
    share = cpu_share(mw.pid, seconds)
    check(share <= CPU_SHARE_MAX, "memward used %.0f%% of a CPU for %.1fs %s: a busy loop?"
          % (100 * share, seconds, what))
    return share


def rmdir_when_empty(path, timeout=5.0):
    """rmdir, retried while the killed processes are still exiting (EBUSY). Returns
    False when the directory was gone already (memward reaped and removed it first)."""
    def attempt():
        try:
            os.rmdir(path)
            return "removed"
        except OSError as e:
            if e.errno == errno.ENOENT:
                return "gone"
            if e.errno != errno.EBUSY:
                raise
            return None
    return wait_until(attempt, timeout, "rmdir %s" % path, step=0.01) == "removed"


# How soon memward says a leaf or its PSI file is gone, on its own clock: it watches
# for it (the leaf's memory.events fd, the trigger's EPOLLERR), so well within this.
LOST_WITHIN = 5.0


def respawned(mw, slot, generation, timeout=30):
    """The pid of worker slot/generation once it said ready, checked to be in its own leaf."""
    sp = mw.wait_event("spawn", worker=slot, generation=generation, timeout=timeout)[0]
    mw.wait_event("ready", pid=sp.int("pid"), timeout=timeout)
    vm.check_in_own_leaf(mw, sp.int("pid"))
    return sp


def respawn_in(exit_line):
    return lib.parse_duration(exit_line.get("respawn_in"))


def slots_of(mw):
    workers = mw.current_workers()
    return workers, {pid: slot for slot, pid in workers.items()}


def scenario_leaf_removed(t):
    """A worker moved to another cgroup and its leaf rmdir'ed: memward logs
    event=cgroup_leaf_lost at once, does not spin on the leaf's dead memory.events fd,
    and replaces the worker (reason=cgroup_lost) without a failed request. A leaf an
    administrator empties with cgroup.kill and removes: the slot respawns."""
    vm.setup_app()
    port = t.port()
    mw = vm.start_memward(t, lib.config(port, count=2, memory={"sample_interval": "250ms"}))
    mw.wait_event("ready", count=2, timeout=60)
    workers, slot_of = slots_of(mw)
    names = {pid: vm.check_in_own_leaf(mw, pid) for pid in workers.values()}
    moved, killed = sorted(workers.values())
    load = t.load(port, threads=2, rate=20)
    time.sleep(0.5)

    # 1. Moved out, then the leaf removed.
    os.makedirs(ELSEWHERE, exist_ok=True)
    cg_write(ELSEWHERE + "/cgroup.procs", str(moved))
    t0, wall0 = time.monotonic(), time.time()
    os.rmdir("%s/%s" % (APP, names[moved]))
    # "At once" on memward's clock (time=, the guest's wall clock, as time.time()): when
    # the test reads the line also counts how late its reader ran on a busy host.
    lost = mw.wait_event("cgroup_leaf_lost", pid=moved, timeout=30)[0]
    check(lost.get("cgroup") == names[moved], "cgroup_leaf_lost names the wrong leaf: %s" % lost.text)
    check(vm.log_time(lost) - wall0 <= LOST_WITHIN, "event=cgroup_leaf_lost %.2fs after the rmdir by memward's "
          "time=, want within %gs" % (vm.log_time(lost) - wall0, LOST_WITHIN))
    share = check_quiet(mw, "after the leaf of worker %d was removed" % moved)
    rec = mw.wait_event("recycle", pid=moved, timeout=10)[0]
    check(rec.get("reason") == "cgroup_lost", "want reason=cgroup_lost: %s" % rec.text)
    sp = respawned(mw, slot_of[moved], 2)
    ex = mw.wait_event("exit", pid=moved, timeout=30)[0]
    check(ex.get("status") == "exited" and ex.get("code") == "0", "the moved worker did not stop cleanly: %s" % ex.text)
    time.sleep(0.5)
    load.stop()
    load.check_no_failures()
    # The other worker serves on: two requests at once, each holding a worker for a
    # second, reach it and the replacement (the load alone may all go to one hot worker).
    check(lib.alive(killed) and not mw.events("exit", pid=killed), "the other worker %d did not survive" % killed)
    lib.reach_workers(port, [killed, sp.int("pid")])
    check(len(mw.events("cgroup_leaf_lost")) == 1, "cgroup_leaf_lost logged more than once: %r"
          % mw.events("cgroup_leaf_lost"))
    ok("worker %d moved to %s and %s removed: event=cgroup_leaf_lost %.3fs later (time=), memward at %.1f%% CPU for 2s, "
       "recycle reason=cgroup_lost, replacement pid %d (%s) ready %.2fs after the rmdir, old worker exited 0; "
       "load %s" % (moved, ELSEWHERE, names[moved], vm.log_time(lost) - wall0, 100 * share, sp.int("pid"), sp.get("cgroup"),
                    mw.events("ready", pid=sp.int("pid"))[0].t - t0, load.summary()))

    # 2. An administrator's cgroup.kill and rmdir, racing memward's own removal.
    t0 = time.monotonic()
    cg_write("%s/%s/cgroup.kill" % (APP, names[killed]), "1")
    we_removed = rmdir_when_empty("%s/%s" % (APP, names[killed]))
    ex = mw.wait_event("exit", pid=killed, timeout=10)[0]
    check(ex.get("signal") == "SIGKILL" and ex.get("unexpected") == "yes", "want an unexpected SIGKILL exit: %s"
          % ex.text)
    sp2 = respawned(mw, slot_of[killed], 2)
    share = check_quiet(mw, "after an administrator's cgroup.kill and rmdir", 1.0)
    status, _, body = lib.http_get(port, "/", timeout=10)
    check(status == 200, "GET / after the respawn: HTTP %d %r" % (status, body))
    check(mw.running(), "memward died")
    ok("cgroup.kill + rmdir of %s (%s): %s; slot %s respawned as pid %d, ready %.2fs later; memward at %.1f%% CPU%s"
       % (names[killed], "the test's rmdir won" if we_removed else "memward removed it first",
          ex.text.split("event=exit ", 1)[1], slot_of[killed], sp2.int("pid"),
          mw.events("ready", pid=sp2.int("pid"))[0].t - t0, 100 * share,
          "; it saw the leaf go first (cgroup_leaf_lost)" if mw.events("cgroup_leaf_lost", pid=killed) else ""))
    vm.stop_and_check_no_leaves(mw)
    os.rmdir(ELSEWHERE)


GRACEFUL = 3.0


def scenario_leaf_frozen(t):
    """A worker's leaf frozen (cgroup.freeze): it stops pinging the watchdog and is
    replaced (reason=watchdog); its SIGTERM stays pending while frozen, memward keeps
    answering and kills it after graceful_timeout, and removes the frozen leaf. A
    shutdown with a frozen worker ends after graceful_timeout too."""
    vm.setup_app()
    port = t.port()
    mw = vm.start_memward(t, lib.config(port, count=2, memory={"sample_interval": "250ms"}, workers={
        "watchdog": "1s", "graceful_timeout": "%gs" % GRACEFUL, "env": {"MEMWARD_WATCHDOG_USEC": "400000"}}))
    mw.wait_event("ready", count=2, timeout=60)
    workers, slot_of = slots_of(mw)
    names = {pid: vm.check_in_own_leaf(mw, pid) for pid in workers.values()}
    frozen, other = sorted(workers.values())
    leaf = "%s/%s" % (APP, names[frozen])

    cg_write(leaf + "/cgroup.freeze", "1")
    t0 = time.monotonic()
    wait_until(lambda: "frozen 1" in cg_read(leaf + "/cgroup.events"), 5, "%s to be frozen" % names[frozen])
    rec = mw.wait_event("recycle", pid=frozen, timeout=10)[0]
    check(rec.get("reason") == "watchdog", "want reason=watchdog for the frozen worker: %s" % rec.text)
    sp = respawned(mw, slot_of[frozen], 2)
    stop = mw.wait_event("stop", pid=frozen, timeout=10)[0]

    # While the frozen worker sits on its SIGTERM: memward answers, the others serve.
    since = time.monotonic()
    mw.signal(signal.SIGUSR2)
    st = mw.wait_event("status", since=since, timeout=GRACEFUL + 10)[0]
    pids = set()
    for _ in range(4):
        status, headers, body = lib.http_get(port, "/", timeout=5)
        check(status == 200, "GET / while a worker is frozen: HTTP %d %r" % (status, body))
        pids.add(lib.worker_pid_of(headers, body))
    check(frozen not in pids, "the frozen worker answered: %r" % pids)
    check(lib.alive(frozen), "the frozen worker died of its SIGTERM")

    kill = mw.wait_event("kill", pid=frozen, timeout=GRACEFUL + 5)[0]
    ex = mw.wait_event("exit", pid=frozen, timeout=5)[0]
    check(ex.get("signal") == "SIGKILL", "the frozen worker did not die of SIGKILL: %s" % ex.text)
    # On memward's own clock (its time= stamps): when the test reads the lines says
    # nothing about when memward wrote them, on a busy host least of all.
    check(vm.log_time(st) < vm.log_time(kill), "memward answered SIGUSR2 only after its SIGKILL to the frozen "
          "worker (blocked on it?):\n  %s\n  %s" % (st.text, kill.text))
    waited = vm.log_time(kill) - vm.log_time(stop)
    check(GRACEFUL - 0.1 <= waited <= GRACEFUL + 1.5, "SIGKILL %.2fs after the stop, want graceful_timeout %gs"
          % (waited, GRACEFUL))
    wait_until(lambda: not os.path.exists(leaf), 5, "the frozen leaf %s to be removed" % names[frozen])
    ok("%s frozen: recycle reason=watchdog %.2fs later, replacement pid %d ready after %.2fs; SIGTERM pending while "
       "frozen, memward answered SIGUSR2 %.3fs after the stop and pids %s served; SIGKILL %.2fs after the stop "
       "(time=), exit %.3fs later; leaf removed" % (names[frozen], rec.t - t0, sp.int("pid"), mw.events(
           "ready", pid=sp.int("pid"))[0].t - t0, vm.log_time(st) - vm.log_time(stop), sorted(pids), waited,
           vm.log_time(ex) - vm.log_time(kill)))

    # Shutdown while a worker is frozen.
    cg_write("%s/%s/cgroup.freeze" % (APP, names[other]), "1")
    t0 = time.monotonic()
    vm.stop_and_check_no_leaves(mw)
    took = time.monotonic() - t0
    # On memward's clock: from its event=shutdown to its event=exit_supervisor, a
    # graceful_timeout for the frozen worker and little more.
    shut, done = mw.events("shutdown"), mw.events("exit_supervisor")
    check(len(shut) == 1 and len(done) == 1, "want one shutdown and one exit_supervisor line: %r / %r"
          % ([l.text for l in shut], [l.text for l in done]))
    inner = vm.log_time(done[0]) - vm.log_time(shut[0])
    check(GRACEFUL - 0.1 <= inner <= GRACEFUL + 1.5, "shutdown with a frozen worker took %.2fs by memward's time= "
          "(graceful_timeout %gs)" % (inner, GRACEFUL))
    ok("shutdown with %s frozen took %.2fs from event=shutdown to event=exit_supervisor (graceful_timeout %gs; "
       "%.2fs from SIGTERM to memward's exit as the test saw it)" % (names[other], inner, GRACEFUL, took))


def scenario_group_oom(t):
    """The group's memory.max lowered below the workers' total: the kernel OOM-kills
    the largest worker first, never memward (oom_score_adj -1000, its workers keep 0;
    no OOM kill in its own leaf); memward logs
    reason=oom for each victim and respawns. Lowered below what a worker needs to start: workers are
    killed as they start, memward backs off (respawn_in doubles) and survives. Raised
    again: every slot serves and can allocate again."""
    vm.setup_app()
    port = t.port()
    mw = vm.start_memward(t, lib.config(port, count=2, memory={"sample_interval": "250ms"}))
    mw.wait_event("ready", count=2, timeout=60)
    workers, slot_of = slots_of(mw)
    for pid in workers.values():
        vm.check_in_own_leaf(mw, pid)
    scores = [cg_read("/proc/%d/oom_score_adj" % p).strip() for p in [mw.pid] + sorted(workers.values())]
    check(scores == ["-1000", "0", "0"], "oom_score_adj of memward and its workers: %r, want -1000 0 0" % scores)
    status, headers, body = lib.http_get(port, "/alloc?mib=96", timeout=60)
    check(status == 200, "/alloc?mib=96: HTTP %d %r" % (status, body))
    big = lib.worker_pid_of(headers, body)
    small = next(p for p in workers.values() if p != big)

    # 1. Below the total. The kernel kills the largest worker; while that one is still
    # exiting, its loop in memory.max's write may take the next one too (seen under TCG).
    load = t.load(port, threads=2, rate=20)
    time.sleep(0.5)
    anon = cg_keyed(APP + "/memory.stat")["anon"]
    limit = anon - 32 * MIB
    t0 = time.monotonic()
    cg_write(APP + "/memory.max", str(limit))
    # (Victims are logged in the order memward reaps them, not the kernel killed them.)
    rec = mw.wait_event("recycle", reason="oom", pid=big, timeout=15)[0]
    ex = mw.wait_event("exit", pid=big, timeout=10)[0]
    check(ex.get("signal") == "SIGKILL" and ex.get("unexpected") == "yes" and respawn_in(ex) > 0,
          "want an unexpected SIGKILL exit with a backoff: %s" % ex.text)
    sp = respawned(mw, slot_of[big], 2)
    time.sleep(0.5)
    load.stop()
    victims = {l.int("pid") for l in mw.events("recycle", reason="oom")}
    killed = {l.int("pid") for l in mw.events("exit") if l.get("signal") == "SIGKILL"}
    check(killed == victims, "workers SIGKILLed %r, but reason=oom for %r" % (sorted(killed), sorted(victims)))
    check(mw.running() and cg_keyed(APP + "/supervisor/memory.events")["oom_kill"] == 0,
          "memward's own leaf saw an OOM kill")
    if small in victims:
        respawned(mw, slot_of[small], 2)
        fate = "the kernel took worker %d (%.1f MiB) too" % (small, mw.events(
            "recycle", pid=small)[0].int("peak") / MIB)
    else:
        check(load.pids.get(small, 0) > 0 and lib.alive(small), "the other worker did not keep serving: %s"
              % load.summary())
        fate = "worker %d kept serving" % small
    check(load.failed <= len(victims), "more failed requests than OOM victims: %s" % load.summary())
    ok("app memory.max %.1f MiB (anon %.1f MiB): pid %d OOM-killed, reason=oom %.2fs after the write, "
       "respawn_in=%s, slot %s ready again as pid %d; %s; load %s"
       % (limit / MIB, anon / MIB, big, rec.t - t0, ex.get("respawn_in"), slot_of[big], sp.int("pid"), fate,
          load.summary()))

    # 2. Below what memward and a starting worker need: crash loop with backoff.
    sup = cg_int(APP + "/supervisor/memory.current")
    limit = sup + 8 * MIB
    t0 = time.monotonic()
    cg_write(APP + "/memory.max", str(limit))

    def backed_off(lines):
        exits = [l for l in lines if l.event == "exit" and l.t >= t0]
        return exits if any(l.int("failures") >= 4 for l in exits) else None
    exits = mw.wait_for(backed_off, 40, "a slot to fail 4 times in a row")
    ooms = [l for l in mw.events("recycle", reason="oom") if l.t >= t0]
    share = check_quiet(mw, "while workers are OOM-killed as they start", 1.0)
    check(mw.running() and cg_keyed(APP + "/supervisor/memory.events")["oom_kill"] == 0,
          "memward's own leaf saw an OOM kill")
    for slot in sorted({l.get("worker") for l in exits}):
        steps = [respawn_in(l) for l in exits if l.get("worker") == slot]
        check(steps == sorted(steps), "slot %s respawn_in did not grow: %r" % (slot, steps))
    ok("app memory.max %.1f MiB (memward's leaf %.1f MiB + 8): %d exits, %d reason=oom in %.1fs; "
       "respawn_in per exit: %s; memward alive at %.1f%% CPU"
       % (limit / MIB, sup / MIB, len(exits), len(ooms), time.monotonic() - t0,
          " ".join("%s:%s" % (l.get("worker"), l.get("respawn_in")) for l in exits), 100 * share))

    # 3. Raised again: full recovery.
    cg_write(APP + "/memory.max", "max")
    t0, raised = time.monotonic(), time.time()

    def recovered():
        ready = {l.int("pid") for l in mw.events("ready") if l.t >= t0}
        cur = mw.current_workers()
        return cur if len(cur) == 2 and set(cur.values()) <= ready else None
    cur = wait_until(recovered, 30, "both slots to serve again")
    took = time.monotonic() - t0
    for pid in cur.values():
        vm.check_in_own_leaf(mw, pid)
    status, headers, body = lib.http_get(port, "/alloc?mib=96", timeout=60)
    check(status == 200, "/alloc?mib=96 after the limit was raised: HTTP %d %r" % (status, body))
    # No worker spawned after the raise was OOM-killed (a kill from before it may still be
    # logged after it on a busy host: judged by the spawn's own time=, not by arrival).
    time.sleep(0.5)
    spawned_after = {l.int("pid") for l in mw.events("spawn") if l.at > raised}
    late = [l.text for l in mw.events("recycle", reason="oom") if l.int("pid") in spawned_after]
    check(not late and all(lib.alive(p) for p in cur.values()), "workers OOM-killed after the limit was raised: %s"
          % late)
    left = vm.leaves()
    check(len(left) == 2, "leaves under app/ after recovery: %r" % left)
    ok("memory.max back to max: both slots ready %.2fs later (pids %s), /alloc?mib=96 answered, leaves %s"
       % (took, sorted(cur.values()), " ".join(left)))
    vm.stop_and_check_no_leaves(mw)


def scenario_psi_pollerr(t):
    """app/cgroup.pressure set to 0 hides memory.pressure under memward's PSI trigger
    (EPOLLERR, level-triggered): memward logs pressure_trigger_lost once, does not
    spin, and registers the trigger again once cgroup.pressure is 1; a squeeze then
    fires the new trigger and recycles the largest worker (reason=pressure)."""
    vm.setup_app()
    port = t.port()
    mw = vm.start_memward(t, lib.config(port, count=2,
                                        memory={"metric": "anon", "sample_interval": "250ms", "retained_window": "1s"},
                                        pressure={"trigger": "some 50ms 1s", "cooldown": "2s",
                                                  "min_retained": "64MiB"}))
    mw.wait_event("ready", count=2, timeout=60)
    mw.wait_event("pressure_trigger", timeout=5)

    t0, wall0 = time.monotonic(), time.time()
    cg_write(APP + "/cgroup.pressure", "0")
    check(not os.path.exists(APP + "/memory.pressure"), "memory.pressure still there with cgroup.pressure 0")
    lost = mw.wait_event("pressure_trigger_lost", timeout=30)[0]
    check(vm.log_time(lost) - wall0 <= LOST_WITHIN, "event=pressure_trigger_lost %.2fs after cgroup.pressure 0 by "
          "memward's time=, want within %gs" % (vm.log_time(lost) - wall0, LOST_WITHIN))
    share = check_quiet(mw, "with its PSI trigger fd in EPOLLERR", 3.0)
    check(len(mw.events("pressure_trigger_lost")) == 1, "pressure_trigger_lost logged more than once: %r"
          % mw.events("pressure_trigger_lost"))
    hidden = time.monotonic() - t0
    cg_write(APP + "/cgroup.pressure", "1")
    t1 = time.monotonic()
    back = mw.wait_event("pressure_trigger_restored", timeout=15)[0]
    check(mw.running(), "memward died")
    ok("cgroup.pressure 0: pressure_trigger_lost %.3fs later (time=), memward at %.1f%% CPU over 3s; cgroup.pressure 1 "
       "after %.1fs: %s %.2fs later" % (vm.log_time(lost) - wall0, 100 * share, hidden, back.text.split("event=", 1)[1],
                                        back.t - t1))

    workers = mw.current_workers()
    status, headers, body = lib.http_get(port, "/alloc?mib=160", timeout=60)
    check(status == 200, "/alloc?mib=160: HTTP %d %r" % (status, body))
    big = lib.worker_pid_of(headers, body)
    check(big in workers.values(), "/alloc answered by pid %s, not a worker %r" % (big, workers))
    time.sleep(1.5)     # a full retained_window: the floor shows the 160 MiB
    stat = cg_keyed(APP + "/memory.stat")
    high = stat["anon"] - vm.SQUEEZE_BELOW
    t2 = time.monotonic()
    cg_write(APP + "/memory.high", str(high))
    th, res = vm.http_in_thread(port, "/alloc?mib=16", 120)
    try:
        pr = mw.wait_event("pressure", since=t2, timeout=30)[0]
    finally:
        cg_write(APP + "/memory.high", "max")
    lifted = time.monotonic() - t2
    check(pr.get("source") == "trigger", "pressure seen by polling, not the restored trigger: %s" % pr.text)
    rec = mw.wait_event("recycle", reason="pressure", timeout=10)[0]
    check(rec.int("pid") == big, "recycled pid %s, but pid %d holds the most: %s" % (rec.get("pid"), big, rec.text))
    mw.wait_event("exit", pid=big, timeout=60)
    th.join(60)
    check("reply" in res and res["reply"][0] == 200, "the /alloc made during the squeeze failed: %r" % res)
    ok("squeeze to memory.high %.1f MiB: event=pressure source=trigger %.2fs later (lifted after %.2fs), "
       "recycle reason=pressure of pid %d" % (high / MIB, pr.t - t2, lifted, big))
    vm.stop_and_check_no_leaves(mw)


# The open-files limit memward runs under: room for 2 or 3 workers in cgroup mode
# (five fds per leaf), not for 6.
NOFILE = 80


def scenario_reload_fd_limit(t):
    """A reload that asks for more workers than the open-files limit allows is refused
    with event=fd_limit_too_low and the running workers keep serving; one that fits is
    taken. (Start-up refuses the same way: tests/integration/test_fault_fd_limit.py.)"""
    vm.setup_app()
    port = t.port()
    cfg = vm.vm_timeouts(lib.config(port, count=2, memory={"sample_interval": "250ms"}))
    path = t.write_config(cfg, "reload_fd.yaml")
    real = lib.MEMWARD
    lib.MEMWARD = "/bin/sh"
    try:
        mw = t.memward(None, name="reload_fd", args=[
            "-c", 'echo $$ > "$0/cgroup.procs" || exit 125; exec prlimit --nofile=%d:%d "$@"' % (NOFILE, NOFILE),
            APP, real, "-c", path])
    finally:
        lib.MEMWARD = real
    mw.wait_event("ready", count=2, timeout=60)
    acct = mw.events("accounting")
    check(acct and acct[0].get("mode") == "cgroup", "not in cgroup mode: %r" % acct)

    cfg["workers"]["count"] = 6
    t.write_config(cfg, "reload_fd.yaml")
    t0 = time.monotonic()
    mw.signal(signal.SIGHUP)
    low = mw.wait_event("fd_limit_too_low", since=t0, timeout=10)[0]
    failed = mw.wait_event("reload_failed", since=t0, timeout=10)[0]
    check(low.int("workers") == 6 and low.int("limit") == NOFILE, "unexpected fd_limit_too_low: %s" % low.text)
    time.sleep(1.0)
    check(not mw.events("spawn", since=t0), "workers spawned by a refused reload: %r" % mw.events("spawn", since=t0))
    status, _, body = lib.http_get(port, "/", timeout=10)
    check(status == 200, "GET / after the refused reload: HTTP %d %r" % (status, body))

    cfg["workers"]["count"] = 3
    t.write_config(cfg, "reload_fd.yaml")
    t1 = time.monotonic()
    mw.signal(signal.SIGHUP)
    mw.wait_event("reload_done", since=t1, timeout=60)
    check(len(mw.current_workers()) == 3, "want 3 workers after the reload that fits: %r" % mw.current_workers())
    ok("nofile %d: reload to 6 workers refused (%s; %s), 2 kept serving; reload to 3 taken"
       % (NOFILE, low.text.split("event=", 1)[1], failed.text.split("event=", 1)[1]))
    vm.stop_and_check_no_leaves(mw)


SCENARIOS = {
    "leaf_removed": scenario_leaf_removed,
    "leaf_frozen": scenario_leaf_frozen,
    "group_oom": scenario_group_oom,
    "psi_pollerr": scenario_psi_pollerr,
    "reload_fd_limit": scenario_reload_fd_limit,
}


if __name__ == "__main__":
    vm.main(SCENARIOS)
