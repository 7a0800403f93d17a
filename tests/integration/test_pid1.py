"""memward as a container's PID 1, for real: under `unshare --pid --fork --mount-proc`
memward is PID 1 of a new PID namespace (what `docker run` gives an ENTRYPOINT), with
no init above it in that namespace to reap orphans or to catch signals for it.

  exit codes   a missing worker command ends memward with 127, a non-executable one
               with 126, and unshare passes the code on unchanged.
  reaping      a worker double-forks sleepers that exit later: they are re-parented
               to memward (the namespace's init) and reaped; no process in the
               namespace is ever left a zombie.
  signals      SIGUSR1 reaches every worker; signals memward does not act on
               (SIGPIPE, SIGALRM, SIGWINCH, SIGPWR, SIGURG, SIGCONT), sent from the host
               and from inside the namespace, change nothing; SIGTERM from the host, and
               `kill -TERM 1` from inside the namespace, stop it gracefully and the exit
               code 0 comes out of unshare.

Checked from the host through /proc: the namespace's processes are those whose
/proc/PID/ns/pid is memward's."""

import os
import shutil
import signal
import subprocess
import time

import lib
from lib import check

UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
NSENTER = shutil.which("nsenter") or "/usr/bin/nsenter"
ORPHANS = 20
# Each orphan lives this long from its fork: most must still be there when we look, after
# the forks and our read of the ready line on a loaded machine.
ORPHAN_SLEEP_MS = 5000

# A worker that records each SIGUSR1 as a file $USR1_DIR/<slot>.<n>, answers
# READY=1, and exits 0 on SIGTERM. Self-contained: it runs inside the namespace.
USR1_WORKER = r'''
import os, signal, socket, time
out, slot = os.environ["USR1_DIR"], os.environ.get("MEMWARD_WORKER_ID", "x")
got, stop = [], []
signal.signal(signal.SIGUSR1, lambda *_: got.append(1))
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
addr = os.environ["NOTIFY_SOCKET"]
addr = "\0" + addr[1:] if addr.startswith("@") else addr
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    s.sendto(b"READY=1", addr)
n = 0
while not stop:
    while got:
        got.pop()
        n += 1
        open(os.path.join(out, "%s.%d" % (slot, n)), "w").close()
    time.sleep(0.05)
'''


def start_pid1(t, cfg, name, find_pid1=True):
    """Starts `unshare --pid --fork --mount-proc memward -c CFG` as a lib.Memward
    (stderr parsed as usual). Returns (mw, host pid of memward = namespace PID 1, or
    None without find_pid1).

    lib.Memward runs lib.MEMWARD with the given args; it is pointed at unshare for the
    duration of the call. --kill-child: if unshare dies (the test's cleanup SIGKILLs
    it), memward gets SIGKILL and the kernel empties the namespace."""
    path = t.write_config(cfg, name + ".yaml")
    memward = lib.MEMWARD
    lib.MEMWARD = UNSHARE
    try:
        mw = lib.Memward(t, ["--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL",
                             memward, "-c", path], None, None, name)
    finally:
        lib.MEMWARD = memward
    t.memwards.append(mw)
    if not find_pid1:
        return mw, None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        kids = lib.children_map().get(mw.pid, [])
        if kids:
            pid1 = kids[0]
            check(nspid(pid1)[-1] == 1, "unshare's child %d is not PID 1 in its namespace: NSpid %s"
                  % (pid1, nspid(pid1)))
            return mw, pid1
        if not mw.running():
            lib.fail("unshare exited %s before memward started:\n%s" % (mw.proc.poll(), mw.text()))
        time.sleep(0.02)
    lib.fail("unshare has no child after 10 s")


def nspid(pid):
    """The NSpid line of /proc/PID/status: [host pid, ..., pid in the innermost ns]."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except OSError:
        pass
    return []


def pidns(pid):
    try:
        return os.readlink("/proc/%d/ns/pid" % pid)
    except OSError:
        return None


def namespace_procs(ns):
    """{host pid: (state, host ppid)} of every process in the PID namespace ns."""
    out = {}
    for pid in lib.all_pids():
        if pidns(pid) == ns:
            st = lib.proc_stat(pid)
            if st:
                out[pid] = (st[0], st[1])
    return out


def host_pid_in(ns, inner):
    """Host pid of the process that is `inner` inside the namespace ns."""
    for pid in namespace_procs(ns):
        ids = nspid(pid)
        if ids and ids[-1] == inner:
            return pid
    return None


def in_namespace(pid1, *argv):
    """Runs argv inside memward's PID namespace (nsenter forks, so argv's process is a
    member and sees memward as PID 1)."""
    p = subprocess.run([NSENTER, "--target", str(pid1), "--pid", "--"] + list(argv),
                       capture_output=True, timeout=10)
    check(p.returncode == 0, "nsenter %s: exit %d: %s" % (" ".join(argv), p.returncode,
                                                          p.stderr.decode(errors="replace")))


def check_exit_codes(t, port):
    for label, command, want in (
            ("missing command", [t.path("no/such/worker")], 127),
            ("not executable", [t.write("plain.txt", "not a program\n")], 126)):
        mw, _ = start_pid1(t, lib.config(port, count=2, command=command), "exit%d" % want,
                           find_pid1=False)
        rc = mw.wait_exit(15)
        check(rc == want, "%s: unshare exited %s, want %d" % (label, rc, want))
        start = mw.events("start")
        check(start and start[0].get("pid") == "1", "%s: memward did not run as PID 1: %s"
              % (label, start))
        print("%s: memward (PID 1) exit %d came out of unshare" % (label, rc))


def check_reaping(t, port):
    cfg = lib.config(port, count=1, command=lib.test_worker("orphaner.py"),
                     workers={"env": {"ORPHANS": str(ORPHANS), "ORPHAN_SLEEP_MS": str(ORPHAN_SLEEP_MS)}})
    mw, pid1 = start_pid1(t, cfg, "reaping")
    ns = pidns(pid1)
    mw.wait_event("ready", count=1, timeout=20)
    worker = host_pid_in(ns, int(mw.events("ready")[0].get("pid")))
    check(worker is not None, "the ready worker is not in memward's namespace")

    procs = namespace_procs(ns)
    adopted = [p for p, (_, ppid) in procs.items() if ppid == pid1 and p != worker]
    check(len(adopted) >= ORPHANS // 2,
          "only %d of %d orphans re-parented to memward (PID 1): %s" % (len(adopted), ORPHANS, procs))

    deadline = time.monotonic() + ORPHAN_SLEEP_MS / 1000 + 8
    while True:
        procs = namespace_procs(ns)
        zombies = sorted(p for p, (state, _) in procs.items() if state == "Z")
        others = sorted(p for p in procs if p not in (pid1, worker))
        if not zombies and not others:
            break
        if time.monotonic() > deadline:
            lib.fail("in the namespace %.0fs after the orphans' exit: zombies %s, other processes %s"
                     % (deadline - time.monotonic() + 8, zombies, procs))
        time.sleep(0.1)
    check(lib.alive(worker), "the worker died")
    check(len(mw.events("spawn")) == 1, "the worker was respawned: %s" % mw.events("spawn"))
    print("%d orphans adopted by memward as PID 1 and reaped, no zombie in the namespace"
          % len(adopted))

    mw.signal(signal.SIGTERM)       # unshare blocks SIGTERM: this one must not matter
    os.kill(pid1, signal.SIGTERM)   # the host (docker stop) signals PID 1 itself
    rc = mw.wait_exit(15)
    check(rc == 0, "SIGTERM from the host: unshare exited %s, want 0" % rc)
    check(mw.events("signal", signal="SIGTERM"), "memward logged no event=signal signal=SIGTERM")
    check(mw.events("exit", status="exited", code=0),
          "the worker did not exit 0 on the forwarded SIGTERM: %s" % mw.events("exit"))
    check(not namespace_procs(ns), "processes left in the namespace: %s" % namespace_procs(ns))
    print("SIGTERM from the host: graceful stop, worker exited 0, unshare exit 0")


def check_signals(t, port):
    usr1_dir = t.path("usr1")
    os.mkdir(usr1_dir)
    worker = t.write("usr1_worker.py", USR1_WORKER)
    cfg = lib.config(port, count=2, command=[lib.PYTHON, worker],
                     workers={"env": {"USR1_DIR": usr1_dir}})
    mw, pid1 = start_pid1(t, cfg, "signals")
    ns = pidns(pid1)
    mw.wait_event("ready", count=2, timeout=20)

    ignorable = (signal.SIGPIPE, signal.SIGALRM, signal.SIGWINCH, signal.SIGPWR, signal.SIGURG,
                 signal.SIGCONT, signal.SIGVTALRM)
    for sig in ignorable:
        os.kill(pid1, sig)
    in_namespace(pid1, "/bin/sh", "-c", " ".join("kill -%s 1;" % s.name[3:] for s in ignorable))

    os.kill(pid1, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while sorted(os.listdir(usr1_dir)) != ["0.1", "1.1"]:
        if time.monotonic() > deadline:
            lib.fail("SIGUSR1 to memward: workers recorded %s, want one each (0.1, 1.1)"
                     % sorted(os.listdir(usr1_dir)))
        time.sleep(0.05)
    in_namespace(pid1, "/bin/kill", "-USR1", "1")
    deadline = time.monotonic() + 10
    while sorted(os.listdir(usr1_dir)) != ["0.1", "0.2", "1.1", "1.2"]:
        if time.monotonic() > deadline:
            lib.fail("`kill -USR1 1` in the namespace: workers recorded %s"
                     % sorted(os.listdir(usr1_dir)))
        time.sleep(0.05)
    print("SIGUSR1 from the host and from inside the namespace reached both workers")

    time.sleep(0.5)
    check(lib.alive(pid1), "memward (PID 1) died from %s" % [s.name for s in ignorable])
    check(len(mw.events("spawn")) == 2, "workers were restarted: %s" % mw.events("spawn"))
    check(not mw.events("signal"), "memward acted on an ignorable signal: %s" % mw.events("signal"))
    check(not [p for p, (s, _) in namespace_procs(ns).items() if s == "Z"], "zombies in the namespace")
    print("still PID 1 with the same 2 workers after %s from host and namespace"
          % " ".join(s.name for s in ignorable))

    in_namespace(pid1, "/bin/kill", "-TERM", "1")
    rc = mw.wait_exit(15)
    check(rc == 0, "`kill -TERM 1` in the namespace: unshare exited %s, want 0" % rc)
    check(mw.events("signal", signal="SIGTERM"), "memward logged no event=signal signal=SIGTERM")
    print("`kill -TERM 1` inside the namespace: graceful stop, unshare exit 0")


def test(t):
    if os.geteuid() != 0:
        lib.skip("unshare --pid --mount-proc needs root")
    probe = subprocess.run([UNSHARE, "--pid", "--fork", "--mount-proc", "/bin/true"],
                           capture_output=True, timeout=10)
    if probe.returncode != 0:
        lib.skip("unshare --pid --fork --mount-proc does not work here: %s"
                 % probe.stderr.decode(errors="replace").strip())
    port = t.port()
    check_exit_codes(t, port)
    check_reaping(t, port)
    check_signals(t, port)


if __name__ == "__main__":
    lib.main(test)
