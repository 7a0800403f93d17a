#!/usr/bin/python3
"""The scenarios behind tests/vm/test_memory_*.sh, one interpreter per VM test.

    /usr/bin/python3 tests/vm/memory_vm.py cgroup|recycle|grandchildren|setsid|oom|pressure|template|template_oom|template_reload|slot_modes

Inside the VM only (they change the root cgroup). Each scenario sets memward up the way a
systemd unit with Delegate=yes would find itself: /sys/fs/cgroup/app, a child of the root
with +memory +pids enabled for it, and memward started inside it through
`sh -c 'echo $$ > app/cgroup.procs; exec memward ...'`. The test driver itself stays in
the root cgroup, so squeezing app never throttles it.

Built on tests/integration/lib.py (memward's log read line by line with arrival times,
HTTP helpers, load generator, cleanup of every tagged process). Prints "ok: ..." per
step; on the first broken expectation "FAIL: ..." on stderr, memward's log, exit 1.
"""

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import lib  # noqa: E402
from lib import check  # noqa: E402

MIB = 1 << 20
CG = "/sys/fs/cgroup"
APP = CG + "/app"


def ok(msg):
    print("ok: " + msg, flush=True)


# ---------------------------------------------------------------- cgroup files

def cg_read(path):
    with open(path) as f:
        return f.read()


def cg_write(path, text):
    with open(path, "w") as f:
        f.write(text)


def cg_int(path):
    return int(cg_read(path).strip())


def cg_keyed(path):
    """memory.stat / memory.events as {key: int}."""
    out = {}
    for line in cg_read(path).splitlines():
        k, _, v = line.partition(" ")
        out[k] = int(v)
    return out


def cgroup_of(pid):
    """The cgroup-v2 path of pid ('/app/worker-0-1'), None if it is gone."""
    try:
        for line in cg_read("/proc/%d/cgroup" % pid).splitlines():
            if line.startswith("0::"):
                return line[3:]
    except OSError:
        return None
    return None


NOBODY = 65534


def proc_ids(pid):
    """The four uids (real, effective, saved, fs) of pid's Uid: line."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return None


def alive_pid(pid):
    return lib.alive(pid)


def leaves():
    return sorted(d for d in os.listdir(APP) if d.startswith("worker-") and os.path.isdir(os.path.join(APP, d)))


def setup_app():
    """What systemd does for a unit with Delegate=yes: a child cgroup whose
    controllers include memory and pids."""
    check(os.path.exists("/proc/pressure/memory") and os.path.exists(CG + "/cgroup.controllers"),
          "no cgroup2 with PSI at %s: not the memward VM?" % CG)
    cg_write(CG + "/cgroup.subtree_control", "+memory +pids")
    os.makedirs(APP, exist_ok=True)
    controllers = cg_read(APP + "/cgroup.controllers").split()
    check("memory" in controllers and "pids" in controllers,
          "app/cgroup.controllers lacks memory or pids: %r" % controllers)


def reset_app():
    """app/ as systemd hands it over, for a second memward in it: no child cgroup left,
    no controller enabled for children."""
    for d in os.listdir(APP):
        if os.path.isdir(os.path.join(APP, d)):
            os.rmdir(os.path.join(APP, d))
    cg_write(APP + "/cgroup.subtree_control", "-memory -pids")


# lib.config's ready_timeout (10 s) is sized for the host. Under TCG a Python worker
# takes seconds to say READY=1, with others starting beside it (three example workers
# under systemd: 2.2-3.1 s past their boot delay on a loaded host), more when the host
# is busier still: one past 10 s would be killed and respawned, shifting the
# generations and exits the tests name. No VM test is about the ready timeout.
READY_TIMEOUT_MIN = 60


def vm_timeouts(cfg):
    """cfg with workers.ready_timeout at least READY_TIMEOUT_MIN seconds."""
    w = cfg["workers"]
    if lib.parse_duration(w.get("ready_timeout", "10s")) < READY_TIMEOUT_MIN:
        w["ready_timeout"] = "%ds" % READY_TIMEOUT_MIN
    return cfg


def start_memward(t, cfg, name="memward", cgroup=APP):
    """memward inside APP, like `sh -c 'echo $$ > app/cgroup.procs; exec memward -c CFG'`."""
    path = t.write_config(vm_timeouts(cfg), name + ".yaml")
    real = lib.MEMWARD
    lib.MEMWARD = "/bin/sh"
    try:
        return t.memward(None, name=name, args=[
            "-c", 'echo $$ > "$0/cgroup.procs" || exit 125; exec "$@"', cgroup, real, "-c", path])
    finally:
        lib.MEMWARD = real


def log_time(line):
    """The time= field of a log line, as seconds since the epoch (LogLine.at), or a
    failure naming the line."""
    check(line.get("time") is not None, "log line without time=: %s" % line.text)
    return line.at


def wait_until(pred, timeout, what, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            lib.fail("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(step)


def spawned(mw):
    """{pid: (slot, generation, cgroup field)} of every spawn line."""
    return {l.int("pid"): (l.get("worker"), l.get("generation"), l.get("cgroup")) for l in mw.events("spawn")}


def check_in_own_leaf(mw, pid, alone=True):
    """pid runs in worker-<slot>-<generation> as its spawn line says (and, when alone,
    nothing else does); returns the leaf's name."""
    slot, gen, leaf = spawned(mw)[pid]
    want = "worker-%s-%s" % (slot, gen)
    check(leaf == want, "spawn line of pid %d says cgroup=%s, want %s" % (pid, leaf, want))
    got = cgroup_of(pid)
    check(got == "/app/" + want, "worker pid %d (slot %s generation %s) is in %s, want /app/%s"
          % (pid, slot, gen, got, want))
    procs = cg_read("%s/%s/cgroup.procs" % (APP, want)).split()
    check(procs == [str(pid)] if alone else str(pid) in procs,
          "%s/cgroup.procs is %r, want %s the worker %d" % (want, procs, "just" if alone else "among them", pid))
    return want


def stop_and_check_no_leaves(mw):
    rc = mw.stop(timeout=30)
    check(rc == 0, "memward exited %s after SIGTERM, want 0" % rc)
    left = leaves()
    check(not left, "worker leaves left under app/ after shutdown: %r" % left)
    check(not mw.events("cgroup_leaves_left"), "memward reports leaves left: %r" % mw.events("cgroup_leaves_left"))
    dirs = sorted(d for d in os.listdir(APP) if os.path.isdir(os.path.join(APP, d)))
    ok("memward exited 0 after SIGTERM; no worker-* leaf left under app/ (its children: %s)" % " ".join(dirs))


def http_in_thread(port, path, timeout):
    """GET in a background thread; returns (thread, result dict)."""
    res = {}

    def run():
        try:
            res["reply"] = lib.http_get(port, path, timeout=timeout)
        except Exception as e:      # the point of some requests is that they fail
            res["error"] = e
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, res


# ---------------------------------------------------------------- scenarios

def scenario_cgroup(t):
    """mode=cgroup; memward in app/supervisor, a process already in app evacuated to
    app/init, every worker in its own leaf; a leaf's memory.current follows what its
    worker allocates (within 10 %); no worker leaf is left after SIGTERM."""
    setup_app()
    # A process already in the unit's cgroup (a sidecar, a shell): it must move out of
    # the way, into app/init, for the no-internal-processes rule.
    sidecar = subprocess.Popen(["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec sleep 600', APP],
                                   env=dict(os.environ, **{lib.TAG_VAR: t.tag}))
    wait_until(lambda: cgroup_of(sidecar.pid) == "/app", 10, "the sidecar to enter /app")

    port = t.port()
    mw = start_memward(t, lib.config(port, count=2, memory={"sample_interval": "250ms"}))
    mw.wait_event("ready", count=2, timeout=60)
    acct = mw.events("accounting")[0]
    check(acct.get("mode") == "cgroup" and acct.get("cgroup") == APP,
          "want mode=cgroup cgroup=%s: %s" % (APP, acct.text))
    ok(acct.text.split("event=", 1)[1])

    check(cgroup_of(mw.pid) == "/app/supervisor", "memward (pid %d) is in %s, want /app/supervisor"
          % (mw.pid, cgroup_of(mw.pid)))
    check(cgroup_of(sidecar.pid) == "/app/init", "the process that was in app is in %s, want /app/init"
          % cgroup_of(sidecar.pid))
    take = mw.events("cgroup_takeover")
    check(take and take[0].get("evacuated_to_init") == "1", "want event=cgroup_takeover evacuated_to_init=1: %r" % take)
    check(cg_read(APP + "/cgroup.procs").split() == [], "processes left in app itself: %r"
          % cg_read(APP + "/cgroup.procs").split())
    sub = cg_read(APP + "/cgroup.subtree_control").split()
    check("memory" in sub and "pids" in sub, "app/cgroup.subtree_control is %r, want memory and pids" % sub)
    ok("memward in /app/supervisor, the sidecar evacuated to /app/init, app/cgroup.subtree_control: %s"
       % " ".join(sub))

    workers = mw.current_workers()
    check(len(workers) == 2, "want 2 live workers, have %r" % workers)
    names = {pid: check_in_own_leaf(mw, pid) for pid in workers.values()}
    check(len(set(names.values())) == 2, "workers share a leaf: %r" % names)
    check(leaves() == sorted(names.values()), "leaves under app/ %r, want just %r" % (leaves(), sorted(names.values())))
    ok("each worker in its own leaf: %s" % ", ".join("pid %d in /app/%s" % kv for kv in sorted(names.items())))

    # memory.current of the leaf that serves /alloc?mib=64 grows by 64 MiB (within 10 %).
    time.sleep(0.5)
    before = {pid: (cg_int("%s/%s/memory.current" % (APP, leaf)),
                    cg_keyed("%s/%s/memory.stat" % (APP, leaf))["anon"]) for pid, leaf in names.items()}
    status, headers, body = lib.http_get(port, "/alloc?mib=64", timeout=60)
    check(status == 200 and "kept 64 MiB" in body, "/alloc?mib=64: HTTP %d %r" % (status, body))
    pid = lib.worker_pid_of(headers, body)
    check(pid in names, "/alloc answered by pid %s, not a worker %r" % (pid, names))
    leaf = names[pid]
    after = cg_int("%s/%s/memory.current" % (APP, leaf))
    anon_after = cg_keyed("%s/%s/memory.stat" % (APP, leaf))["anon"]
    want = before[pid][0] + 64 * MIB
    delta = after - want
    check(abs(delta) <= 0.1 * 64 * MIB,
          "%s: memory.current %d (%.1f MiB) after /alloc?mib=64, want %.1f MiB (baseline %.1f MiB + 64 MiB) "
          "within 10%% of 64 MiB" % (leaf, after, after / MIB, want / MIB, before[pid][0] / MIB))
    anon_delta = anon_after - before[pid][1]
    check(abs(anon_delta - 64 * MIB) <= 0.1 * 64 * MIB,
          "%s: anon grew by %.1f MiB, want 64 MiB within 10%%" % (leaf, anon_delta / MIB))
    other = next(p for p in names if p != pid)
    other_now = cg_int("%s/%s/memory.current" % (APP, names[other]))
    check(abs(other_now - before[other][0]) < 8 * MIB, "the other leaf %s moved by %.1f MiB"
          % (names[other], (other_now - before[other][0]) / MIB))
    ok("%s memory.current %.2f -> %.2f MiB after /alloc?mib=64 (expected %.2f, off by %+.2f MiB = %+.1f%% of 64 MiB); "
       "anon +%.2f MiB" % (leaf, before[pid][0] / MIB, after / MIB, want / MIB, delta / MIB,
                          100.0 * delta / (64 * MIB), anon_delta / MIB))

    stop_and_check_no_leaves(mw)
    check(not any(lib.alive(p) for p in workers.values()), "workers alive after shutdown")
    sidecar.kill()
    sidecar.wait()


WARMUP = 12     # past a Python worker's start-up and a 128 MiB allocation under TCG on a busy host
WINDOW = 2


def scenario_template(t):
    """workers.mode: template in cgroup mode: the template in its own leaf template-1,
    every forked worker in its own worker-<slot>-<generation> leaf (and nothing else
    there), the pages a worker shares with the template charged to the template's leaf,
    what a worker allocates to its own; a killed template's leaf kept, empty, while its
    workers serve on, its successor in template-2; no leaf left after SIGTERM; the worker of a
    spawn given up on (fork_timeout) killed with its leaf; memory.group_high counting the
    template's leaf, which no worker's figure holds."""
    setup_app()
    port = t.port()
    worker = os.path.join(lib.WORKERS_DIR, "template.py")
    mw = start_memward(t, lib.config(port, count=2, command=[lib.PYTHON, worker],
                                     workers={"mode": "template", "ready_timeout": "60s"},
                                     memory={"sample_interval": "250ms"}))
    mw.wait_event("ready", count=2, timeout=90)
    acct = mw.events("accounting")[0]
    check(acct.get("mode") == "cgroup", "want mode=cgroup: %s" % acct.text)
    start = mw.events("template_start")[0]
    tpid = start.int("pid")
    check(start.get("cgroup") == "template-1" and cgroup_of(tpid) == "/app/template-1",
          "the template (pid %d) is in %s: %s" % (tpid, cgroup_of(tpid), start.text))
    ok("the template in /app/template-1")

    workers = mw.current_workers()
    check(len(workers) == 2, "want 2 live workers, have %r" % workers)
    names = {pid: check_in_own_leaf(mw, pid) for pid in workers.values()}
    ok("each forked worker alone in its own leaf: %s" % ", ".join("pid %d in /app/%s" % kv
                                                                  for kv in sorted(names.items())))

    time.sleep(0.5)
    tcur = cg_int(APP + "/template-1/memory.current")
    for pid, leaf in names.items():
        wcur = cg_int("%s/%s/memory.current" % (APP, leaf))
        check(wcur < tcur, "%s holds %.1f MiB, the template %.1f MiB: shared pages charged to the worker?"
              % (leaf, wcur / MIB, tcur / MIB))
    ok("template leaf %.1f MiB, worker leaves %s" % (tcur / MIB, ", ".join(
        "%.1f MiB" % (cg_int("%s/%s/memory.current" % (APP, leaf)) / MIB) for leaf in names.values())))

    before = {pid: cg_int("%s/%s/memory.current" % (APP, leaf)) for pid, leaf in names.items()}
    status, headers, body = lib.http_get(port, "/alloc?mib=64", timeout=60)
    check(status == 200 and "kept 64 MiB" in body, "/alloc?mib=64: HTTP %d %r" % (status, body))
    pid = lib.worker_pid_of(headers, body)
    delta = cg_int("%s/%s/memory.current" % (APP, names[pid])) - before[pid]
    check(abs(delta - 64 * MIB) <= 0.1 * 64 * MIB, "%s grew by %.1f MiB, want 64" % (names[pid], delta / MIB))
    tnow = cg_int(APP + "/template-1/memory.current")
    check(abs(tnow - tcur) < 8 * MIB, "the template's leaf moved by %.1f MiB" % ((tnow - tcur) / MIB))
    ok("a worker's allocation is charged to its own leaf (+%.1f MiB), not the template's" % (delta / MIB))

    # Killed, its workers serve on and still map the pages charged to template-1: the
    # leaf stays (and counts against group_high) until they are gone.
    os.kill(tpid, 9)
    ready2 = mw.wait_event("template_ready", generation=2, timeout=60)[0]
    kept = mw.wait_event("template_leaf_kept", generation=1, timeout=10)[0]
    check(kept.get("cgroup") == "template-1" and kept.int("workers") == 2, kept.text)
    check(os.path.exists(APP + "/template-1") and not cg_read(APP + "/template-1/cgroup.procs").strip(),
          "template-1 is gone, or not empty")
    check(cgroup_of(ready2.int("pid")) == "/app/template-2", "template 2 is in %s" % cgroup_of(ready2.int("pid")))
    for _ in range(5):
        status, _, _ = lib.http_get(port, "/", timeout=30)
        check(status == 200, "a request after the template died: %d" % status)
    check(all(lib.alive(p) for p in names), "a worker died with its template")
    held = cg_int(APP + "/template-1/memory.current")
    ok("template killed: template-1 kept, empty, with %.1f MiB its 2 workers still map; template-2 ready, "
       "the workers serve on" % (held / MIB))

    stop_and_check_no_leaves(mw)
    left = sorted(d for d in os.listdir(APP) if d.startswith("template-"))
    check(not left, "template leaves left after shutdown: %r" % left)
    ok("no template-* leaf left")

    # A template that forks the worker into its leaf and never answers: after
    # fork_timeout the spawn is given up, and the worker dies with its leaf. A second
    # memward in the same app cgroup: back to how systemd hands it over first.
    reset_app()
    port = t.port()
    mw = start_memward(t, lib.config(port, count=1, command=[lib.PYTHON, worker],
                                     workers={"mode": "template", "ready_timeout": "60s", "fork_timeout": "3s",
                                              "env": {"TEST_TEMPLATE_MODE": "fork_and_hang"}}), name="hang")
    err = mw.wait_event("template_timeout", timeout=90)[0]
    check(err.get("reason") == "fork_timeout", "reason: %s" % err.text)
    forked = [int(l.text.split("forked ")[1]) for l in mw.lines() if "]: forked " in l.text]
    check(forked, "the template forked nothing")
    wait_until(lambda: not lib.alive(forked[0]), 10, "the abandoned worker %d to die with its leaf" % forked[0])
    wait_until(lambda: not os.path.exists(APP + "/worker-0-1"), 10, "worker-0-1 to be removed")
    ok("a spawn given up on: its worker (pid %d) killed with its leaf worker-0-1" % forked[0])
    mw.stop(timeout=30)

    # memory.group_high counts the template's leaf: its 48 MiB preload is charged there
    # and in no worker's leaf. 2 workers of a few MiB each and the template's ~55 MiB
    # are under 72 MiB; a worker keeping 32 MiB more is over it only with the template.
    reset_app()
    port = t.port()
    mw = start_memward(t, lib.config(port, count=2, command=[lib.PYTHON, worker],
                                     workers={"mode": "template", "ready_timeout": "60s",
                                              "env": {"TEST_TEMPLATE_PRELOAD_MIB": "48"}},
                                     memory={"metric": "anon", "sample_interval": "250ms", "retained_window": "2s",
                                             "group_high": "72MiB"},
                                     pressure={"min_retained": "16MiB"}), name="group_high")
    mw.wait_event("ready", count=2, timeout=90)
    time.sleep(2)
    check(not mw.events("group_high"), "over group_high before any allocation: %r"
          % [e.text for e in mw.events("group_high")])
    tanon = cg_keyed(APP + "/template-1/memory.stat")["anon"]
    status, headers, body = lib.http_get(port, "/alloc?mib=32", timeout=60)
    check(status == 200, "/alloc?mib=32: HTTP %d %r" % (status, body))
    line = mw.wait_event("group_high", timeout=30)[0]
    total, workers, template = line.int("total"), line.int("workers"), line.int("template")
    check(total == workers + template and total > 72 * MIB and workers < 72 * MIB, "figures: %s" % line.text)
    check(abs(template - tanon) < 8 * MIB, "template=%.1f MiB, but template-1's anon is %.1f MiB: %s"
          % (template / MIB, tanon / MIB, line.text))
    rec = mw.wait_event("recycle", reason="group_high", timeout=10)[0]
    check(rec.int("pid") == lib.worker_pid_of(headers, body), "recycled %s, not the worker that kept 32 MiB" % rec.text)
    ok("group_high counts template-1 (anon %.1f MiB): %s" % (tanon / MIB, line.text.split("event=", 1)[1]))
    mw.stop(timeout=30)


def scenario_template_oom(t):
    """workers.mode: template with worker_max: 100MiB, 3 forked workers, and
    /alloc?mib=200 on one of them: the kernel kills that worker only (memory.oom.group in
    its leaf); the template and the other two workers keep their pids and their leaves
    and serve on without a failed request; memward logs reason=oom and forks the
    replacement from the same template into a fresh leaf."""
    setup_app()
    port = t.port()
    worker = os.path.join(lib.WORKERS_DIR, "template.py")
    mw = start_memward(t, lib.config(port, count=3, command=[lib.PYTHON, worker],
                                     workers={"mode": "template", "ready_timeout": "60s"},
                                     memory={"sample_interval": "250ms", "worker_max": "100MiB"}))
    mw.wait_event("ready", count=3, timeout=90)
    tpid = mw.events("template_ready")[0].int("pid")
    check(cgroup_of(tpid) == "/app/template-1", "the template (pid %d) is in %s" % (tpid, cgroup_of(tpid)))
    workers = mw.current_workers()
    check(len(workers) == 3, "want 3 live workers, have %r" % workers)
    names = {pid: check_in_own_leaf(mw, pid) for pid in workers.values()}
    for pid, leaf in names.items():
        check(cg_int("%s/%s/memory.max" % (APP, leaf)) == 100 * MIB, "%s/memory.max is %r, want %d"
              % (leaf, cg_read("%s/%s/memory.max" % (APP, leaf)).strip(), 100 * MIB))
        check(cg_int("%s/%s/memory.oom.group" % (APP, leaf)) == 1, "%s/memory.oom.group is not 1" % leaf)
    ok("template pid %d in template-1; forked workers %s with memory.max=100MiB, memory.oom.group=1"
       % (tpid, ", ".join("%d in %s" % kv for kv in sorted(names.items()))))

    load = t.load(port, threads=2, rate=20)
    time.sleep(1.0)
    th, res = http_in_thread(port, "/alloc?mib=200", 60)
    t0 = time.monotonic()
    rec = mw.wait_event("recycle", reason="oom", timeout=60)[0]
    victim = rec.int("pid")
    check(victim in names, "reason=oom for pid %d, not one of the workers %r" % (victim, names))
    ex = mw.wait_event("exit", pid=victim, timeout=10)[0]
    check(ex.get("status") == "killed" and ex.get("signal") == "SIGKILL", "OOM victim exit: %s" % ex.text)
    th.join(30)
    check("error" in res, "/alloc?mib=200 beyond worker_max answered: %r" % res.get("reply"))
    tevents = cg_keyed(APP + "/template-1/memory.events")
    check(tevents.get("oom_kill", 0) == 0, "an OOM kill in the template's leaf: %r" % tevents)
    ok("reason=oom for pid %d (%s) %.2f s after the request, peak %.1f MiB; %s"
       % (victim, names[victim], time.monotonic() - t0, rec.int("peak") / MIB, ex.text.split("event=", 1)[1]))

    check(mw.running(), "memward died with its worker")
    check(lib.alive(tpid) and cgroup_of(tpid) == "/app/template-1", "the template %d did not survive" % tpid)
    survivors = [p for p in names if p != victim]
    for p in survivors:
        check(lib.alive(p) and cgroup_of(p) == "/app/" + names[p], "worker %d did not survive in its leaf" % p)
    slot = rec.get("worker")
    sp = mw.wait_event("spawn", worker=slot, generation=2, timeout=15)[0]
    check(sp.get("template") == "1", "the replacement was not forked from template 1: %s" % sp.text)
    rd = mw.wait_event("ready", pid=sp.int("pid"), timeout=60)[0]
    check_in_own_leaf(mw, sp.int("pid"))
    wait_until(lambda: not os.path.exists(os.path.join(APP, names[victim])), 5, "%s to be removed" % names[victim])
    time.sleep(1.5)
    load.stop()
    load.check_no_failures()
    # Each survivor still serves: three requests at once, each holding a worker for a
    # second, reach all three workers (the load alone may all go to one hot worker).
    lib.reach_workers(port, survivors, n=3)
    others = [l for l in mw.events("exit") if l.int("pid") != victim]
    check(not others, "other workers exited: %r" % [l.text for l in others])
    check(not mw.events("template_exited"), "the template exited: %r" % [l.text for l in mw.events("template_exited")])
    check(mw.events("template_ready")[-1].int("pid") == tpid, "a new template was started")
    ok("template %d and workers %s kept their pids and served (the load's answers: %s); slot %s forked again from template 1 as "
       "pid %d in %s, ready %.0f ms after the exit; load %s"
       % (tpid, survivors, {p: load.pids.get(p, 0) for p in survivors}, slot, sp.int("pid"), sp.get("cgroup"),
          (log_time(rd) - log_time(ex)) * 1000, load.summary()))
    stop_and_check_no_leaves(mw)


def scenario_template_reload(t):
    """workers.mode: template in cgroup mode, SIGHUP under load with changed code: a new
    template in its own leaf template-2, every worker forked from it into a fresh leaf
    worker-<slot>-2, the old workers' leaves removed, template-1 kept until the last of
    them exited and then removed, the response changed, no failed request."""
    setup_app()
    port = t.port()
    worker = os.path.join(lib.WORKERS_DIR, "template.py")
    msg = t.write("message", "one\n")
    cfg = lib.config(port, count=3, command=[lib.PYTHON, worker],
                     workers={"mode": "template", "ready_timeout": "60s",
                              "env": {"TEST_TEMPLATE_MESSAGE_FILE": msg}},
                     memory={"sample_interval": "250ms"})
    mw = start_memward(t, cfg)
    mw.wait_event("ready", count=3, timeout=90)
    t1 = mw.events("template_ready")[0].int("pid")
    old = mw.current_workers()
    old_leaves = {pid: check_in_own_leaf(mw, pid) for pid in old.values()}

    def messages(n=15):
        out = set()
        for _ in range(n):
            status, _, body = lib.http_get(port, "/", timeout=30)
            check(status == 200, "answer: %d %r" % (status, body))
            out.add(body.split("message=")[1].strip())
        return out
    check(messages() == {"one"}, "before the reload")
    ok("template %d in template-1, workers %s" % (t1, ", ".join("%d in %s" % kv for kv in sorted(old_leaves.items()))))

    load = t.load(port, threads=4, rate=40)
    time.sleep(1.0)
    t.write("message", "two\n")
    t0 = time.monotonic()
    mw.signal(signal.SIGHUP)
    done = mw.wait_event("reload_done", timeout=120)[0]
    took = time.monotonic() - t0
    ready2 = mw.wait_event("template_ready", generation=2)[0]
    t2 = ready2.int("pid")
    check(cgroup_of(t2) == "/app/template-2", "template 2 (pid %d) is in %s" % (t2, cgroup_of(t2)))
    switch = mw.wait_event("template_switch", generation=2)[0]
    new = mw.current_workers()
    check(len(new) == 3 and not set(new.values()) & set(old.values()), "workers after the reload: %r (before %r)"
          % (new, old))
    new_leaves = {pid: check_in_own_leaf(mw, pid) for pid in new.values()}
    for e in mw.events("spawn", since=switch.t):
        check(e.get("template") == "2", "forked by the old template after the switch: %s" % e.text)
    check(not set(new_leaves.values()) & set(old_leaves.values()), "a leaf was reused: %r / %r"
          % (new_leaves, old_leaves))
    wait_until(lambda: not any(os.path.exists(os.path.join(APP, l)) for l in old_leaves.values()), 10,
               "the old workers' leaves to be removed")
    wait_until(lambda: not os.path.exists(APP + "/template-1"), 10, "template-1 to be removed")
    kept = mw.wait_event("template_leaf_kept", generation=1)[0]
    released = mw.wait_event("template_leaf_released", generation=1)[0]
    last_exit = max(log_time(e) for e in mw.events("exit") if e.int("pid") in old.values())
    check(kept.int("workers") > 0 and log_time(released) >= last_exit,
          "template-1 released before its last worker exited: %s / %s" % (kept.text, released.text))
    check(not lib.alive(t1), "the old template %d still runs" % t1)
    check(messages() == {"two"}, "after the reload")
    time.sleep(0.5)
    load.stop()
    load.check_no_failures()
    check(load.ok > 40, "too few requests: %s" % load.summary())
    ok("SIGHUP: template %d in template-2, reload_done %.1f s later (%s); workers %s; template-1 and %s removed; "
       "answers 'two'; load %s" % (t2, took, done.text.split("event=", 1)[1],
                                  ", ".join("%d in %s" % kv for kv in sorted(new_leaves.items())),
                                  " ".join(sorted(old_leaves.values())), load.summary()))
    stop_and_check_no_leaves(mw)
    left = sorted(d for d in os.listdir(APP) if d.startswith("template-"))
    check(not left, "template leaves left after shutdown: %r" % left)


def scenario_template_user(t):
    """memward as root, workers.user nobody, workers.mode template with the Python runtime
    (memward-gunicorn), cgroup mode: the template runs as nobody in template-1 and, since
    it may not move processes between memward's leaves, memward places every forked worker
    itself (template_ready placement=memward, spawn placed_by=memward). Each worker runs as
    nobody and is alone in its own worker-<slot>-<generation> leaf when gunicorn's post_fork
    hook, its first app code, runs; 100 MiB allocated in one worker grow its leaf's
    memory.current by 100 MiB and not the template's; a killed worker's replacement is
    placed the same way; no leaf is left after SIGTERM."""
    setup_app()
    port = t.port()
    here = os.path.join(HERE, "template_user")
    gunicorn = os.path.join(os.path.dirname(HERE), "..", "python", "bin", "memward-gunicorn")
    mw = start_memward(t, lib.config(port, count=2,
                                     command=[lib.PYTHON, os.path.normpath(gunicorn), "-c", "gunicorn.conf.py",
                                              "app:app"],
                                     workers={"mode": "template", "directory": here, "user": "nobody",
                                              "ready_timeout": "60s"},
                                     memory={"sample_interval": "250ms"}))
    # On a memward without placement the template's own move is refused (EACCES) and no
    # worker ever comes: say so at once rather than after the ready timeout.
    wait_until(lambda: mw.events("spawn_failed") or len(mw.events("ready")) >= 2, 90,
               "2 workers ready (or a spawn_failed)")
    check(not mw.events("spawn_failed"), "spawns failed: %s" % "\n".join(l.text for l in mw.events("spawn_failed")))
    acct = mw.events("accounting")[0]
    check(acct.get("mode") == "cgroup", "want mode=cgroup: %s" % acct.text)
    ready = mw.events("template_ready")[0]
    check(ready.get("placement") == "memward", "template_ready does not say placement=memward: %s" % ready.text)
    tpid = ready.int("pid")
    tuid = proc_ids(tpid)
    check(tuid == [NOBODY] * 4 and cgroup_of(tpid) == "/app/template-1",
          "the template (pid %d) runs as %r in %s" % (tpid, tuid, cgroup_of(tpid)))
    ok("the template runs as nobody in /app/template-1 and says placement=memward")

    workers = mw.current_workers()
    check(len(workers) == 2, "want 2 live workers, have %r" % workers)
    names = {}
    for pid in workers.values():
        line = [l for l in mw.events("spawn") if l.int("pid") == pid][0]
        check(line.get("placed_by") == "memward" and line.get("place_time", "").endswith("us"),
              "spawn line without placed_by=memward place_time=: %s" % line.text)
        names[pid] = check_in_own_leaf(mw, pid)
        check(proc_ids(pid) == [NOBODY] * 4, "worker %d runs as %r, want nobody" % (pid, proc_ids(pid)))
    # Two requests at once, each holding its sync worker for a second: one per worker
    # (one after another, a hot worker may take them all).
    first = {pid: json.loads(r[2]) for pid, r in lib.reach_workers(port, names, path="/?ms=1000").items()}
    check(set(first) == set(names), "answers from pids %r, the workers are %r" % (sorted(first), sorted(names)))
    for pid, reply in first.items():
        want = "/app/" + names[pid]
        check(reply["first"].get("cgroup") == want and reply["first"].get("pid") == pid,
              "worker %d's post_fork ran in %r, want %s" % (pid, reply["first"], want))
        check(reply["first"].get("ruid") == NOBODY and reply["first"].get("euid") == NOBODY,
              "worker %d's post_fork ran as %r" % (pid, reply["first"]))
    ok("each worker as nobody, alone in its leaf, and already there when its first app code ran: %s"
       % ", ".join("pid %d in /app/%s (place_time=%s)" % (pid, names[pid], [l for l in mw.events("spawn")
                                                                            if l.int("pid") == pid][0].get("place_time"))
                   for pid in sorted(names)))

    time.sleep(0.5)
    before = {pid: cg_int("%s/%s/memory.current" % (APP, leaf)) for pid, leaf in names.items()}
    tcur = cg_int(APP + "/template-1/memory.current")
    status, headers, body = lib.http_get(port, "/alloc?mib=100", timeout=60)
    check(status == 200 and json.loads(body)["kept_mib"] == 100, "/alloc?mib=100: HTTP %d %r" % (status, body))
    pid = json.loads(body)["pid"]
    delta = cg_int("%s/%s/memory.current" % (APP, names[pid])) - before[pid]
    check(abs(delta - 100 * MIB) <= 10 * MIB, "%s grew by %.1f MiB, want 100" % (names[pid], delta / MIB))
    tnow = cg_int(APP + "/template-1/memory.current")
    check(abs(tnow - tcur) < 8 * MIB, "the template's leaf moved by %.1f MiB" % ((tnow - tcur) / MIB))
    other = [p for p in names if p != pid][0]
    odelta = cg_int("%s/%s/memory.current" % (APP, names[other])) - before[other]
    check(abs(odelta) < 8 * MIB, "the other worker's leaf moved by %.1f MiB" % (odelta / MIB))
    ok("100 MiB in worker %d: its leaf +%.1f MiB, the template's %+.1f MiB, the other worker's %+.1f MiB"
       % (pid, delta / MIB, (tnow - tcur) / MIB, odelta / MIB))

    slot = [s for s, p in workers.items() if p == pid][0]
    os.kill(pid, 9)
    line = wait_until(lambda: [l for l in mw.events("spawn", worker=slot) if l.int("pid") != pid and alive_pid(l.int("pid"))],
                      60, "slot %s's replacement" % slot)[-1]
    new = line.int("pid")
    check(line.get("placed_by") == "memward", "replacement's spawn line: %s" % line.text)
    leaf = check_in_own_leaf(mw, new)
    check(proc_ids(new) == [NOBODY] * 4, "replacement %d runs as %r" % (new, proc_ids(new)))
    ok("worker %d killed: its replacement %d placed by memward in /app/%s, as nobody" % (pid, new, leaf))
    stop_and_check_no_leaves(mw)


def scenario_template_user_faults(t):
    """memward as root, workers.user nobody, cgroup mode, with the minimal test template
    (tests/integration/workers/template.py, written from docs/fork-server.md alone): with
    PLACE=1 offered, memward places its workers (placed_by=memward, each alone in its leaf,
    as nobody); a PLACE naming the template itself is template_protocol_error
    reason=bad_pid and the template is restarted; a template that dies right after its
    PLACE is no protocol error and leaves no leaf behind; a SPAWNED that skips the PLACE is
    reason=unexpected_message and the worker it forked outside its leaf dies with the
    template's leaf; a template that does not offer PLACE=1 gets template_cannot_place and
    its spawns fail with EACCES, as documented."""
    setup_app()
    worker = os.path.join(lib.WORKERS_DIR, "template.py")

    def start(name, count, env):
        return start_memward(t, lib.config(t.port(), count=count, command=[lib.PYTHON, worker],
                                           workers={"mode": "template", "user": "nobody", "ready_timeout": "60s",
                                                    "fork_timeout": "10s", "env": env}), name=name)

    mw = start("place", 2, {"TEST_TEMPLATE_PLACE": "1"})
    wait_until(lambda: mw.events("spawn_failed") or len(mw.events("ready")) >= 2, 90,
               "2 workers ready (or a spawn_failed)")
    check(not mw.events("spawn_failed"), "spawns failed: %s" % "\n".join(l.text for l in mw.events("spawn_failed")))
    check(mw.events("template_ready")[0].get("placement") == "memward", mw.events("template_ready")[0].text)
    for slot, pid in sorted(mw.current_workers().items()):
        line = [l for l in mw.events("spawn") if l.int("pid") == pid][0]
        check(line.get("placed_by") == "memward", "spawn line: %s" % line.text)
        check_in_own_leaf(mw, pid)
        check(proc_ids(pid) == [NOBODY] * 4, "worker %d runs as %r" % (pid, proc_ids(pid)))
    ok("the test template offering PLACE=1: both workers placed by memward, alone in their leaves, as nobody")
    stop_and_check_no_leaves(mw)
    reset_app()

    mw = start("bad_pid", 1, {"TEST_TEMPLATE_PLACE": "1", "TEST_TEMPLATE_MODE": "place_bad_pid"})
    err = mw.wait_event("template_protocol_error", timeout=90)[0]
    check(err.get("reason") == "bad_pid" and "is not the template" in err.get("detail", ""),
          "want reason=bad_pid, its parent is not the template: %s" % err.text)
    mw.wait_event("template_start", generation=2, timeout=30)
    check(not mw.events("ready") and not mw.events("spawn"), "a worker came from a bad PLACE")
    ok("a PLACE naming the template itself: %s; the template restarted, no worker" % err.get("detail"))
    mw.stop(timeout=30)
    reset_app()

    # A template that dies right after its PLACE: its intermediate is re-parented to
    # memward or gone by the time memward reads the PLACE. That is the template's exit,
    # not a bad pid; and the leaf of each dead template goes, even when its last process
    # (the intermediate, memward's to reap now) was still in it at the template's exit.
    mw = start("crash", 1, {"TEST_TEMPLATE_PLACE": "1", "TEST_TEMPLATE_MODE": "place_crash"})
    mw.wait_event("template_start", generation=4, timeout=90)
    exits = mw.events("template_exited")
    check(len(exits) >= 3 and all(l.get("code") == "5" for l in exits[:3]),
          "want 3 template exits with code 5: %s" % "\n".join(l.text for l in exits))
    errors = mw.events("template_protocol_error")
    check(not errors, "a template that died after its PLACE was called a protocol error: %s"
          % "\n".join(l.text for l in errors))
    check(not mw.events("spawn"), "a worker came from a template that died before PLACED")
    def template_leaves():
        return sorted(d for d in os.listdir(APP) if d.startswith("template-"))
    gen = max(l.int("generation") for l in mw.events("template_start"))
    wait_until(lambda: all(int(d.split("-")[1]) >= gen - 1 for d in template_leaves()), 10,
               "the leaves of the dead templates to be removed (have %r)" % template_leaves())
    ok("templates dying right after PLACE: %d exits with code 5, %d spawns failed, no protocol error; "
       "template leaves left: %r (the live one, generation %d, and maybe the one dying)"
       % (len(exits), len(mw.events("spawn_failed")), template_leaves(), gen))
    mw.stop(timeout=30)
    reset_app()

    mw = start("skip", 1, {"TEST_TEMPLATE_PLACE": "1", "TEST_TEMPLATE_MODE": "place_skip"})
    err = mw.wait_event("template_protocol_error", timeout=90)[0]
    check(err.get("reason") == "unexpected_message" and "before its PLACE was answered" in err.get("detail", ""),
          "want reason=unexpected_message, SPAWNED before its PLACE: %s" % err.text)
    forked = [int(l.text.split("forked ")[1]) for l in mw.lines() if "]: forked " in l.text]
    check(forked, "the template forked nothing")
    wait_until(lambda: not lib.alive(forked[0]), 10, "the unplaced worker %d to die with the template's leaf"
               % forked[0])
    check(not [l for l in mw.events("spawn") if l.int("pid") == forked[0]], "memward adopted the unplaced worker")
    ok("a SPAWNED without PLACE: %s; its worker %d, outside its leaf, killed" % (err.get("detail"), forked[0]))
    mw.stop(timeout=30)
    reset_app()

    mw = start("no_place", 1, {})
    warn = mw.wait_event("template_cannot_place", timeout=90)[0]
    failed = mw.wait_event("spawn_failed", timeout=30)[0]
    check(failed.get("error") == "Permission denied", "want EACCES: %s" % failed.text)
    check(mw.events("template_ready")[0].get("placement") == "template", mw.events("template_ready")[0].text)
    ok("a template that does not offer PLACE=1: %s, then %s" % (warn.event, failed.text.split("level=")[1]))
    mw.stop(timeout=30)


def scenario_recycle(t):
    """reason=retained (floor > retained_max) for a worker still in warmup, then
    reason=growth (floor > growth_max x baseline) for its replacement once warmed up, in
    cgroup mode; each recycle gives the slot a fresh leaf and removes the old one. One
    worker, so every request reaches the worker the test means."""
    setup_app()
    port, mport = t.port(), t.port()
    mw = start_memward(t, lib.config(port, count=1, memory={
        "metric": "anon", "sample_interval": "250ms", "retained_window": "%ds" % WINDOW,
        "retained_max": "96MiB", "growth_max": 2.0, "warmup": "%ds" % WARMUP},
        metrics={"listen": "127.0.0.1:%d" % mport}))
    mw.wait_event("ready", count=1, timeout=60)
    check(mw.events("accounting")[0].get("mode") == "cgroup", "not in cgroup mode: %s" % mw.events("accounting"))
    w1 = mw.current_workers()["0"]

    # retained: above retained_max, early in warmup (no baseline before warmup plus a
    # whole window, so it cannot be growth that fires first).
    t0 = time.monotonic()
    status, headers, body = lib.http_get(port, "/alloc?mib=128", timeout=60)
    wall_done = time.time()
    check(status == 200 and lib.worker_pid_of(headers, body) == w1, "/alloc?mib=128: HTTP %d %r" % (status, body))
    leaf1 = check_in_own_leaf(mw, w1)
    rec = mw.wait_event("recycle", timeout=20)[0]
    check(rec.get("reason") == "retained" and rec.int("pid") == w1,
          "want reason=retained for pid %d, which kept 128 MiB: %s" % (w1, rec.text))
    check(rec.int("floor") > 96 * MIB, "floor not above retained_max: %s" % rec.text)
    # memward's own figure: it had no baseline yet (baseline=0, no ratio=), so growth
    # could not have decided.
    check(rec.int("baseline") == 0 and rec.get("ratio") is None,
          "the retained recycle came when memward had a baseline: %s" % rec.text)
    # On memward's clock (time=, the guest's wall clock, as the test's time.time()): the
    # line's arrival adds the pipe and the test's own scheduling.
    latency = log_time(rec) - wall_done
    check(latency <= 2.0 + 2 * 0.25 + 1.0, "retained recycle %.2fs after /alloc?mib=128 returned, want <= "
          "window + 2 samples (+1 s for TCG)" % latency)
    ok("reason=retained %.2fs after /alloc?mib=128 returned (%.2fs after it began): floor %.1f MiB > 96 MiB "
       "(pid %d, %s); current=%.1f MiB anon=%.1f MiB"
       % (latency, rec.t - t0, rec.int("floor") / MIB, w1, leaf1, rec.int("current") / MIB, rec.int("anon") / MIB))
    mw.wait_event("exit", pid=w1, timeout=30)
    wait_until(lambda: not os.path.exists(os.path.join(APP, leaf1)), 5, "%s to be removed" % leaf1)
    w2 = mw.current_workers().get("0")
    check(w2 and w2 != w1, "no live replacement in slot 0: %r" % spawned(mw))
    leaf2 = check_in_own_leaf(mw, w2)
    check(leaves() == [leaf2], "leaves under app/: %r, want just %s" % (leaves(), leaf2))
    ok("old worker exited, %s removed, replacement pid %d in %s" % (leaf1, w2, leaf2))

    # growth: the replacement has its baseline once a whole window after warmup has
    # passed (warmup is past the ~3 s of Python start-up under TCG); memward's /status
    # says when it has one. 40 MiB is far below retained_max but several times a Python
    # worker's baseline.
    def baseline():
        status, _, body = lib.http_get(mport, "/status", timeout=10)
        check(status == 200, "/status: HTTP %d" % status)
        rows = [w for w in json.loads(body)["workers"] if w["pid"] == w2]
        return rows and rows[0]["memory"]["baseline"]
    wait_until(baseline, WARMUP + WINDOW + 30, "memward's baseline for pid %d on /status" % w2, step=0.25)
    check(len(mw.events("recycle")) == 1, "the idle replacement was recycled: %r" % mw.events("recycle")[1:])
    t0 = time.monotonic()
    status, headers, body = lib.http_get(port, "/alloc?mib=40", timeout=60)
    check(status == 200 and lib.worker_pid_of(headers, body) == w2, "/alloc?mib=40: HTTP %d %r" % (status, body))
    rec = mw.wait_event("recycle", pid=w2, timeout=20)[0]
    check(rec.get("reason") == "growth", "want reason=growth for pid %d: %s" % (w2, rec.text))
    floor, baseline = rec.int("floor"), rec.int("baseline")
    check(baseline > 0 and floor > 2.0 * baseline and floor < 96 * MIB,
          "want baseline > 0, 2 x baseline < floor < retained_max: %s" % rec.text)
    check(rec.int("anon") >= 40 * MIB, "anon %.1f MiB below the 40 MiB kept: %s" % (rec.int("anon") / MIB, rec.text))
    ok("reason=growth %.2fs after /alloc?mib=40: floor %.1f MiB > 2.0 x baseline %.1f MiB (pid %d, %s)"
       % (rec.t - t0, floor / MIB, baseline / MIB, w2, leaf2))
    mw.wait_event("exit", pid=w2, timeout=30)
    wait_until(lambda: not os.path.exists(os.path.join(APP, leaf2)), 5, "%s to be removed" % leaf2)
    check(len(mw.events("recycle")) == 2, "want exactly 2 recycles: %r" % mw.events("recycle"))
    stop_and_check_no_leaves(mw)


def scenario_grandchildren(t):
    """A worker's helper that setsid()s out of its process group lives in the worker's
    leaf and dies with it (cgroup.kill) when the worker is recycled, and at shutdown."""
    setup_app()
    port = t.port()
    mw = start_memward(t, lib.config(port, count=1, command=lib.test_worker("forker.py"),
                                     workers={"env": {"FORKER_LEAK_MIB": "96", "FORKER_LEAK_GENERATIONS": "1"}},
                                     memory={"metric": "anon", "sample_interval": "250ms",
                                             "retained_window": "2s", "retained_max": "64MiB"}))
    mw.wait_event("ready", count=1, timeout=60)
    w1 = mw.current_workers()["0"]
    leaf1 = check_in_own_leaf(mw, w1, alone=False)
    line = mw.wait_text(r"^forker pid=%d .*grandchild=\d+" % w1, timeout=10)[0]
    g1 = int(line.get("grandchild"))
    check(lib.alive(g1), "grandchild %d is not running" % g1)
    check(cgroup_of(g1) == "/app/" + leaf1, "grandchild %d is in %s, want /app/%s" % (g1, cgroup_of(g1), leaf1))
    st_w, st_g = lib.proc_stat(w1), lib.proc_stat(g1)
    check(st_g[2] == g1 and st_g[2] != st_w[2], "grandchild %d did not escape the worker's process group "
          "(pgrp %d, worker's %d)" % (g1, st_g[2], st_w[2]))
    ok("worker %d in %s; its helper %d setsid() into process group %d, still in %s and holding 96 MiB"
       % (w1, leaf1, g1, st_g[2], leaf1))

    rec = mw.wait_event("recycle", pid=w1, timeout=20)[0]
    check(rec.get("reason") == "retained", "want reason=retained (the helper's memory counts): %s" % rec.text)
    ex = mw.wait_event("exit", pid=w1, timeout=30)[0]
    check(ex.get("status") == "exited" and ex.get("code") == "0", "recycled worker did not exit 0: %s" % ex.text)
    wait_until(lambda: not lib.alive(g1), 5, "grandchild %d to die after its worker was recycled" % g1)
    t_dead = time.monotonic()
    wait_until(lambda: not os.path.exists(os.path.join(APP, leaf1)), 5, "%s to be removed" % leaf1)
    ok("recycled (reason=retained, floor %.1f MiB); helper %d dead %.2fs after the worker's exit line; %s removed"
       % (rec.int("floor") / MIB, g1, t_dead - ex.t, leaf1))

    w2 = wait_until(lambda: mw.current_workers().get("0") if mw.current_workers().get("0") != w1 else None,
                    10, "the replacement worker")
    leaf2 = check_in_own_leaf(mw, w2, alone=False)
    # The replacement was only spawned: its Python start-up (seconds under TCG on a busy
    # host) comes before its helper; it prints the line before it says READY=1.
    mw.wait_event("ready", pid=w2, timeout=60)
    line = mw.wait_text(r"^forker pid=%d .*grandchild=\d+" % w2, timeout=10)[0]
    g2 = int(line.get("grandchild"))
    check(lib.alive(g2) and cgroup_of(g2) == "/app/" + leaf2, "replacement's helper %d not alive in %s" % (g2, leaf2))
    stop_and_check_no_leaves(mw)
    check(not lib.alive(g2), "helper %d of the last worker survived memward's shutdown" % g2)
    ok("after shutdown the last helper %d is dead too" % g2)


def scenario_setsid(t):
    """issue 16 §3 in cgroup mode: a worker's 200 children that setsid(), ignore SIGTERM
    and SIGHUP and keep the listening socket die with its leaf when it is stopped
    (SIGTTOU), a live worker's 50 are untouched, none outlives memward's exit, and a
    second memward binds the same port at once (tests/integration/test_orphans_setsid.py,
    which runs the same steps in procfs mode with 1,000: TCG forks slowly). Then a worker
    that gets no leaf (cgroup.max.descendants reached) runs in memward's cgroup: its 50
    children are killed as orphans when it stops."""
    import test_orphans_setsid

    def start(t, cfg, name):
        if name == "second":
            reset_app()
        return start_memward(t, cfg, name=name)
    setup_app()
    test_orphans_setsid.scenario(t, start, "cgroup", big=200, small=50, bound=10.0)
    check(not leaves(), "worker leaves left under app/: %r" % leaves())
    ok("200 setsid'd children gone with their worker's leaf; none left after exit; the port rebound at once")

    # A worker that gets no leaf (cgroup.max.descendants reached: cgroup_leaf_failed)
    # runs in memward's own cgroup; its children are swept as in procfs mode.
    reset_app()
    mw = start_memward(t, lib.config(t.port(), count=1, command=lib.test_worker("setsider.py"),
                                     workers={"ready_timeout": "120s", "env": {"SETSIDERS_1": "50"}}), name="leafless")
    mw.wait_event("ready", count=1, timeout=60)
    stat = dict(line.split() for line in cg_read(APP + "/cgroup.stat").splitlines())
    cg_write(APP + "/cgroup.max.descendants", stat["nr_descendants"])
    try:
        mw.signal(signal.SIGTTIN)
        mw.wait_event("cgroup_leaf_failed", worker=1, timeout=20)
        w1 = mw.wait_event("ready", worker=1, timeout=120)[0].int("pid")
        kids = test_orphans_setsid.setsid_children(w1)
        check(len(kids) == 50, "the leafless worker has %d setsid'd children, want 50" % len(kids))
        where = cgroup_of(kids[0])
        check(not any(cgroup_of(k).rsplit("/", 1)[-1].startswith("worker-") for k in kids),
              "children of the leafless worker in a leaf: %s" % where)
        mw.signal(signal.SIGTTOU)
        ex = mw.wait_event("exit", pid=w1, timeout=30)[0]
        gone = test_orphans_setsid.wait_gone(kids, 10.0, "children of the leafless worker")
        killed = sum(int(l.get("count")) for l in mw.events("orphans_killed"))
        check(killed == 50, "orphans_killed counts %d, want 50: %s" % (killed, mw.events("orphans_killed")))
        check(mw.running(), "memward exited")
    finally:
        cg_write(APP + "/cgroup.max.descendants", "max")
    check(mw.stop(timeout=60) == 0, "memward's exit code")
    ok("a worker with no leaf (in %s): its 50 setsid'd children gone %.2fs after its exit line (orphans_killed)"
       % (where, gone - ex.t))


def scenario_oom(t):
    """worker_max: 100MiB and /alloc?mib=200: the kernel kills that worker only
    (memory.oom.group in its leaf); memward survives, logs reason=oom, the other worker
    keeps serving without a failed request, the slot respawns."""
    setup_app()
    port = t.port()
    mw = start_memward(t, lib.config(port, count=2, memory={"sample_interval": "250ms", "worker_max": "100MiB"}))
    mw.wait_event("ready", count=2, timeout=60)
    workers = mw.current_workers()
    names = {pid: check_in_own_leaf(mw, pid) for pid in workers.values()}
    for pid, leaf in names.items():
        check(cg_int("%s/%s/memory.max" % (APP, leaf)) == 100 * MIB, "%s/memory.max is %r, want %d"
              % (leaf, cg_read("%s/%s/memory.max" % (APP, leaf)).strip(), 100 * MIB))
        check(cg_int("%s/%s/memory.oom.group" % (APP, leaf)) == 1, "%s/memory.oom.group is not 1" % leaf)
    ok("leaves %s have memory.max=100MiB and memory.oom.group=1" % ", ".join(sorted(names.values())))

    load = t.load(port, threads=2, rate=20)
    time.sleep(1.0)
    th, res = http_in_thread(port, "/alloc?mib=200", 60)
    rec = mw.wait_event("recycle", reason="oom", timeout=60)[0]
    victim = rec.int("pid")
    check(victim in names, "reason=oom for pid %d, not one of the workers %r" % (victim, names))
    survivor = next(p for p in names if p != victim)
    peak = rec.int("peak")
    check(90 * MIB <= peak <= 100 * MIB, "peak=%d (%.1f MiB), want 90..100 MiB (worker_max): %s"
          % (peak, peak / MIB, rec.text))
    check(rec.int("worker_max") == 100 * MIB, "want worker_max=%d: %s" % (100 * MIB, rec.text))
    ex = mw.wait_event("exit", pid=victim, timeout=10)[0]
    check(ex.get("status") == "killed" and ex.get("signal") == "SIGKILL", "OOM victim exit: %s" % ex.text)
    th.join(30)
    check("error" in res, "/alloc?mib=200 beyond worker_max answered: %r" % res.get("reply"))
    ok("reason=oom for pid %d (%s), peak %.1f MiB; %s" % (victim, names[victim], peak / MIB,
                                                        ex.text.split("event=", 1)[1]))

    check(mw.running(), "memward died with its worker")
    check(lib.alive(survivor) and cgroup_of(survivor) == "/app/" + names[survivor],
          "the other worker %d did not survive in its leaf" % survivor)
    slot = rec.get("worker")
    sp = mw.wait_event("spawn", worker=slot, generation=2, timeout=15)[0]
    mw.wait_event("ready", pid=sp.int("pid"), timeout=60)
    check_in_own_leaf(mw, sp.int("pid"))
    wait_until(lambda: not os.path.exists(os.path.join(APP, names[victim])), 5, "%s to be removed" % names[victim])
    time.sleep(1.0)
    load.stop()
    load.check_no_failures()
    check(load.pids.get(survivor, 0) > 0, "the surviving worker never answered: %r" % load.pids)
    others = [l for l in mw.events("exit") if l.int("pid") != victim]
    check(not others, "other workers exited: %r" % others)
    oom_events = mw.events("oom_kill")
    ok("memward alive; worker %d kept serving; slot %s respawned as pid %d (%s); load %s; oom_kill lines: %d"
       % (survivor, slot, sp.int("pid"), sp.get("cgroup"), load.summary(), len(oom_events)))
    stop_and_check_no_leaves(mw)


# memward's reaction is judged on its own clock: from its event=pressure (the trigger
# read) to its event=recycle, within 1 s (the target). The test's own trigger,
# and the time the test reads memward's line, only show that the kernel fired first
# and that the whole chain stays bounded: under TCG, on a busy host, with memward itself
# in the squeezed cgroup (mlockall(MCL_ONFAULT) keeps its touched pages, but new
# charges still stall) and the line crossing a pipe, that took 1.06 s once while memward
# acted within 10 ms of its own trigger event. So a margin, not the target, for the chain.
KERNEL_TRIGGER_TO_RECYCLE_MAX = 5.0
SAME_EVENT_SLACK = 0.25
SQUEEZE_BELOW = 4 * MIB


def scenario_pressure(t):
    """A PSI trigger on app/memory.pressure; squeezing app with memory.high below what
    the workers hold fires it, and the worker with the largest floor is recycled within
    1 s of memward's own event=pressure (its clock), and within
    KERNEL_TRIGGER_TO_RECYCLE_MAX of the kernel firing the test's own trigger."""
    setup_app()
    port = t.port()
    mw = start_memward(t, lib.config(port, count=2,
                                     memory={"metric": "anon", "sample_interval": "250ms", "retained_window": "1s"},
                                     pressure={"trigger": "some 50ms 1s", "cooldown": "2s", "min_retained": "64MiB"}))
    mw.wait_event("ready", count=2, timeout=60)
    tr = mw.events("pressure_trigger")
    check(len(tr) == 1 and tr[0].get("path") == APP + "/memory.pressure" and tr[0].get("window") == "1s"
          and tr[0].get("stall") == "50ms", "want one pressure_trigger path=%s/memory.pressure stall=50ms window=1s "
          "(root may use a 1 s window): %r" % (APP, tr))
    check(not mw.events("pressure_window_rounded"), "window rounded as root: %r" % mw.events("pressure_window_rounded"))
    ok(tr[0].text.split("event=", 1)[1])

    workers = mw.current_workers()
    for pid in workers.values():
        check_in_own_leaf(mw, pid)
    status, headers, body = lib.http_get(port, "/alloc?mib=160", timeout=60)
    check(status == 200, "/alloc?mib=160: HTTP %d %r" % (status, body))
    big = lib.worker_pid_of(headers, body)
    check(big in workers.values(), "/alloc answered by pid %s, not a worker %r" % (big, workers))
    time.sleep(1.5)     # a full retained_window: the floor shows the 160 MiB
    check(not mw.events("pressure"), "pressure before any squeeze: %r" % mw.events("pressure"))
    check(not mw.events("recycle"), "recycled before the squeeze: %r" % mw.events("recycle"))

    # The kernel's view: the same trigger, registered by us (in the root cgroup, never
    # throttled), says when the trigger fired; memward's event=pressure says when it acted.
    fired = []
    psi_fd = os.open(APP + "/memory.pressure", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    os.write(psi_fd, b"some 50000 1000000")

    def watch_trigger():
        p = select.poll()
        p.register(psi_fd, select.POLLPRI)
        while not fired:
            if any(ev & select.POLLPRI for _, ev in p.poll(500)):
                fired.append(time.monotonic())
    threading.Thread(target=watch_trigger, daemon=True).start()

    stat = cg_keyed(APP + "/memory.stat")
    current = cg_int(APP + "/memory.current")
    # Just below what the workers hold: the kernel cannot reclaim anonymous memory
    # without swap, so every new charge in app stalls. (Far below, e.g. 48 MiB, and
    # memward itself, which lives in app, is throttled for many seconds: reported.)
    high = stat["anon"] - SQUEEZE_BELOW
    t_squeeze = time.monotonic()
    cg_write(APP + "/memory.high", str(high))
    # Something in app must allocate to feel it: a worker asked for 16 MiB more.
    th, res = http_in_thread(port, "/alloc?mib=16", 120)
    try:
        pr = mw.wait_event("pressure", timeout=30)[0]
        rec = mw.wait_event("recycle", reason="pressure", timeout=10)[0]
    finally:
        cg_write(APP + "/memory.high", "max")
    t_lift = time.monotonic()
    check(pr.get("source") == "trigger", "pressure seen by polling, not the trigger: %s" % pr.text)
    check(rec.int("pid") == big, "recycled pid %s, but pid %d holds the most: %s" % (rec.get("pid"), big, rec.text))
    check(rec.int("floor") >= 160 * MIB, "victim's floor %.1f MiB < 160 MiB: %s" % (rec.int("floor") / MIB, rec.text))
    gap = log_time(rec) - log_time(pr)
    check(0 <= gap <= 1.0, "recycle %.3fs after the pressure event, want within 1 s:\n  %s\n  %s"
          % (gap, pr.text, rec.text))
    check(fired, "our own trigger on app/memory.pressure never fired, yet memward saw pressure")
    # Both stamps are this test's threads waking on one kernel event (our trigger's poll,
    # memward's line on the pipe): which thread runs first is the scheduler's, and on a
    # busy host a preempted vCPU delays one by tens of ms. Only a clear lead counts.
    check(fired[0] <= pr.t + SAME_EVENT_SLACK, "memward saw pressure %.2fs before the kernel fired our trigger"
          % (fired[0] - pr.t))
    reaction = rec.t - fired[0]
    check(reaction <= KERNEL_TRIGGER_TO_RECYCLE_MAX,
          "recycle %.2fs after the kernel fired the trigger, want <= %gs" % (reaction, KERNEL_TRIGGER_TO_RECYCLE_MAX))
    ok("memory.high %.1f MiB (app current %.1f MiB, anon %.1f MiB): kernel trigger fired %.2fs after the squeeze, "
       "memward's event=pressure %.2fs after it, recycle reason=pressure of pid %d (floor %.1f MiB) %.3fs after "
       "event=pressure; squeeze lifted after %.2fs"
       % (high / MIB, current / MIB, stat["anon"] / MIB, fired[0] - t_squeeze, pr.t - fired[0], big,
          rec.int("floor") / MIB, gap, t_lift - t_squeeze))

    ex = mw.wait_event("exit", pid=big, timeout=60)[0]
    check(ex.get("status") == "exited" and ex.get("code") == "0", "the pressure victim did not stop cleanly: %s" % ex.text)
    th.join(60)
    check("reply" in res and res["reply"][0] == 200, "the /alloc made during the squeeze failed: %r" % res)
    recs = mw.events("recycle")
    check(len(recs) == 1, "want only the one pressure recycle (cooldown, min_retained): %r" % recs)
    ok("victim exited 0; the request made under the squeeze answered; memory.events high=%d"
       % cg_keyed(APP + "/memory.events")["high"])
    os.close(psi_fd)
    stop_and_check_no_leaves(mw)


def gunicorn_slot(t, cgroup, name):
    """One slot of examples/gunicorn's exec-mode command line (arbiter + sync worker)
    under a memward started in cgroup, after 20 requests: (accounting mode, the slot's
    /status memory, the tree's Anonymous summed as memward summed it before)."""
    port, mport = t.port(), t.port()
    cfg = lib.config(port, count=1,
                     command=["/usr/bin/gunicorn", "-w", "1", "--bind", "fd://3", "-c", "gunicorn_exec.conf.py",
                              "app:app"],
                     workers={"directory": os.path.join(lib.REPO, "examples", "gunicorn"), "ready_timeout": "60s",
                              "graceful_timeout": "10s"},
                     memory={"metric": "anon", "sample_interval": "250ms"},
                     metrics={"listen": "127.0.0.1:%d" % mport})
    mw = start_memward(t, cfg, name=name, cgroup=cgroup)
    arbiter = mw.wait_event("ready", timeout=60)[0].int("pid")
    for i in range(20):
        status, _, body = lib.http_get(port, "/", timeout=30)
        check(status == 200, "request %d: %d %r" % (i, status, body))
    time.sleep(1.5)
    status, _, body = lib.http_get(mport, "/status", timeout=30)
    check(status == 200, "/status: %d" % status)
    mem = json.loads(body)["workers"][0]["memory"]
    anonymous = 0
    for pid in [arbiter] + lib.descendants(arbiter):
        for line in cg_read("/proc/%d/smaps_rollup" % pid).splitlines():
            if line.startswith("Anonymous:"):
                anonymous += int(line.split()[1]) * 1024
    mode = mw.events("accounting")[0].get("mode")
    check(mw.stop(timeout=30) == 0, "memward (%s) did not exit 0" % name)
    return mode, mem, anonymous


def scenario_slot_modes(t):
    """a gunicorn slot's anon is the same figure in cgroup mode (its leaf's memory.stat) and in procfs mode (Pss_Anon summed over arbiter and worker), not the old sum of Anonymous"""
    setup_app()
    # A cgroup without the memory controller: plain/ enables nothing for its children.
    plain = CG + "/plain/memward"
    os.makedirs(plain, exist_ok=True)
    check("memory" not in cg_read(plain + "/cgroup.controllers").split(), "plain/memward has a memory controller")

    mode_c, cg, _ = gunicorn_slot(t, APP, "cgroup")
    mode_p, pr, anonymous = gunicorn_slot(t, plain, "procfs")
    check(mode_c == "cgroup" and cg.get("anon_from") == "memory.stat",
          "first run: %s, anon from %s" % (mode_c, cg.get("anon_from")))
    check(mode_p == "procfs" and pr.get("anon_from") == "pss_anon",
          "second run: %s, anon from %s" % (mode_p, pr.get("anon_from")))
    report = ("cgroup mode %.1f MiB, procfs mode %.1f MiB, the slot's Anonymous summed %.1f MiB"
              % (cg["anon"] / MIB, pr["anon"] / MIB, anonymous / MIB))
    check(abs(pr["anon"] - cg["anon"]) <= 0.15 * cg["anon"], "the modes disagree: %s" % report)
    check(pr["anon"] <= 0.75 * anonymous, "procfs mode counts shared pages twice: %s" % report)
    ok(report)


SCENARIOS = {
    "slot_modes": scenario_slot_modes,
    "cgroup": scenario_cgroup,
    "recycle": scenario_recycle,
    "grandchildren": scenario_grandchildren,
    "setsid": scenario_setsid,
    "oom": scenario_oom,
    "pressure": scenario_pressure,
    "template": scenario_template,
    "template_oom": scenario_template_oom,
    "template_reload": scenario_template_reload,
    "template_user": scenario_template_user,
    "template_user_faults": scenario_template_user_faults,
}


def main(scenarios=SCENARIOS):
    """Runs the scenario named by argv[1] (tests/vm/fault_vm.py passes its own table)."""
    if len(sys.argv) != 2 or sys.argv[1] not in scenarios:
        sys.stderr.write("usage: %s %s\n" % (sys.argv[0], "|".join(scenarios)))
        sys.exit(2)
    if os.environ.get("MEMWARD_VM") != "1":
        sys.stderr.write("FAIL: this test changes the root cgroup; run it through tests/vm/run\n")
        sys.exit(1)
    scenario = scenarios[sys.argv[1]]
    failure = []

    def test(t):
        try:
            scenario(t)
        except Exception as e:
            failure.append("%s: %s" % (type(e).__name__, e))
            raise
    try:
        lib.main(test)
    except SystemExit as e:
        if e.code != 0:
            sys.stdout.flush()
            sys.stderr.write("FAIL: %s\n" % (failure[0] if failure else "exit %s" % e.code))
            sys.exit(1)
        print("PASS: %s" % " ".join(scenario.__doc__.split()))
        raise


if __name__ == "__main__":
    main()
