"""bench/lib/benchlib.py -- what bench/leak and bench/recycle-loss share.

Starting servers so that nothing outlives the run (every process carries
MEMWARD_BENCH_TAG=<random> in its environment and runs in a session of its own),
measuring a server's whole process tree (Pss from /proc/PID/smaps_rollup), wrk with
a Lua script and the parsing of its summary, and the machine/version line of a
report. Standard library only; the runners import it with
sys.path.insert(0, <this folder>).
"""

import os
import platform
import re
import signal
import socket
import subprocess
import threading
import time
import uuid

PY = "/usr/bin/python3"
TAG_VAR = "MEMWARD_BENCH_TAG"
TAG = uuid.uuid4().hex


class Interrupted(Exception):
    pass


def _on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def trap_signals():
    """SIGINT, SIGTERM and SIGHUP raise Interrupted, so that the runner's `finally`
    stops everything it started."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_signal)


def ignore_signals():
    """In the cleanup: a second ^C must not cut it short."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def child_env(extra=None):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
              "LISTEN_FDNAMES"):
        env.pop(k, None)
    env.update(extra or {})
    env[TAG_VAR] = TAG
    return env


def tagged_pids():
    needle = ("%s=%s" % (TAG_VAR, TAG)).encode()
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    if needle in f.read().split(b"\0"):
                        out.append(int(d))
            except OSError:
                pass
    return out


def kill_tagged():
    """SIGKILLs whatever we started that is still there: memward's workers live in
    process groups of their own, and a forked worker's environ is its template's,
    which carries the tag too."""
    for _ in range(5):
        pids = tagged_pids()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


class Server:
    """A server in a session of its own, its output in LOGDIR/NAME.log."""

    def __init__(self, name, argv, cwd, env, logdir, stop_signal=signal.SIGTERM):
        self.name = name
        self.stop_signal = stop_signal
        self.log_path = os.path.join(logdir, re.sub(r"[^\w.-]+", "-", name) + ".log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=40):
        """The server's own graceful stop, then SIGKILL to its session."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, self.stop_signal)
                self.proc.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_log(server, pattern, count, timeout):
    """True once PATTERN occurs COUNT times in the server's log; False when it exits
    or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(re.findall(pattern, server.log(), re.M)) >= count:
            return True
        if server.proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def wait_port(port, timeout):
    """Connects and closes without a request, so no app counts it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


# ---- memory of a process tree ------------------------------------------------------

def process_tree(root):
    """root and all its descendants, via /proc/PID/task/TID/children."""
    pids, i = [root], 0
    while i < len(pids):
        pid = pids[i]
        i += 1
        try:
            for tid in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    pids.extend(int(x) for x in f.read().split())
        except OSError:
            pass                        # it exited while we looked
    return pids


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class PssSampler(threading.Thread):
    """Every `interval` seconds: (seconds since start, Pss KiB of root's whole tree,
    processes in it)."""

    def __init__(self, root, interval):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.samples = []
        self.halt = threading.Event()
        self.t0 = time.monotonic()

    def run(self):
        next_at = time.monotonic()
        while not self.halt.is_set():
            now = time.monotonic()
            pids = process_tree(self.root)
            self.samples.append((round(now - self.t0, 3), sum(pss_kib(p) for p in pids), len(pids)))
            next_at += self.interval
            while next_at < time.monotonic():
                next_at += self.interval      # we fell behind: skip, never burst
            self.halt.wait(max(0.0, next_at - time.monotonic()))

    def stop(self):
        self.halt.set()
        self.join()


# ---- wrk ------------------------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def run_wrk(argv, transcript):
    """Runs wrk (killed if we are interrupted) and parses its summary: requests,
    requests/s, p50/p99 ms (with --latency), socket errors by kind, non-2xx."""
    p = subprocess.run(argv, capture_output=True, text=True, env=child_env())
    with open(transcript, "a") as f:
        f.write(" ".join(argv) + "\n" + p.stdout + p.stderr + "\n")
    out = p.stdout
    total = re.search(r"^\s+(\d+) requests in", out, re.M)
    if p.returncode != 0 or not total:
        return {"error": "wrk exit %d: %s" % (p.returncode, (p.stderr or out).strip()[-300:])}
    r = {"requests": int(total.group(1)), "connect": 0, "read": 0, "write": 0, "timeout": 0, "non2xx": 0}
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    r["rps"] = float(rps.group(1)) if rps else 0.0
    for pct in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s|m)\s*$" % pct, out, re.M)
        if m:
            r["p%s_ms" % pct] = float(m.group(1)) * UNITS[m.group(2)]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r.update(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    r["socket_errors"] = r["connect"] + r["read"] + r["write"] + r["timeout"]
    r["failed"] = r["socket_errors"] + r["non2xx"]
    return r


# ---- reporting ------------------------------------------------------------------------

def version(argv, pattern=r"(\S+)"):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(pattern, (p.stdout + p.stderr).strip())
    return m.group(1) if m else "?"


def machine():
    distro = "?"
    try:
        with open("/etc/os-release") as f:
            distro = re.search(r'^PRETTY_NAME="?([^"\n]*)', f.read(), re.M).group(1)
    except (OSError, AttributeError):
        pass
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return ("%s, Linux %s, %d cores, load average %s at start" %
            (distro, platform.release(), os.cpu_count(), load))
