"""What a worker gets from memward: environment, fds, signals, process group, cwd.

memward itself is started with NOTIFY_SOCKET/WATCHDOG_USEC/WATCHDOG_PID as under
systemd; none of them may reach the workers. Each worker (tests/integration/
workers/envdump.py, behind a /bin/sh that records its SigBlk/SigIgn) reports:
MEMWARD_WORKER_ID and MEMWARD_WORKER_GENERATION, MEMWARD_MAX_REQUESTS (its drawn
request limit, never memward's own variable), LISTEN_FDS/LISTEN_PID/
LISTEN_FDNAMES per the socket-activation protocol, memward's own NOTIFY_SOCKET,
workers.env, only fds 0-2 plus the listening sockets, an empty signal mask, no
ignored signals, its own process group, and workers.directory resolved against
memward's cwd at start-up. Run twice: one TCP listener; then TCP + a unix socket
given by a relative path."""

import json
import os
import socket
import time

import lib
from lib import check

# The shell records what it inherited (signal state survives exec), then becomes the
# worker. Builtins only: a child reading the shell's status could catch the shell
# blocking signals around fork/wait.
WRAPPER = ('while IFS= read -r l; do case $l in SigBlk:*|SigIgn:*) echo "$l";; esac; '
           'done < /proc/self/status > "$ENVDUMP_DIR/sig-$$"; '
           'exec %s %s' % (lib.PYTHON, os.path.join(lib.WORKERS_DIR, "envdump.py")))
PIPE_XFSZ = (1 << (13 - 1)) | (1 << (25 - 1))   # reset to SIG_DFL by subprocess anyway


def reports(t, out, n, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        names = [f for f in os.listdir(out) if f.endswith(".json")]
        if len(names) >= n:
            return [json.load(open(os.path.join(out, f))) for f in names]
        check(time.monotonic() < deadline, "only %d of %d workers reported" % (len(names), n))
        time.sleep(0.05)


def sig_fields(out, pid):
    fields = {}
    for line in open(os.path.join(out, "sig-%d" % pid)):
        k, v = line.split(":")
        fields[k] = int(v.strip(), 16)
    return fields


def run(t, label, listen, names, count):
    out = t.path("dump-" + label)
    os.mkdir(out)
    os.mkdir(t.path("workdir-" + label))
    fake = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    fake_path = t.path("systemd-notify-" + label)
    fake.bind(fake_path)
    port = t.port()
    cfg = lib.config(port, count=count, command=["/bin/sh", "-c", WRAPPER], listen=listen(port),
                     workers={"directory": "workdir-" + label,
                              "env": {"APP_ENV": "prod", "ENVDUMP_DIR": out}},
                     recycle={"max_requests": 500, "max_requests_jitter": 100})
    mw = t.memward(cfg, name=label, cwd=t.dir,
                   env={"NOTIFY_SOCKET": fake_path, "WATCHDOG_USEC": "30000000",
                        "WATCHDOG_PID": "1", "PASSED_THROUGH": "yes", "MEMWARD_MAX_REQUESTS": "7"})
    mw.wait_event("ready", count=count)
    my_ign = lib.signal_mask_field(os.getpid(), "SigIgn") & ~PIPE_XFSZ
    n_fds = len(names)
    slots = set()
    for r in reports(t, out, count):
        pid, env = r["pid"], r["env"]
        where = "%s: worker pid %d" % (label, pid)
        slots.add(env.get("MEMWARD_WORKER_ID"))
        check(env.get("MEMWARD_WORKER_GENERATION", "").isdigit(), "%s: generation %r"
              % (where, env.get("MEMWARD_WORKER_GENERATION")))
        # Its own drawn limit, from its event=spawn line; not memward's own variable.
        limit = [e.get("request_limit") for e in mw.events("spawn") if e.get("pid") == str(pid)]
        check(limit and env.get("MEMWARD_MAX_REQUESTS") == limit[0] and 500 <= int(limit[0]) <= 600,
              "%s: MEMWARD_MAX_REQUESTS=%r, its request_limit %r" % (where, env.get("MEMWARD_MAX_REQUESTS"), limit))
        check(env.get("LISTEN_FDS") == str(n_fds), "%s: LISTEN_FDS=%r" % (where, env.get("LISTEN_FDS")))
        check(env.get("LISTEN_PID") == str(pid), "%s: LISTEN_PID=%r" % (where, env.get("LISTEN_PID")))
        check(env.get("LISTEN_FDNAMES") == ":".join(names),
              "%s: LISTEN_FDNAMES=%r" % (where, env.get("LISTEN_FDNAMES")))
        ns = env.get("NOTIFY_SOCKET")
        check(ns and ns != fake_path, "%s: NOTIFY_SOCKET=%r (memward's own: %s)" % (where, ns, fake_path))
        for leaked in ("WATCHDOG_USEC", "WATCHDOG_PID"):
            check(leaked not in env, "%s: %s leaked: %r" % (where, leaked, env.get(leaked)))
        check(env.get("APP_ENV") == "prod", "%s: workers.env not applied" % where)
        check(env.get("PASSED_THROUGH") == "yes", "%s: memward's environment not passed" % where)

        fds = sorted(int(fd) for fd in r["fds"])
        check(fds == list(range(3 + n_fds)), "%s: open fds %r" % (where, r["fds"]))
        for i in range(n_fds):
            s = r["sockets"][str(3 + i)]
            check(s.get("listening") == 1, "%s: fd %d is not a listening socket: %r" % (where, 3 + i, s))
        tcp = r["sockets"]["3"]
        check(tcp["family"] == socket.AF_INET and tcp["name"][1] == port,
              "%s: fd 3 is %r, want 127.0.0.1:%d" % (where, tcp, port))
        if n_fds > 1:
            unix = r["sockets"]["4"]
            check(unix["family"] == socket.AF_UNIX and unix["name"] == t.path("app.sock"),
                  "%s: fd 4 is %r, want %s" % (where, unix, t.path("app.sock")))

        check(int(r["sigblk"], 16) == 0, "%s: blocked signals %s" % (where, r["sigblk"]))
        sig = sig_fields(out, pid)
        check(sig["SigBlk"] == 0, "%s: the shell had signals blocked: %x" % (where, sig["SigBlk"]))
        check(sig["SigIgn"] & ~my_ign == 0, "%s: ignored signals %x" % (where, sig["SigIgn"]))
        check(r["pgid"] == pid, "%s: process group %d, not its own" % (where, r["pgid"]))
        check(r["ppid"] == mw.pid, "%s: parent %d, not memward %d" % (where, r["ppid"], mw.pid))
        check(r["cwd"] == t.path("workdir-" + label), "%s: cwd %s" % (where, r["cwd"]))
    check(slots == {str(i) for i in range(count)}, "%s: MEMWARD_WORKER_ID values %r" % (label, slots))
    rc = mw.stop()
    check(rc == 0, "%s: memward exited %s" % (label, rc))
    fake.close()


def test(t):
    run(t, "tcp", lambda port: [{"address": "tcp://127.0.0.1:%d" % port, "name": "http"}],
        ["http"], count=2)
    run(t, "tcp+unix", lambda port: [{"address": "tcp://127.0.0.1:%d" % port, "name": "web"},
                                     {"address": "unix:app.sock", "name": "admin"}],
        ["web", "admin"], count=1)


if __name__ == "__main__":
    lib.main(test)
