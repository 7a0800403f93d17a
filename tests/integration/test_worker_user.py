"""workers.user, workers.group, workers.umask and the permissions of unix sockets, for real.

  * --check-config (as any user): an unknown user or group, or a umask without its
    leading 0, is an error at its FILE:LINE:COL, exit 2.
  * As root (skipped otherwise): two workers (workers/whoami.py, which reports and then
    execs the example worker) with user nobody, group nogroup, umask "0027". Each runs
    with real, effective and saved uid and gid 65534, groups [65534] (initgroups),
    umask 0027, no capabilities, and memward as its parent; memward stays root. A unix:
    listen socket with mode "0660", group nogroup and a unix: metrics socket with mode
    "0600", owner nobody show exactly that on disk; a user outside the group (daemon) is
    refused by the listen socket. Requests are served over TCP and over the unix socket,
    max_requests recycles workers and the replacements run as nobody too, and SIGTERM
    stops every worker: exit 0, no process left. A worker that ignores SIGTERM, and its
    child, both nobody, die with the SIGKILL memward (root) sends their process group.
  * memward started as nobody with workers.user: root cannot switch: exit 1 with
    event=user_switch_not_permitted, before any worker is spawned.
  * memward as root of a user namespace (unshare --map-root-user: it holds CAP_SETGID
    there, but setgroups is denied): the switch fails in the child, reported as
    event=spawn_failed step=setgroups, and memward exits 1 instead of looping.
"""

import json
import os
import grp
import pwd
import shutil
import socket
import stat
import subprocess
import time

import lib
from lib import check

WHOAMI = lib.test_worker("whoami.py")


def check_config_errors(t):
    path = t.write("bad.yaml",
                   "workers:\n"
                   "  command: [/bin/true]\n"
                   "  user: nosuchuser\n"
                   "  group: nosuchgroup\n"
                   "  umask: 27\n"
                   "listen:\n"
                   "  - {address: \"tcp://127.0.0.1:8000\", mode: \"0660\"}\n")
    rc, out, err, _ = t.run(["--check-config", "-c", path])
    check(rc == 2, "--check-config with an unknown user: exit %d, want 2\n%s" % (rc, err))
    for want in ('%s:3:9: workers.user: no such user "nosuchuser"' % path,
                 '%s:4:10: workers.group: no such group "nosuchgroup"' % path,
                 '%s:5:10: workers.umask: expected "" (inherit memward\'s) or an octal umask' % path,
                 '%s:7:45: listen[0].mode: only for a unix: socket path, and the address is TCP' % path):
        check(want in err, "--check-config does not say %r:\n%s" % (want, err))
    print("--check-config: unknown user and group, bad umask and mode on TCP reported at their line:col")


def reports(directory):
    out = {}
    for name in os.listdir(directory):
        if name.endswith(".json"):
            with open(os.path.join(directory, name)) as f:
                r = json.load(f)
            out[r["pid"]] = r
    return out


def check_report(r, mw_pid):
    where = "worker pid %d" % r["pid"]
    check(r["uids"] == [65534] * 3, "%s: uids (real, effective, saved) %r" % (where, r["uids"]))
    check(r["gids"] == [65534] * 3, "%s: gids %r" % (where, r["gids"]))
    check(r["groups"] == [65534], "%s: supplementary groups %r" % (where, r["groups"]))
    check(r["umask"] == 0o027, "%s: umask %04o" % (where, r["umask"]))
    check(int(r["cap_eff"], 16) == 0 and int(r["cap_prm"], 16) == 0,
          "%s: capabilities left: CapEff %s CapPrm %s" % (where, r["cap_eff"], r["cap_prm"]))
    check(r["ppid"] == mw_pid, "%s: parent %d, not memward %d" % (where, r["ppid"], mw_pid))


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:4]]
    return None


def connect_as(uid, gid, path):
    """0 when a process with uid/gid (no supplementary groups) can connect to path,
    else the errno."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(path)
        except OSError as e:
            code = e.errno or 255
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def as_root(t):
    os.chmod(t.dir, 0o755)          # the workers (nobody) read the config's neighbours
    who = t.path("who")
    os.mkdir(who)
    os.chmod(who, 0o777)
    port = t.port()
    cfg = lib.config(port, count=2, command=WHOAMI,
                     workers={"user": "nobody", "group": "nogroup", "umask": "0027",
                              "env": {"WHOAMI_DIR": who}},
                     listen=[{"address": "tcp://127.0.0.1:%d" % port, "name": "http"},
                             {"address": "unix:app.sock", "name": "app", "mode": "0660", "group": "nogroup"}],
                     recycle={"max_requests": 3},
                     metrics={"listen": "unix:metrics.sock", "mode": "0600", "owner": "nobody"})
    mw = t.memward(cfg, cwd=t.dir)
    mw.wait_event("ready", count=2)
    check(uid_of(mw.pid) == [0, 0, 0], "memward's own uids changed: %r" % uid_of(mw.pid))

    first = reports(who)
    check(len(first) == 2, "want 2 worker reports, got %r" % first)
    for r in first.values():
        check_report(r, mw.pid)
    for slot, pid in mw.current_workers().items():
        check(uid_of(pid) == [65534] * 3, "worker %s (pid %d) runs as %r" % (slot, pid, uid_of(pid)))
    print("workers run as nobody:nogroup, groups [65534], umask 0027, no capabilities; memward as root")

    app = os.stat(t.path("app.sock"))
    check(stat.S_ISSOCK(app.st_mode) and stat.S_IMODE(app.st_mode) == 0o660,
          "app.sock mode %o, want 0660" % app.st_mode)
    check(app.st_uid == 0 and app.st_gid == 65534, "app.sock owned by %d:%d, want 0:65534" % (app.st_uid, app.st_gid))
    metrics = os.stat(t.path("metrics.sock"))
    check(stat.S_IMODE(metrics.st_mode) == 0o600, "metrics.sock mode %o, want 0600" % metrics.st_mode)
    check(metrics.st_uid == 65534 and metrics.st_gid == 0,
          "metrics.sock owned by %d:%d, want 65534:0" % (metrics.st_uid, metrics.st_gid))
    daemon = pwd.getpwnam("daemon")
    check(connect_as(daemon.pw_uid, daemon.pw_gid, t.path("app.sock")) == 13,
          "a user outside nogroup could connect to app.sock (0660 root:nogroup)")
    check(connect_as(65534, 65534, t.path("app.sock")) == 0, "nogroup cannot connect to app.sock")
    print("app.sock 0660 root:nogroup (daemon refused, nogroup let in), metrics.sock 0600 nobody:root")

    # Served over both sockets, by workers memward recycles every 3 requests. Which worker
    # accepts is the kernel's choice (a hot worker may take every connection), so requests
    # go on until two recycles are logged rather than assuming they spread over both.
    served, deadline = 0, time.monotonic() + 30
    while served < 12 or len(mw.events("recycle", reason="max_requests")) < 2:
        check(served < 300 and time.monotonic() < deadline,
              "%d requests, %d max_requests recycles, want 2" % (served, len(mw.events("recycle"))))
        if served % 3 == 2:
            status, _, body = lib.http_get_unix(t.path("app.sock"), "/")
        else:
            status, _, body = lib.http_get(port, "/")
        check(status == 200, "request %d (%s): %d %s"
              % (served, "app.sock" if served % 3 == 2 else "TCP", status, body))
        served += 1
    mw.wait_event("ready", count=4, timeout=20)
    later = reports(who)
    check(len(later) >= 4, "replacements did not report: %r" % sorted(later))
    for r in later.values():
        check_report(r, mw.pid)
    print("%d requests served, %d recycles, %d workers ran, all as nobody"
          % (served, len(mw.events("recycle")), len(later)))

    pids = [int(l.get("pid")) for l in mw.events("spawn")]
    rc = mw.stop()
    check(rc == 0, "memward exited %s" % rc)
    alive = [p for p in pids if lib.alive(p)]
    check(not alive, "workers still alive after the stop: %r" % alive)
    check(not t.leftovers(), "processes left: %r" % t.leftovers())
    check(not os.path.exists(t.path("app.sock")), "app.sock left behind")
    print("SIGTERM: exit 0, every worker gone, socket files removed")


def stubborn_group(t):
    out = t.path("stubborn")
    os.mkdir(out)
    os.chmod(out, 0o777)
    port = t.port()
    cfg = lib.config(port, count=1, command=lib.test_worker("stubborn.py"),
                     workers={"user": "nobody", "group": "nogroup", "graceful_timeout": "1s",
                              "env": {"STUBBORN_SLOTS": "0", "STUBBORN_DIR": out}})
    mw = t.memward(cfg, name="stubborn", cwd=t.dir)
    mw.wait_event("ready")
    deadline = time.monotonic() + 5
    while not os.listdir(out):
        check(time.monotonic() < deadline, "the stubborn worker did not report")
        time.sleep(0.05)
    with open(os.path.join(out, os.listdir(out)[0])) as f:
        _, pid, child = (int(x) for x in f.read().split())
    check(uid_of(pid) == [65534] * 3 and uid_of(child) == [65534] * 3,
          "stubborn worker %r and child %r not nobody" % (uid_of(pid), uid_of(child)))
    rc = mw.stop()
    check(rc == 0, "memward exited %s" % rc)
    check(not lib.alive(pid) and not lib.alive(child),
          "the stubborn worker (%s) or its child (%s) survived the stop"
          % (lib.alive(pid), lib.alive(child)))
    print("a nobody worker ignoring SIGTERM and its child: killed with their group, exit 0")


def unprivileged_start(t):
    port = t.port()
    path = t.write_config(lib.config(port, count=1, workers={"user": "root"}), "unprivileged.yaml")
    os.chmod(path, 0o644)
    env = dict(os.environ)
    env[lib.TAG_VAR] = t.tag
    p = subprocess.run([lib.MEMWARD, "-c", path], user=65534, group=65534, extra_groups=[],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=15, env=env, cwd=t.dir)
    err = p.stderr.decode("utf-8", "replace")
    check(p.returncode == 1, "memward as nobody with workers.user root: exit %d, want 1\n%s" % (p.returncode, err))
    lines = [lib.parse_logfmt(l) for l in err.splitlines()]
    check(any(l.get("event") == "user_switch_not_permitted" and l.get("user") == "root" for l in lines),
          "no event=user_switch_not_permitted user=root:\n%s" % err)
    check(not any(l.get("event") == "spawn" for l in lines), "workers were spawned:\n%s" % err)
    print("memward as nobody with workers.user root: exit 1, user_switch_not_permitted")


def refused_in_child(t):
    unshare = shutil.which("unshare")
    if not unshare:
        print("no unshare(1): the step=setgroups check is left out")
        return
    path = t.write_config(lib.config(t.port(), count=1, listen=[], command=["/bin/sleep", "60"],
                                     workers={"user": "nobody", "ready": "immediate"}), "userns.yaml")
    env = dict(os.environ)
    env[lib.TAG_VAR] = t.tag
    p = subprocess.run([unshare, "--user", "--map-root-user", lib.MEMWARD, "-c", path], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=15, env=env, cwd=t.dir)
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode != 0 and "unshare" in err and "memward" not in err:
        print("unshare --user is not permitted here: the step=setgroups check is left out (%s)" % err.strip())
        return
    check(p.returncode == 1, "in a user namespace: exit %d, want 1\n%s" % (p.returncode, err))
    lines = [lib.parse_logfmt(l) for l in err.splitlines()]
    failed = [l for l in lines if l.get("event") == "spawn_failed"]
    check(len(failed) == 1 and failed[0].get("step") == "setgroups" and failed[0].get("user") == "nobody",
          "want one spawn_failed step=setgroups user=nobody:\n%s" % err)
    check(not any(l.get("event") == "spawn" for l in lines), "a worker was spawned:\n%s" % err)
    print("in a user namespace: spawn_failed step=setgroups, exit 1")


def test(t):
    check_config_errors(t)
    if os.geteuid() != 0:
        lib.skip("the rest needs root (it switches workers to nobody)")
    try:
        pwd.getpwnam("nobody")
        grp.getgrnam("nogroup")
        pwd.getpwnam("daemon")
    except KeyError as e:
        lib.skip("no user or group %s on this system" % e)
    as_root(t)
    stubborn_group(t)
    unprivileged_start(t)
    refused_in_child(t)


if __name__ == "__main__":
    lib.main(test)
