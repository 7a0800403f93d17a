#!/usr/bin/python3
"""memward under a real systemd 252 with Delegate=yes, its workers as another user: the
steps behind tests/vm/test_systemd_user.sh.

    /usr/bin/python3 tests/vm/systemd_user_vm.py

Runs only in a VM booted with `tests/vm/run --init systemd`. Installs the shipped
packaging/systemd/memward.service three times under other names, each with its own
config (ExecStart= pointing at the memward under test), and checks:

  root       memward-root.service (the shipped unit: memward root, Delegate=yes) with
             workers.user nobody, workers.group nogroup, workers.umask "0027" and a unix:
             listen socket with mode "0660", group nogroup: every worker sits alone in its
             leaf of the delegated cgroup and runs with Uid/Gid 65534 (real, effective,
             saved, fs), Groups 65534, Umask 0027 and no capabilities, while memward stays
             uid 0 in supervisor/; the socket file is 0660 root:nogroup; requests are
             served over TCP and the socket; max_requests recycles into fresh leaves,
             still as nobody; `systemctl stop` is clean and removes the cgroup.
  user       memward-user.service: the same unit with User=nobody Group=nogroup, so
             systemd hands the delegated subtree to nobody; workers.user nobody names
             memward's own user (nothing to switch): memward and workers run as nobody,
             in cgroup mode, in their leaves; stop is clean.
  refused    memward-user.service whose config says workers.user: root: memward, not
             root, may not switch: the start fails (exit 1,
             event=user_switch_not_permitted in the journal), no worker was spawned.

Prints "ok: ..." per step; on the first broken expectation "FAIL: ..." on stderr, the
unit's status and journal, exit 1.
"""

import os
import stat
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import systemd_vm as sv  # noqa: E402  (also gives lib its fail/check)
from systemd_vm import check, ok, run, show  # noqa: E402

lib = sv.lib
ROOT_UNIT = "memward-root.service"
USER_UNIT = "memward-user.service"
ROOT_PORT = 8001
USER_PORT = 8002
SOCK = "/run/memward-root.sock"
WORKERS = 2
NOBODY = 65534


def status_fields(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def ids(pid):
    """(uids, gids, groups, umask, CapEff) of a live process."""
    s = status_fields(pid)
    return ([int(x) for x in s["Uid"]], [int(x) for x in s["Gid"]], [int(x) for x in s.get("Groups", [])],
            s.get("Umask", ["?"])[0], s["CapEff"][0])


def install(unit, config_name, cfg, drop_in=""):
    with open("/etc/memward/" + config_name, "w") as f:
        f.write(lib.yaml_dump(cfg) if isinstance(cfg, dict) else cfg)
    text = sv.read(os.path.join(sv.UNITS_SRC, sv.UNIT))
    old = "ExecStart=/usr/local/bin/memward -c /etc/memward/memward.yaml"
    check(old in text, "%s has no %r to point at this tree" % (sv.UNIT, old))
    text = text.replace(old, "ExecStart=%s -c /etc/memward/%s" % (sv.MEMWARD, config_name))
    with open(os.path.join(sv.ETC, unit), "w") as f:
        f.write(text)
    d = os.path.join(sv.ETC, unit + ".d")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "vm-test.conf"), "w") as f:
        # No restart loop for the refused start; a tree under /tmp stays visible.
        f.write("[Service]\nRestart=no\n%s%s" % (
            "PrivateTmp=no\n" if sv.MEMWARD.startswith(("/tmp/", "/var/tmp/")) else "", drop_in))
    run("systemctl", "daemon-reload")


def config(port, user, extra_listen=(), **workers):
    w = {"count": WORKERS, "command": [sv.PY, sv.WORKER], "directory": sv.REPO,
         "env": {"PYTHONDONTWRITEBYTECODE": "1"}, "ready_timeout": "60s", "graceful_timeout": "10s",
         "user": user}
    w.update(workers)
    return {"workers": w,
            "listen": [{"address": "tcp://127.0.0.1:%d" % port, "name": "http"}] + list(extra_listen),
            "recycle": {"max_requests": 20, "max_requests_jitter": 0}}


def check_nobody(leaves, umask, what):
    for leaf, pid in sorted(leaves.items()):
        uids, gids, groups, mask, cap = ids(pid)
        check(uids == [NOBODY] * 4 and gids == [NOBODY] * 4,
              "%s: worker %d in %s runs as Uid %s Gid %s" % (what, pid, leaf, uids, gids))
        check(groups == [NOBODY], "%s: worker %d groups %s" % (what, pid, groups))
        check(mask == umask, "%s: worker %d umask %s, want %s" % (what, pid, mask, umask))
        check(int(cap, 16) == 0, "%s: worker %d CapEff %s" % (what, pid, cap))


def stop_clean(unit, main, workers):
    cg = sv.unit_cgroup(unit)
    t = time.monotonic()
    run("systemctl", "stop", unit)
    sv.stopped_cleanly(unit, t)
    left = [p for p in [main] + list(workers) if lib.alive(p)]
    check(not left, "%s: processes left after stop: %s" % (unit, left))
    check(not os.path.exists(cg), "%s still exists after stop" % cg)


def check_root():
    sv.current_unit = ROOT_UNIT
    install(ROOT_UNIT, "root.yaml",
            config(ROOT_PORT, "nobody", group="nogroup", umask="0027",
                   extra_listen=[{"address": "unix:" + SOCK, "name": "sock", "mode": "0660", "group": "nogroup"}]))
    run("systemctl", "start", ROOT_UNIT)
    main = int(show(ROOT_UNIT, "MainPID")["MainPID"])
    leaves = sv.wait(lambda: sv.layout(ROOT_UNIT, main, WORKERS), 20,
                     lambda: "memward alone in supervisor/, workers in leaves:\n" + sv.describe_layout(ROOT_UNIT))
    # Logged before the workers were ready; journald may store it later still.
    mode = sv.wait(lambda: sv.memward_events(ROOT_UNIT, "accounting"), 30, "memward's accounting entry in the journal")
    check(mode and mode[-1].get("MEMWARD_MODE") == "cgroup", "not in cgroup mode: %s" % [e.get("MESSAGE") for e in mode])
    uids, _, _, _, _ = ids(main)
    check(uids == [0] * 4, "memward itself runs as %s" % uids)
    check_nobody(leaves, "0027", "root unit")
    st = os.stat(SOCK)
    check(stat.S_IMODE(st.st_mode) == 0o660 and st.st_uid == 0 and st.st_gid == NOBODY,
          "%s is %o %d:%d, want 0660 0:%d" % (SOCK, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, NOBODY))
    ok("%s: memward uid 0 in supervisor/, workers %s as nobody:nogroup, groups [65534], umask 0027, "
       "no capabilities; %s 0660 root:nogroup" % (ROOT_UNIT, " ".join("%s=%d" % kv for kv in sorted(leaves.items())),
                                                  SOCK))

    status, _, body = lib.http_get_unix(SOCK, "/")
    check(status == 200, "over %s: HTTP %d %r" % (SOCK, status, body))
    load = lib.Load(ROOT_PORT, threads=4, total=120, timeout=20).start().join(120)
    load.check_no_failures()
    recycles = sv.wait(lambda: sv.memward_events(ROOT_UNIT, "recycle", reason="max_requests"), 30,
                       "a max_requests recycle")
    old = set(leaves.values())

    def replaced():
        now = sv.layout(ROOT_UNIT, main, WORKERS)
        return now if now and not set(now.values()) & old else None
    # Requests two at a time, each holding its worker 50 ms, so that both workers reach
    # max_requests (one after another, a hot worker may take them all); the requests stop
    # once memward logged a recycle of every original worker, so that the layout can
    # settle: under constant load some slot is always mid-replacement. Five pairs per
    # look at the journal (a journalctl costs more than a pair under TCG): an original
    # the first load never reached needs 20 pairs, and extra ones only recycle more.
    def old_recycled_else_load():
        pids = {int(e["MEMWARD_PID"]) for e in sv.memward_events(ROOT_UNIT, "recycle", reason="max_requests")}
        if old <= pids:
            return True
        for _ in range(5):
            lib.get_at_once(ROOT_PORT, "/sleep?ms=50", WORKERS)
        return False
    sv.wait(old_recycled_else_load, 60,
            lambda: "a max_requests recycle of each of %s:\n%s" % (sorted(old), sv.describe_layout(ROOT_UNIT)),
            interval=0)
    now = sv.wait(replaced, 30, lambda: "every worker replaced:\n" + sv.describe_layout(ROOT_UNIT))
    check(not set(now) & set(leaves), "replacements reuse leaves: %s" % sorted(set(now) & set(leaves)))
    check_nobody(now, "0027", "after recycles")
    ok("%s: %s; %d recycles for max_requests, replacements %s in fresh leaves, still nobody"
       % (ROOT_UNIT, load.summary(), len(recycles), " ".join("%s=%d" % kv for kv in sorted(now.items()))))
    stop_clean(ROOT_UNIT, main, now.values())
    check(not os.path.exists(SOCK), "%s left behind" % SOCK)
    ok("%s stopped cleanly: memward and workers gone, cgroup and socket removed" % ROOT_UNIT)


def check_user():
    sv.current_unit = USER_UNIT
    install(USER_UNIT, "user.yaml", config(USER_PORT, "nobody"), drop_in="User=nobody\nGroup=nogroup\n")
    run("systemctl", "start", USER_UNIT)
    main = int(show(USER_UNIT, "MainPID")["MainPID"])
    cg = sv.unit_cgroup(USER_UNIT)
    check(os.stat(cg).st_uid == NOBODY, "systemd did not hand %s to nobody (Delegate=yes, User=)" % cg)
    leaves = sv.wait(lambda: sv.layout(USER_UNIT, main, WORKERS), 20,
                     lambda: "memward alone in supervisor/, workers in leaves:\n" + sv.describe_layout(USER_UNIT))
    # Logged before the workers were ready; journald may store it later still.
    mode = sv.wait(lambda: sv.memward_events(USER_UNIT, "accounting"), 30, "memward's accounting entry in the journal")
    check(mode and mode[-1].get("MEMWARD_MODE") == "cgroup", "not in cgroup mode: %s" % [e.get("MESSAGE") for e in mode])
    uids, gids, _, _, _ = ids(main)
    check(uids == [NOBODY] * 4 and gids == [NOBODY] * 4, "memward runs as Uid %s Gid %s" % (uids, gids))
    for pid in leaves.values():
        u, g, _, _, _ = ids(pid)
        check(u == [NOBODY] * 4 and g == [NOBODY] * 4, "worker %d runs as %s %s" % (pid, u, g))
    status, _, body = lib.http_get(USER_PORT)
    check(status == 200, "HTTP %d %r" % (status, body))
    ok("%s (User=nobody, Delegate=yes): %s owned by nobody, memward and workers %s as nobody in cgroup mode"
       % (USER_UNIT, cg, " ".join("%s=%d" % kv for kv in sorted(leaves.items()))))
    stop_clean(USER_UNIT, main, leaves.values())
    ok("%s stopped cleanly" % USER_UNIT)


def check_refused():
    sv.current_unit = USER_UNIT
    install(USER_UNIT, "user.yaml", config(USER_PORT, "root"), drop_in="User=nobody\nGroup=nogroup\n")
    t = sv.mark()
    p = subprocess.run(["systemctl", "start", USER_UNIT], capture_output=True, text=True, timeout=60)
    check(p.returncode != 0, "`systemctl start` of a nobody memward with workers.user root succeeded")
    refused = sv.wait(lambda: sv.memward_events(USER_UNIT, "user_switch_not_permitted", after=t), 10,
                      "event=user_switch_not_permitted in the journal")
    check(not sv.memward_events(USER_UNIT, "spawn", after=t), "workers were spawned")
    code = show(USER_UNIT, "ExecMainStatus")["ExecMainStatus"]
    check(code == "1", "ExecMainStatus=%s, want 1" % code)
    ok("%s with workers.user root: start failed, exit 1, %s" % (USER_UNIT, refused[-1].get("MESSAGE")))


def main():
    check(os.environ.get("MEMWARD_VM") == "1" and os.path.exists("/run/systemd/system"),
          "run this through tests/vm/run --init systemd")
    check(os.access(sv.MEMWARD, os.X_OK), "%s is missing: run 'make' on the host first" % sv.MEMWARD)
    os.makedirs("/etc/memward", exist_ok=True)
    check_root()
    check_user()
    check_refused()
    print("PASS: workers.user under systemd 252 with Delegate=yes: root memward with nobody workers, "
          "User=nobody memward, refused switch (%.0fs)" % (time.monotonic() - sv.T0))


if __name__ == "__main__":
    main()
