#!/usr/bin/python3
"""memward under a real systemd 252 (PID 1 of the VM): the steps behind
tests/vm/test_systemd_memward.sh, in one interpreter (each Python start costs about a
second under TCG).

    /usr/bin/python3 tests/vm/systemd_vm.py

Runs only in a VM booted with `tests/vm/run --init systemd`. It installs the shipped
packaging/systemd units with ExecStart= pointing at the memward under test ($MEMWARD,
default build/memward) and the example worker of this tree, plus one drop-in
(WatchdogSec=3, so that a stall is noticed quickly), then checks:

  start      `systemctl start` returns only once every worker is ready: the first request
             right after it is answered, the unit became active no sooner than the
             workers' boot delay after memward started, and every worker's ready event
             is stored in the journal before systemd's "Started" line (one socket, one
             queue).
  cgroup     the unit's cgroup carries trusted.delegate; memward is alone in
             <unit>/supervisor, each worker alone in <unit>/worker-<slot>-<gen>, the
             unit's own cgroup.procs is empty.
  reload     `systemctl reload` under a steady load: each slot's worker is replaced
             (journal: recycle reason=reload for every slot, reload_done), the main pid
             stays, not one request fails.
  journal    `journalctl MEMWARD_REASON=max_requests` finds memward's recycle events.
  watchdog   `kill -STOP $MAINPID`: systemd notices the missing WATCHDOG=1, kills memward
             and starts it again (new MainPID, NRestarts >= 1), workers serve again, each
             in a fresh leaf.
  socket     memward-example.socket: the first connection starts memward-example.service,
             the worker that answers holds systemd's own listening socket at fd 3
             (same inode), and memward logged sockets_from=systemd.
  stop       `systemctl stop`: memward exits 0 ("Deactivated successfully"), no worker process left,
             the unit's cgroup directory gone; for both services.

Prints "ok: ..." per step; on the first broken expectation "FAIL: ..." on stderr, the
unit's status and journal, exit 1.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import lib  # noqa: E402

PY = "/usr/bin/python3"
MEMWARD = os.path.abspath(os.environ.get("MEMWARD") or "build/memward")
WORKER = os.path.join(REPO, "examples", "python", "worker.py")
UNITS_SRC = os.path.join(REPO, "packaging", "systemd")
ETC = "/etc/systemd/system"
CGROOT = "/sys/fs/cgroup"
UNIT = "memward.service"
EXAMPLE = "memward-example.service"
SOCKET = "memward-example.socket"
PORT = 8000                     # memward.service's own listen:
SOCKET_PORT = 8080              # memward-example.socket's ListenStream=
WORKERS = 3
BOOT_DELAY_MS = 1500            # EXAMPLE_BOOT_DELAY_MS: each worker waits this long before READY=1
MAX_REQUESTS = 100
WATCHDOG_SEC = 3
STARTED_ID = "39f53479d3a045ac8e11786248231fbf"   # SD_MESSAGE_UNIT_STARTED
SUCCESS_ID = "7ad2d189f7e94e70a38c781354912448"   # SD_MESSAGE_UNIT_SUCCESS: "Deactivated successfully"

T0 = time.monotonic()
current_unit = UNIT


def ok(msg):
    print("ok: [%5.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


def fail(msg):
    sys.stdout.flush()
    print("FAIL: " + msg, file=sys.stderr, flush=True)
    for cmd in (["systemctl", "status", "--no-pager", "-l", current_unit],
                ["journalctl", "--no-pager", "-n", "80", "-u", current_unit]):
        p = subprocess.run(cmd, capture_output=True, text=True)
        print("--- %s ---\n%s%s" % (" ".join(cmd), p.stdout, p.stderr), file=sys.stderr, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


# lib's helpers (wait_http, Load.check_no_failures) report through these.
lib.fail, lib.check = fail, check


def run(*argv, timeout=120):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    check(p.returncode == 0, "%s: exit %d: %s%s" % (" ".join(argv), p.returncode, p.stdout, p.stderr))
    return p.stdout


def show(unit, *props):
    out = run("systemctl", "show", unit, *["--property=" + p for p in props])
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def journal(*matches, after=None):
    """Journal entries (dicts) matching journalctl's field matches, received by journald
    at or after the CLOCK_MONOTONIC time `after` (seconds, as from time.monotonic())."""
    out = run("journalctl", "--no-pager", "-o", "json", *matches)
    entries = [json.loads(line) for line in out.splitlines() if line.strip()]
    if after is not None:
        entries = [e for e in entries if int(e["__MONOTONIC_TIMESTAMP"]) >= after * 1e6]
    return entries


def journal_until(pred, timeout, what, *matches, after=None):
    """journal(*matches, after=after) once pred(entries) holds: journald stores an entry
    a while after PID 1 or memward sent it, later still on a busy host, so an entry
    asserted right after the action that caused it may not be there yet."""
    return wait(lambda: (lambda entries: entries if pred(entries) else None)(journal(*matches, after=after)),
                timeout, what)


def stopped_cleanly(unit, since):
    """Waits for PID 1's verdict on a stop of `unit` begun at `since` (time.monotonic())
    and checks it: "Deactivated successfully", and neither "Main process exited" nor
    "Failed with result"; returns the unit's entries."""
    def verdict(entries):
        return any(e.get("MESSAGE_ID") == SUCCESS_ID or "Failed with result" in e.get("MESSAGE", "") for e in entries)
    msgs = journal_until(verdict, 30, "systemd's verdict on the stop of %s in the journal" % unit,
                         "UNIT=" + unit, after=since)
    check(any(e.get("MESSAGE_ID") == SUCCESS_ID for e in msgs) and
          not [e for e in msgs if "Main process exited" in e.get("MESSAGE", "")
               or "Failed with result" in e.get("MESSAGE", "")],
          "%s did not stop cleanly: %s" % (unit, [e.get("MESSAGE") for e in msgs]))
    return msgs


def mark():
    """A point in time for journal(after=...): journald stamps each entry with the
    CLOCK_MONOTONIC time it received it, the clock of time.monotonic()."""
    return time.monotonic()


def memward_events(unit, event=None, after=None, **fields):
    """memward's own entries of a unit; fields as MEMWARD_<KEY>=value matches."""
    matches = ["_SYSTEMD_UNIT=" + unit]
    if event:
        matches.append("MEMWARD_EVENT=" + event)
    matches += ["MEMWARD_%s=%s" % (k.upper(), v) for k, v in fields.items()]
    return journal(*matches, after=after)


def wait(pred, timeout, what, interval=0.2):
    """Polls pred() until it returns something true; `what` may be a callable that
    describes the state at the time of failure."""
    deadline = time.monotonic() + timeout
    while True:
        r = pred()
        if r:
            return r
        if time.monotonic() > deadline:
            fail("timed out after %ds waiting for %s" % (timeout, what() if callable(what) else what))
        time.sleep(interval)


def read(path):
    with open(path) as f:
        return f.read()


def procs(cg):
    try:
        return [int(p) for p in read(os.path.join(cg, "cgroup.procs")).split()]
    except FileNotFoundError:
        return None


def unit_cgroup(unit):
    return CGROOT + show(unit, "ControlGroup")["ControlGroup"]


def worker_leaves(cg):
    """{leaf name: [pids]} of the worker-* leaves below a unit's cgroup."""
    out = {}
    for name in sorted(os.listdir(cg)):
        if name.startswith("worker-") and os.path.isdir(os.path.join(cg, name)):
            out[name] = procs(os.path.join(cg, name)) or []
    return out


def worker_processes():
    """Pids of live processes running the example worker, anywhere."""
    out = []
    for pid in lib.all_pids():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if WORKER.encode() in args and lib.alive(pid):
            out.append(pid)
    return out


def layout(unit, main_pid, count):
    """Checks memward alone in supervisor/, `count` workers each alone in a leaf;
    returns {leaf: pid}, or None while it is not (yet) so."""
    cg = unit_cgroup(unit)
    if procs(cg) != [] or procs(cg + "/supervisor") != [main_pid]:
        return None
    leaves = {k: v for k, v in worker_leaves(cg).items() if v}
    if len(leaves) != count or any(len(v) != 1 for v in leaves.values()):
        return None
    if any(lib.proc_stat(v[0]) is None or lib.proc_stat(v[0])[1] != main_pid for v in leaves.values()):
        return None
    return {k: v[0] for k, v in leaves.items()}


def describe_layout(unit):
    cg = unit_cgroup(unit)
    out = ["%s: %s" % (cg, procs(cg))]
    for name in sorted(os.listdir(cg)) if os.path.isdir(cg) else []:
        if os.path.isdir(os.path.join(cg, name)):
            out.append("  %s: %s" % (name, procs(os.path.join(cg, name))))
    return "\n".join(out)


# ---------------------------------------------------------------- set-up

def install():
    os.makedirs("/etc/memward", exist_ok=True)
    cfg = {
        "workers": {
            "count": WORKERS,
            "command": [PY, WORKER],
            "directory": REPO,
            "env": {"PYTHONDONTWRITEBYTECODE": "1", "EXAMPLE_BOOT_DELAY_MS": str(BOOT_DELAY_MS)},
            "ready_timeout": "60s",
            "graceful_timeout": "10s",
        },
        "listen": [{"address": "tcp://127.0.0.1:%d" % PORT, "name": "http", "backlog": 1024}],
        "recycle": {"max_requests": MAX_REQUESTS, "max_requests_jitter": 0},
    }
    with open("/etc/memward/memward.yaml", "w") as f:
        f.write(lib.yaml_dump(cfg))

    def copy(name, replacements):
        text = read(os.path.join(UNITS_SRC, name))
        for old, new in replacements:
            check(old in text, "%s has no %r to point at this tree" % (name, old))
            text = text.replace(old, new)
        with open(os.path.join(ETC, name), "w") as f:
            f.write(text)

    copy(UNIT, [("ExecStart=/usr/local/bin/memward ", "ExecStart=%s " % MEMWARD)])
    copy(EXAMPLE, [("ExecStart=/usr/local/bin/memward ", "ExecStart=%s " % MEMWARD),
                   ("/usr/local/share/memward/examples/worker.py", WORKER)])
    copy(SOCKET, [])
    os.makedirs(os.path.join(ETC, UNIT + ".d"), exist_ok=True)
    with open(os.path.join(ETC, UNIT + ".d", "vm-test.conf"), "w") as f:
        f.write("# tests/vm/systemd_vm.py: notice a stall within seconds\n"
                "[Service]\nWatchdogSec=%d\n" % WATCHDOG_SEC)
    # A tree checked out under /tmp (a CI clone) is invisible behind the units'
    # PrivateTmp=yes; an installed memward never lives there.
    if MEMWARD.startswith(("/tmp/", "/var/tmp/")):
        for name in (UNIT, EXAMPLE):
            os.makedirs(os.path.join(ETC, name + ".d"), exist_ok=True)
            with open(os.path.join(ETC, name + ".d", "vm-tmp-tree.conf"), "w") as f:
                f.write("# the tree under test lives in /tmp\n[Service]\nPrivateTmp=no\n")
    run("systemctl", "daemon-reload")
    ok("units installed with ExecStart=%s, WatchdogSec=%d (drop-in), daemon-reload" % (MEMWARD, WATCHDOG_SEC))


# ---------------------------------------------------------------- checks

def check_start():
    t = time.monotonic()
    run("systemctl", "start", UNIT)
    took = time.monotonic() - t
    # The very first request, no retry: active must mean serving.
    try:
        status, headers, body = lib.http_get(PORT, timeout=10)
    except OSError as e:
        fail("right after `systemctl start` returned, a request failed: %r" % e)
    check(status == 200, "right after `systemctl start`: HTTP %d %r" % (status, body))

    p = show(UNIT, "ActiveState", "SubState", "MainPID", "ExecMainStartTimestampMonotonic",
             "ActiveEnterTimestampMonotonic", "NRestarts")
    check(p["ActiveState"] == "active" and p["SubState"] == "running", "after start: %s" % p)
    waited = (int(p["ActiveEnterTimestampMonotonic"]) - int(p["ExecMainStartTimestampMonotonic"])) / 1e6
    check(waited >= BOOT_DELAY_MS / 1000,
          "active %.2fs after memward started, less than the workers' %.1fs boot delay" % (waited, BOOT_DELAY_MS / 1000))

    main = int(p["MainPID"])
    ready = wait(lambda: len(memward_events(UNIT, "ready")) >= WORKERS and memward_events(UNIT, "ready"),
                 30, "%d worker ready events in the journal" % WORKERS)
    # One journal, read in the order journald stored the entries: memward's ready events
    # and PID 1's READY=1 handling travel over the same socket, /run/systemd/journal/socket.
    # PID 1's "Started" may be stored a while after `systemctl start` returned.
    entries = journal_until(lambda es: any(e.get("MESSAGE_ID") == STARTED_ID for e in es), 30,
                            "systemd's 'Started %s' entry in the journal" % UNIT,
                            "_SYSTEMD_UNIT=" + UNIT, "+", "UNIT=" + UNIT)
    started = [i for i, e in enumerate(entries) if e.get("MESSAGE_ID") == STARTED_ID]
    late = [e["MESSAGE"] for e in entries[started[0]:] if e.get("MEMWARD_EVENT") == "ready"]
    check(not late, "worker ready events after systemd's 'Started': %s" % late)
    mode = memward_events(UNIT, "accounting")
    check(mode and mode[-1].get("MEMWARD_MODE") == "cgroup", "memward not in cgroup mode: %s"
          % [e.get("MESSAGE") for e in mode])
    ok("`systemctl start` took %.1fs; active %.2fs after memward started (boot delay %.1fs); "
       "first request answered by pid %s; %d ready events before systemd's 'Started'"
       % (took, waited, BOOT_DELAY_MS / 1000, lib.worker_pid_of(headers, body), len(ready)))
    return main


def check_cgroup(main):
    cg = unit_cgroup(UNIT)
    check(cg == CGROOT + "/system.slice/memward.service", "unexpected unit cgroup %s" % cg)
    try:
        mark = os.getxattr(cg, "trusted.delegate")
    except OSError as e:
        fail("no trusted.delegate xattr on %s (Delegate=yes): %s" % (cg, e))
    check(mark == b"1", "trusted.delegate=%r on %s" % (mark, cg))
    leaves = wait(lambda: layout(UNIT, main, WORKERS), 10,
                  "memward alone in supervisor/, %d workers in their leaves" % WORKERS)
    for leaf, pid in leaves.items():
        check(re.fullmatch(r"worker-\d+-\d+", leaf), "odd leaf name %s" % leaf)
        check(WORKER in read("/proc/%d/cmdline" % pid).replace("\0", " "), "%s holds pid %d, not a worker" % (leaf, pid))
    check("memory" in read(cg + "/cgroup.subtree_control").split(), "memory controller not enabled for the leaves")
    ok("delegated %s (trusted.delegate=1): memward %d alone in supervisor/, workers %s"
       % (cg, main, " ".join("%s=%d" % kv for kv in sorted(leaves.items()))))
    return leaves


def check_reload(main, leaves):
    before = mark()
    old = set(leaves.values())
    load = lib.Load(PORT, threads=4, rate=10, timeout=20).start()
    time.sleep(1.0)
    t = time.monotonic()
    run("systemctl", "reload", UNIT)
    state_after = show(UNIT, "ActiveState")["ActiveState"]

    why = ["nothing yet"]

    # Under the load, only what memward did and logged: max_requests recycles run
    # alongside (the load goes on), so some slot may be mid-replacement at any moment.
    def rolled():
        state = show(UNIT, "ActiveState")["ActiveState"]
        if state != "active":
            why[0] = "ActiveState=" + state
        elif [x for x in old if lib.alive(x)]:
            why[0] = "old workers %s still there:\n%s" % (sorted(x for x in old if lib.alive(x)), describe_layout(UNIT))
        elif not memward_events(UNIT, "reload_done", after=before):
            why[0] = "no reload_done event yet"
        else:
            return True
        return None
    wait(rolled, 90, lambda: "every worker replaced after `systemctl reload`: " + why[0])
    took = time.monotonic() - t
    time.sleep(1.0)
    load.stop()
    load.check_no_failures()
    check(load.ok >= 20, "only %d requests during the reload" % load.ok)
    # The load stopped, a recycle it began completes: then each slot has one new worker
    # alone in its leaf.
    now = wait(lambda: layout(UNIT, main, WORKERS), 30,
               lambda: "%d new workers, each alone in its leaf, after the reload:\n%s" % (WORKERS, describe_layout(UNIT)))
    check(not set(now.values()) & old, "old workers in the layout after the reload: %s" % now)

    slots = {e.get("MEMWARD_SLOT") for e in memward_events(UNIT, "recycle", after=before, reason="reload")}
    check(slots == {str(i) for i in range(WORKERS)}, "recycle reason=reload for slots %s, want 0..%d"
          % (sorted(slots), WORKERS - 1))
    p = show(UNIT, "MainPID", "NRestarts")
    check(int(p["MainPID"]) == main, "MainPID changed on reload: %s -> %s" % (main, p["MainPID"]))
    check(p["NRestarts"] == "0", "NRestarts=%s before the watchdog test (missed WATCHDOG=1?)" % p["NRestarts"])
    ok("`systemctl reload` (state right after: %s) rolled all %d slots in %.1fs: %s; %s"
       % (state_after, WORKERS, took, " ".join("%s=%d" % kv for kv in sorted(now.items())), load.summary()))
    return now


def check_journal_recycles():
    def found():
        load = lib.Load(PORT, threads=4, total=60, timeout=20).start().join(120)
        load.check_no_failures()
        return journal("MEMWARD_REASON=max_requests")
    entries = wait(found, 90, "a recycle for max_requests in the journal", interval=0)
    check(all(e.get("MEMWARD_EVENT") == "recycle" for e in entries),
          "MEMWARD_REASON=max_requests on non-recycle entries: %s" % [e.get("MESSAGE") for e in entries])
    check(all(e.get("_SYSTEMD_UNIT") == UNIT for e in entries), "entries from other units")
    ok("`journalctl MEMWARD_REASON=max_requests`: %d recycle event(s), e.g. %s"
       % (len(entries), entries[0].get("MESSAGE")))


def check_watchdog(main):
    before = mark()
    old_workers = {pid for pids in worker_leaves(unit_cgroup(UNIT)).values() for pid in pids}
    t = time.monotonic()
    os.kill(main, signal.SIGSTOP)

    def restarted():
        p = show(UNIT, "ActiveState", "SubState", "MainPID", "NRestarts")
        if p["ActiveState"] == "active" and p["SubState"] == "running" and int(p["MainPID"]) not in (0, main):
            return p
        return None
    p = wait(restarted, 60, "systemd to restart memward after SIGSTOP (WatchdogSec=%d)" % WATCHDOG_SEC)
    took = time.monotonic() - t
    check(int(p["NRestarts"]) >= 1, "NRestarts=%s after the watchdog restart" % p["NRestarts"])
    # PID 1 logged its watchdog timeout before the restart; journald may store it later.
    msgs = [e.get("MESSAGE", "") for e in journal_until(
        lambda es: any("atchdog timeout" in e.get("MESSAGE", "") for e in es), 30,
        lambda: "systemd's watchdog timeout in the journal: %s"
        % [e.get("MESSAGE") for e in journal("UNIT=" + UNIT, after=before)], "UNIT=" + UNIT, after=before)]
    new = int(p["MainPID"])
    check(not lib.alive(main), "the stopped memward %d is still there" % main)
    lib.wait_http(PORT, timeout=30)
    leaves = wait(lambda: layout(UNIT, new, WORKERS), 30, "the restarted memward's workers in their leaves")
    check(not set(leaves.values()) & old_workers, "workers of the stopped memward still serve")
    check(not [x for x in old_workers if lib.alive(x)], "workers of the stopped memward left behind")
    exited = [m for m in msgs if "Main process exited" in m]
    ok("SIGSTOP: \"%s\", \"%s\"; restarted %.1fs later as MainPID %d (NRestarts=%s), serving, "
       "fresh leaves %s" % (next(m for m in msgs if "atchdog timeout" in m), exited[0] if exited else "?",
                            took, new, p["NRestarts"], " ".join(sorted(leaves))))
    return new


def systemd_socket_inodes():
    out = set()
    for fd in os.listdir("/proc/1/fd"):
        try:
            link = os.readlink("/proc/1/fd/" + fd)
        except OSError:
            continue
        if link.startswith("socket:"):
            out.add(link)
    return out


def check_socket_activation():
    global current_unit
    current_unit = EXAMPLE
    run("systemctl", "start", SOCKET)
    check(show(EXAMPLE, "ActiveState")["ActiveState"] == "inactive", "%s started before any connection" % EXAMPLE)
    t = time.monotonic()
    try:
        status, headers, body = lib.http_get(SOCKET_PORT, timeout=60)
    except OSError as e:
        fail("connecting to %s (port %d): %r" % (SOCKET, SOCKET_PORT, e))
    took = time.monotonic() - t
    check(status == 200, "through the socket: HTTP %d %r" % (status, body))
    worker = lib.worker_pid_of(headers, body)
    # The first worker serves as soon as it is up; the unit is active once both are.
    p = wait(lambda: (lambda p: p["ActiveState"] == "active" and p)(show(EXAMPLE, "ActiveState", "MainPID")),
             30, lambda: "%s to become active: %s" % (EXAMPLE, show(EXAMPLE, "ActiveState", "SubState")))

    env = dict(kv.split("=", 1) for kv in read("/proc/%d/environ" % worker).split("\0") if "=" in kv)
    check(env.get("LISTEN_FDS") == "1" and env.get("LISTEN_FDNAMES") == "http",
          "worker LISTEN_FDS=%r LISTEN_FDNAMES=%r, want 1 and the socket's FileDescriptorName=http"
          % (env.get("LISTEN_FDS"), env.get("LISTEN_FDNAMES")))
    fd3 = os.readlink("/proc/%d/fd/3" % worker)
    check(fd3 in systemd_socket_inodes(), "the worker's fd 3 (%s) is not systemd's listening socket" % fd3)
    start = wait(lambda: memward_events(EXAMPLE, "start"), 30, "memward's start event")
    check(start[-1].get("MEMWARD_SOCKETS_FROM") == "systemd",
          "memward did not log sockets_from=systemd: %s" % start[-1].get("MESSAGE"))
    main = int(p["MainPID"])
    check(layout(EXAMPLE, main, 2), "example service layout:\n" + describe_layout(EXAMPLE))
    ok("first connection to :%d started %s (%.1fs); worker %d answered on fd 3 = systemd's %s; "
       "LISTEN_FDNAMES=http; memward logged sockets_from=systemd" % (SOCKET_PORT, EXAMPLE, took, worker, fd3))
    return main


def check_stop(unit, main):
    global current_unit
    current_unit = unit
    cg = unit_cgroup(unit)
    workers = [pid for pid in worker_processes() if lib.proc_stat(pid) and lib.proc_stat(pid)[1] == main]
    check(workers, "no workers of %s to stop" % unit)
    t = time.monotonic()
    run("systemctl", "stop", unit)
    took = time.monotonic() - t
    check(show(unit, "ActiveState")["ActiveState"] == "inactive", "%s not inactive after stop" % unit)
    # Not Result=/ExecMainStatus= from `systemctl show`: a stopped unit nothing refers to
    # is unloaded at once, and a freshly loaded one shows defaults. The journal keeps it.
    stopped_cleanly(unit, t)
    left = [pid for pid in [main] + workers if lib.alive(pid)]
    check(not left, "processes left after stop: %s" % left)
    check(not os.path.exists(cg), "%s still exists after stop:\n%s" % (cg, describe_layout(unit)))
    exit_events = wait(lambda: memward_events(unit, "exit_supervisor", after=t), 30,
                       "memward's exit_supervisor entry in the journal")
    check(exit_events and exit_events[-1].get("MEMWARD_CODE") == "0",
          "memward's exit_supervisor: %s" % [e.get("MESSAGE") for e in exit_events])
    ok("`systemctl stop %s` in %.1fs: memward exit 0, \"Deactivated successfully\", memward and %d workers "
       "gone, %s removed" % (unit, took, len(workers), cg))


def main():
    check(os.environ.get("MEMWARD_VM") == "1" and os.path.exists("/run/systemd/system"),
          "run this through tests/vm/run --init systemd")
    check(os.access(MEMWARD, os.X_OK), "%s is missing: run 'make' on the host first" % MEMWARD)
    install()
    main_pid = check_start()
    leaves = check_cgroup(main_pid)
    check_reload(main_pid, leaves)
    check_journal_recycles()
    main_pid = check_watchdog(main_pid)
    example = check_socket_activation()
    check_stop(EXAMPLE, example)
    run("systemctl", "stop", SOCKET)
    check_stop(UNIT, main_pid)
    left = worker_processes()
    check(not left, "example workers still running: %s" % left)
    print("PASS: memward under systemd 252: notify start, delegated leaves, reload, journal fields, "
          "watchdog restart, socket activation, clean stop (%.0fs)" % (time.monotonic() - T0))


if __name__ == "__main__":
    main()
