"""Logs go to journald as native entries with structured fields when stderr is the
journal stream, and are unchanged on any other stderr.

The test runs itself again inside a private mount namespace (unshare -m) with a tmpfs
on /run, binds its own datagram socket at /run/systemd/journal/socket there (where
libsystemd's sd_journal_sendv() sends), and starts memward with stderr on a pipe
whose dev:inode it puts in JOURNAL_STREAM, as systemd does for a service. Then:
  * every memward event arrives as one entry: MESSAGE= the logfmt text without time and
    level, PRIORITY=, SYSLOG_IDENTIFIER=memward, MEMWARD_EVENT=, and MEMWARD_<KEY>= for
    every field — worker= as MEMWARD_SLOT=, quoted values decoded; a recycle carries
    MEMWARD_EVENT=recycle MEMWARD_SLOT=0 MEMWARD_REASON=max_requests;
  * nothing of memward's own reaches the stderr pipe;
  * with JOURNAL_STREAM naming another inode, or no journal socket at all, the lines on
    stderr are exactly the logfmt (or JSON) lines memward always wrote.
Needs root for the mount namespace (CI runs the suite as root); without it, it skips
with that reason."""

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

import lib
from lib import check

INNER = "MEMWARD_JOURNALD_TEST_INNER"
SOCKET_PATH = "/run/systemd/journal/socket"


def parse_entry(data):
    """The native protocol: KEY=value\\n, or KEY\\n<le64 length><value>\\n for binary values."""
    fields = {}
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, _, v = line.partition(b"=")
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            v = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        fields.setdefault(k.decode(), []).append(v.decode("utf-8", "replace"))
    return {k: v[0] if len(v) == 1 else v for k, v in fields.items()}


class Journal(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        os.makedirs(os.path.dirname(SOCKET_PATH), exist_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(SOCKET_PATH)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.settimeout(0.2)
        self.entries = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            self.entries.append(parse_entry(data))

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [e for e in list(self.entries) if pred(e)]
            if hits:
                return hits
            time.sleep(0.05)
        lib.fail("no journal entry for %s in %.0fs; got %d entries: %r" % (what, timeout, len(self.entries),
                                                                          self.entries[-5:]))


def start(t, cfg_path, journal_stream, name):
    r, w = os.pipe()
    st = os.fstat(w)
    env = dict(os.environ)
    env[lib.TAG_VAR] = t.tag
    env["JOURNAL_STREAM"] = journal_stream(st)
    env.pop("NOTIFY_SOCKET", None)
    p = subprocess.Popen([lib.MEMWARD, "-c", cfg_path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=w, env=env, cwd=t.dir)
    os.close(w)
    out = []
    reader = threading.Thread(target=_drain, args=(r, out), daemon=True)
    reader.start()
    return p, out, reader


def _drain(fd, out):
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        out.append(chunk)
    os.close(fd)


def wait_output(out, needle, timeout=15.0):
    """Waits until memward's stderr has shown needle (start-up may be slow on a busy machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in b"".join(out):
            return
        time.sleep(0.05)
    lib.fail("%r did not appear on stderr within %.0fs: %r" % (needle, timeout, b"".join(out)[-2000:]))


def stop(p, reader):
    p.terminate()
    rc = p.wait(15)
    reader.join(5)
    return rc


def inner(t):
    journal = Journal()
    journal.start()
    port = t.port()
    cfg = t.write_config(lib.config(port, count=1, recycle={"max_requests": 3}))

    # 1. stderr is the journal stream: native entries.
    p, out, reader = start(t, cfg, lambda st: "%d:%d" % (st.st_dev, st.st_ino), "journal")
    ready = journal.wait(lambda e: e.get("MEMWARD_EVENT") == "ready", 15, "event=ready")[0]
    # Exactly the limit: requests=3 in the recycle line. Sent at once, so that the one
    # worker serves them back to back: one after another, a loaded machine's pace could
    # space them 250 ms apart, enough for memward to learn a request rate and start the
    # replacement ahead of the limit (requests=2 expected_in=).
    lib.get_at_once(port, "/", 3)
    rec = journal.wait(lambda e: e.get("MEMWARD_EVENT") == "recycle", 10, "event=recycle")[0]
    check(rec.get("MEMWARD_SLOT") == "0" and rec.get("MEMWARD_REASON") == "max_requests",
          "recycle entry %r" % rec)
    check(rec.get("PRIORITY") == "6" and rec.get("SYSLOG_IDENTIFIER") == "memward", "recycle entry %r" % rec)
    check(rec["MESSAGE"].startswith("event=recycle worker=0 pid=%s reason=max_requests" % rec["MEMWARD_PID"]),
          "MESSAGE %r" % rec["MESSAGE"])
    check(rec.get("MEMWARD_REQUESTS") == "3" and rec.get("MEMWARD_LIMIT") == "3", "recycle numbers %r" % rec)
    check("MEMWARD_WORKER" not in rec, "worker= is MEMWARD_SLOT=, not MEMWARD_WORKER=: %r" % rec)
    check(ready.get("MEMWARD_SLOT") == "0" and "MEMWARD_GENERATION" in ready, "ready entry %r" % ready)
    # Quoted values arrive decoded: the accounting line has reason="...".
    acc = journal.wait(lambda e: e.get("MEMWARD_EVENT") == "accounting", 5, "event=accounting")[0]
    check(" " in acc.get("MEMWARD_REASON", "") and '"' not in acc["MEMWARD_REASON"], "accounting %r" % acc)
    check(stop(p, reader) == 0, "memward did not exit 0")
    journal.wait(lambda e: e.get("MEMWARD_EVENT") == "exit_supervisor", 5, "event=exit_supervisor")
    err = b"".join(out).decode("utf-8", "replace")
    check("event=" not in err, "memward wrote to stderr although it is the journal stream:\n%s" % err)
    n_journal = len(journal.entries)

    # 2. JOURNAL_STREAM names another stream: plain logfmt on stderr, nothing sent.
    p, out, reader = start(t, cfg, lambda st: "%d:%d" % (st.st_dev, st.st_ino + 1), "other")
    wait_output(out, b" event=ready ")
    check(stop(p, reader) == 0, "memward did not exit 0")
    lines = b"".join(out).decode().splitlines()
    mine = [l for l in lines if " event=" in l]
    check(mine and all(l.startswith("time=") and " level=" in l for l in mine), "stderr lines %r" % lines[:5])
    check(any(lib.parse_logfmt(l).get("event") == "ready" for l in mine), "no event=ready on stderr: %r" % mine)
    check(len(journal.entries) == n_journal, "entries were sent to the journal anyway")

    # JSON stays JSON.
    cfg_json = t.write_config(lib.config(port, count=1, log={"format": "json"}), "json.yaml")
    p, out, reader = start(t, cfg_json, lambda st: "garbage", "json")
    wait_output(out, b'"event":"ready"')
    check(stop(p, reader) == 0, "memward did not exit 0")
    events = [json.loads(l) for l in b"".join(out).decode().splitlines() if l.startswith("{")]
    check(any(e.get("event") == "ready" and e.get("worker") == "0" for e in events), "JSON lines %r" % events[:3])
    journal.stop.set()
    journal.join(2)
    journal.sock.close()

    # 3. The stream matches but no journald listens: the lines still reach stderr.
    os.unlink(SOCKET_PATH)
    p, out, reader = start(t, cfg, lambda st: "%d:%d" % (st.st_dev, st.st_ino), "nojournal")
    wait_output(out, b" event=ready ")
    check(stop(p, reader) == 0, "memward did not exit 0")
    lines = b"".join(out).decode().splitlines()
    check(any(lib.parse_logfmt(l).get("event") == "ready" for l in lines), "fallback to stderr: %r" % lines[:5])
    print("%d native journal entries; fallbacks to stderr work" % n_journal)


def run_in_namespace(t, script, inner_var):
    """Runs script again, as root, in a private mount namespace with a tmpfs on /run and
    inner_var set in its environment; its output is this test's."""
    if os.geteuid() != 0:
        lib.skip("needs root for a private mount namespace")
    env = dict(os.environ)
    env[inner_var] = "1"
    # The inner test kills whatever carries its tag when it ends; with ours it would kill
    # this process too. Its own tag, and the same check the runner makes, here.
    inner_tag = t.tag + "-inner"
    env[lib.TAG_VAR] = inner_tag
    shell = ("mount -t tmpfs -o mode=0755 memward-test /run && exec %s %s"
              % (lib.PYTHON, os.path.abspath(script)))
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", shell],
                       env=env, capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    left = lib.pids_with_env(lib.TAG_VAR, inner_tag)
    for pid in left:
        os.kill(pid, 9)
    check(not left, "the inner test left processes behind: %r" % left)
    if p.returncode == lib.EXIT_SKIP:
        lib.skip(out.strip().splitlines()[-1] if out.strip() else "inner test skipped")
    if p.returncode == 1 and ("unshare failed" in out or "mount:" in out) and "Traceback" not in out:
        lib.skip("no mount namespace here: %s" % out.strip())
    check(p.returncode == 0, "inside the mount namespace (exit %d):\n%s" % (p.returncode, out))
    sys.stdout.write(out)


def outer(t):
    run_in_namespace(t, __file__, INNER)


if __name__ == "__main__":
    lib.main(inner if os.environ.get(INNER) else outer)
