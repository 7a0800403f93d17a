"""Helpers for memward's integration tests: real processes, real sockets.

Each test file is a standalone script run with /usr/bin/python3:

    import lib

    def test(t):
        mw = t.memward(lib.config(t.port(), count=2))
        mw.wait_event("ready", count=2)
        ...

    if __name__ == "__main__":
        lib.main(test)

lib.main() gives the test a Context (a temporary directory, every memward it started,
cleanup), exits 0 on pass, 1 on failure (printing memward's log), 77 on lib.skip().
Every process a test starts carries MEMWARD_TEST_TAG=<random> in its environment;
whatever is still alive with that tag when the test ends is SIGKILLed, so a broken
memward cannot leave workers behind.
"""

import datetime
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = "/usr/bin/python3"
MEMWARD = os.path.abspath(os.path.join(REPO, os.environ.get("MEMWARD") or "build/memward"))
EXAMPLE_WORKER = os.path.join(REPO, "examples", "python", "worker.py")
EXAMPLE_COMMAND = [PYTHON, EXAMPLE_WORKER]
WORKERS_DIR = os.path.join(REPO, "tests", "integration", "workers")
TAG_VAR = "MEMWARD_TEST_TAG"

EXIT_PASS, EXIT_FAIL, EXIT_SKIP = 0, 1, 77


class Failure(AssertionError):
    pass


class Skip(Exception):
    pass


def fail(msg):
    raise Failure(msg)


def skip(reason):
    raise Skip(reason)


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def test_worker(name):
    """argv for a script under tests/integration/workers/."""
    return [PYTHON, os.path.join(WORKERS_DIR, name)]


# ---------------------------------------------------------------- config files

_PLAIN = re.compile(r"^[A-Za-z0-9_.+-]+$")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _YAML_WORDS and not re.match(r"^[0-9.+-]+$", s):
        return s
    return json.dumps(s)        # a JSON string is a valid YAML double-quoted scalar


def yaml_dump(obj, indent=0):
    """Block-style YAML for dicts, lists and scalars (what our configs need)."""
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:\n%s" % (pad, k, yaml_dump(v, indent + 2)))
            elif isinstance(v, dict):
                out.append("%s%s: {}\n" % (pad, k))
            elif isinstance(v, list):
                out.append("%s%s: []\n" % (pad, k))
            else:
                out.append("%s%s: %s\n" % (pad, k, _scalar(v)))
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, (dict, list)) and v:
                body = yaml_dump(v, indent + 2)
                out.append("%s- %s" % (pad, body[indent + 2:]))
            else:
                out.append("%s- %s\n" % (pad, _scalar(v)))
    else:
        out.append("%s%s\n" % (pad, _scalar(obj)))
    return "".join(out)


def config(port, count=2, command=None, workers=None, recycle=None, listen=None, **sections):
    """A config dict: `count` example workers on tcp://127.0.0.1:port, short timeouts."""
    w = {
        "count": count,
        "command": list(command or EXAMPLE_COMMAND),
        "ready_timeout": "10s",
        "graceful_timeout": "5s",
        "restart_backoff": {"initial": "100ms", "max": "1s"},
    }
    w.update(workers or {})
    c = {"workers": w}
    if listen is None:
        listen = [{"address": "tcp://127.0.0.1:%d" % port, "name": "http", "backlog": 1024}]
    if listen:
        c["listen"] = listen
    if recycle:
        c["recycle"] = recycle
    c.update(sections)
    return c


# ---------------------------------------------------------------- logs

_FIELD = re.compile(r'([A-Za-z_][A-Za-z0-9_.\-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(line):
    fields = {}
    for key, value in _FIELD.findall(line):
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                value = value[1:-1]
        fields[key] = value
    return fields


def parse_duration(s):
    """'1.5s', '250ms', '3m' -> seconds (float); None when unparsable."""
    m = re.match(r"^([0-9.]+)(us|ms|s|m|h)?$", s or "")
    if not m:
        return None
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]
    return float(m.group(1)) * scale


class LogLine:
    __slots__ = ("t", "text", "fields")

    def __init__(self, t, text):
        self.t = t                      # time.monotonic() when we read it
        self.text = text
        self.fields = parse_logfmt(text)

    @property
    def event(self):
        return self.fields.get("event")

    def get(self, key, default=None):
        return self.fields.get(key, default)

    def int(self, key):
        return int(self.fields[key])

    @property
    def at(self):
        """memward's own time= (UTC, millisecond precision) in seconds since the epoch: what
        to compare two of its lines by, since `t` (when this test read the line) also
        counts how late the test's reader ran on a busy machine."""
        return datetime.datetime.strptime(self.fields["time"], "%Y-%m-%dT%H:%M:%S.%fZ") \
            .replace(tzinfo=datetime.timezone.utc).timestamp()

    def __repr__(self):
        return self.text


# ---------------------------------------------------------------- /proc

def proc_stat(pid):
    """(state, ppid, pgrp) or None if the process is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("latin-1")
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[2])


def cpu_seconds(pid):
    """User + system CPU time the process has used, in seconds."""
    with open("/proc/%d/stat" % pid, "rb") as f:
        rest = f.read().decode("latin-1").rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def worker_notify_socket(pid):
    """The NOTIFY_SOCKET memward gave a worker, as an address for socket.sendto()."""
    with open("/proc/%d/environ" % pid, "rb") as f:
        for item in f.read().split(b"\0"):
            if item.startswith(b"NOTIFY_SOCKET="):
                addr = item.split(b"=", 1)[1].decode()
                return "\0" + addr[1:] if addr.startswith("@") else addr
    fail("worker %d has no NOTIFY_SOCKET" % pid)


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def children_map():
    m = {}
    for pid in all_pids():
        st = proc_stat(pid)
        if st:
            m.setdefault(st[1], []).append(pid)
    return m


def descendants(pid):
    """Every live descendant of pid (zombies included), from /proc."""
    m = children_map()
    out, todo = [], [pid]
    while todo:
        for c in m.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def zombies_of(ppid):
    out = []
    for pid in all_pids():
        st = proc_stat(pid)
        if st and st[0] == "Z" and st[1] == ppid:
            out.append(pid)
    return out


def pids_with_env(var, value):
    """Live (non-zombie) processes whose environment holds var=value."""
    needle = ("%s=%s" % (var, value)).encode() + b"\0"
    out = []
    for pid in all_pids():
        if pid == os.getpid():
            continue
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read() + b"\0"
        except OSError:
            continue
        if env.startswith(needle) or (b"\0" + needle) in env:
            st = proc_stat(pid)
            if st and st[0] != "Z":
                out.append(pid)
    return out


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


def signal_mask_field(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    return None


# ---------------------------------------------------------------- network

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def http_get(port, path="/", timeout=10.0, host="127.0.0.1"):
    """(status, headers dict, body text); raises on connection errors."""
    return _get(http.client.HTTPConnection(host, port, timeout=timeout), path)


def http_get_unix(socket_path, path="/", timeout=10.0):
    """http_get() over a unix stream socket."""
    return _get(_UnixHTTPConnection(socket_path, timeout), path)


def _get(conn, path):
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def wait_http(port, timeout=10.0, path="/"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            status, _, body = http_get(port, path, timeout=2.0)
            if status == 200:
                return body
            last = "status %d" % status
        except OSError as e:
            last = repr(e)
        time.sleep(0.05)
    fail("no HTTP 200 on port %d within %.1fs (last: %s)" % (port, timeout, last))


def worker_pid_of(headers, body):
    if "x-worker-pid" in headers:
        return int(headers["x-worker-pid"])
    m = re.search(r"\bpid=(\d+)", body)
    return int(m.group(1)) if m else None


def get_at_once(port, path, n, timeout=30.0):
    """Sends `path` n times at once; returns the n (status, headers, body), each checked
    to be 200. A path that holds a sync worker (/sleep?ms=1000) keeps each worker to one
    of them, so n requests reach n workers. Requests sent one after another do not: the
    kernel may hand every connection on a shared socket to the one hot worker."""
    results = [None] * n

    def get(i):
        try:
            results[i] = http_get(port, path, timeout=timeout)
        except Exception as e:      # reported below, with the others
            results[i] = e
    threads = [threading.Thread(target=get, args=(i,), daemon=True) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout + 5)
    for r in results:
        check(isinstance(r, tuple), "%s, sent %d times at once: %r" % (path, n, r))
        check(r[0] == 200, "%s: HTTP %d %r" % (path, r[0], r[2]))
    return results


def reach_workers(port, want, path="/sleep?ms=1000", n=None, rounds=5):
    """Sends `path` n (default len(want)) times at once, up to `rounds` times, until every
    pid in `want` has answered; returns {pid: (status, headers, body)} of the answers."""
    want = set(want)
    seen = {}
    for _ in range(rounds):
        for r in get_at_once(port, path, n or len(want)):
            seen.setdefault(worker_pid_of(r[1], r[2]), r)
        if want <= set(seen):
            return seen
    fail("%s never reached worker(s) %s in %d rounds; answered: %s"
         % (path, sorted(want - set(seen)), rounds, sorted(seen)))


def sockets_of(pid):
    """How many sockets the process has open."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
        except OSError:
            pass
    return n


def request_in_flight(port, path, pids, timeout=10.0):
    """Sends `path` from a thread and returns once one of `pids` (the workers) has accepted
    it (holds one more socket than before): (thread, result), where result gets the
    (status, headers, body) or the exception. Waiting on the worker, not for a fixed
    pause, which a busy machine can outlast before the request even connects."""
    def sockets(pid):
        try:
            return sockets_of(pid)
        except OSError as e:
            fail("worker %d, watched for %s, is gone: %s" % (pid, path, e))
    before = {pid: sockets(pid) for pid in pids}
    result = []

    def get():
        try:
            result.append(http_get(port, path, timeout=30))
        except Exception as e:      # the caller checks what came back
            result.append(e)
    th = threading.Thread(target=get, daemon=True)
    th.start()
    deadline = time.monotonic() + timeout
    while not any(sockets(pid) > n for pid, n in before.items()):
        check(not result, "%s was answered before a worker was seen holding it: %r" % (path, result))
        check(time.monotonic() < deadline, "no worker of %s accepted %s within %.0fs" % (sorted(pids), path, timeout))
        time.sleep(0.01)
    return th, result


class Load:
    """Concurrent HTTP clients (threads + http.client, one connection per request).

    Load(port, total=2000) stops after `total` requests; Load(port) runs until stop().
    Counts successes and failures, remembers which worker pid answered."""

    def __init__(self, port, threads=8, total=None, path="/", timeout=10.0, pause=0.0, rate=None):
        self.port, self.total, self.path, self.timeout, self.pause = port, total, path, timeout, pause
        self.rate = rate                # requests per second over all threads, None = flat out
        self.t0 = None
        self.ok = 0
        self.failed = 0
        self.errors = []
        self.pids = {}
        self.started = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self):
        self.t0 = time.monotonic()
        for th in self._threads:
            th.start()
        return self

    def _claim(self):
        with self._lock:
            if self._stop.is_set() or (self.total is not None and self.started >= self.total):
                return False
            n = self.started
            self.started += 1
        if self.rate:
            delay = self.t0 + n / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return True

    def _run(self):
        while self._claim():
            try:
                status, headers, body = http_get(self.port, self.path, self.timeout)
                if status != 200:
                    raise RuntimeError("HTTP %d: %s" % (status, body[:200]))
                pid = worker_pid_of(headers, body)
                with self._lock:
                    self.ok += 1
                    self.pids[pid] = self.pids.get(pid, 0) + 1
            except Exception as e:      # every failure counts, whatever its kind
                with self._lock:
                    self.failed += 1
                    if len(self.errors) < 20:
                        self.errors.append("%.3f %r" % (time.monotonic(), e))
            if self.pause:
                time.sleep(self.pause)

    def stop(self, timeout=30.0):
        self._stop.set()
        return self.join(timeout)

    def join(self, timeout=120.0):
        deadline = time.monotonic() + timeout
        for th in self._threads:
            th.join(max(0.0, deadline - time.monotonic()))
        check(not any(th.is_alive() for th in self._threads), "load generator did not finish")
        return self

    def summary(self):
        return "%d ok, %d failed%s" % (self.ok, self.failed,
                                       (": " + "; ".join(self.errors[:5])) if self.errors else "")

    def check_no_failures(self):
        check(self.failed == 0, "failed requests: " + self.summary())


# ---------------------------------------------------------------- memward

class Memward:
    """One memward process: stderr is read line by line (arrival time kept) and
    copied to <name>.log in the test's directory."""

    def __init__(self, ctx, args, env, cwd, name, prefix=()):
        self.ctx = ctx
        self.name = name
        # prefix: what execs memward, e.g. a shell's `cmd & exec "$0" "$@"` (the pid stays).
        self.args = list(prefix) + [MEMWARD] + list(args)
        self.log_path = os.path.join(ctx.dir, name + ".log")
        self.stdout_path = os.path.join(ctx.dir, name + ".stdout")
        self._lines = []
        self._cond = threading.Condition()
        self._eof = False
        full_env = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
                  "LISTEN_FDNAMES"):
            full_env.pop(k, None)
        full_env["PYTHONDONTWRITEBYTECODE"] = "1"   # keep __pycache__ out of the tree
        full_env.update(env or {})
        full_env[TAG_VAR] = ctx.tag
        self._stdout = open(self.stdout_path, "wb")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._stdout,
                                     stderr=subprocess.PIPE, env=full_env, cwd=cwd or ctx.dir)
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        with open(self.log_path, "wb") as log:
            for raw in self.proc.stderr:
                log.write(raw)
                log.flush()
                line = LogLine(time.monotonic(), raw.decode("utf-8", "replace").rstrip("\n"))
                with self._cond:
                    self._lines.append(line)
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    # -- logs
    def lines(self):
        with self._cond:
            return list(self._lines)

    def text(self):
        return "\n".join(line.text for line in self.lines())

    def events(self, name=None, since=None, **match):
        """Log lines with event=name (any event if None) whose fields equal **match."""
        out = []
        for line in self.lines():
            if name is not None and line.event != name:
                continue
            if since is not None and line.t < since:
                continue
            if all(line.get(k) == str(v) for k, v in match.items()):
                out.append(line)
        return out

    def wait_for(self, predicate, timeout, what):
        """Waits until predicate(lines) returns a true value; returns it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate(list(self._lines))
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    fail("timed out after %.1fs waiting for %s" % (timeout, what))
                if self._eof:
                    # memward is gone: nothing new will come
                    fail("memward exited (%s) while waiting for %s" % (self.proc.poll(), what))
                self._cond.wait(min(remaining, 0.2))

    def wait_event(self, name, count=1, timeout=15.0, since=None, **match):
        def pred(lines):
            hits = [l for l in lines if l.event == name
                    and (since is None or l.t >= since)
                    and all(l.get(k) == str(v) for k, v in match.items())]
            return hits if len(hits) >= count else None
        desc = "%d x event=%s %s" % (count, name, " ".join("%s=%s" % kv for kv in match.items()))
        return self.wait_for(pred, timeout, desc)

    def wait_text(self, pattern, timeout=15.0, since=None):
        rx = re.compile(pattern)

        def pred(lines):
            return [l for l in lines if (since is None or l.t >= since) and rx.search(l.text)]
        return self.wait_for(pred, timeout, "a log line matching %r" % pattern)

    def shutdown_seconds(self):
        """Seconds from its event=shutdown to its event=exit_supervisor, by its own time=
        (our clock around the wait for its exit also counts how late this test got to run)."""
        shutdown, done = self.events("shutdown"), self.events("exit_supervisor")
        check(shutdown and done, "no event=shutdown (%r) or event=exit_supervisor (%r) line" % (shutdown, done))
        return done[-1].at - shutdown[0].at

    def current_workers(self):
        """{slot: pid} of the newest spawn per slot whose process is still alive."""
        slots = {}
        for line in self.events("spawn"):
            slots[line.get("worker")] = int(line.get("pid"))
        return {s: p for s, p in slots.items() if alive(p)}

    # -- process
    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=15.0):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            fail("memward did not exit within %.1fs" % timeout)
        self._reader.join(5)
        return rc

    def running(self):
        return self.proc.poll() is None

    def stop(self, timeout=15.0):
        """SIGTERM, wait, return the exit code."""
        if self.running():
            self.signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self):
        if self.running():
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._reader.join(2)
        self._stdout.close()

    def stdout(self):
        self._stdout.flush()
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Context:
    def __init__(self, directory):
        self.dir = directory
        self.tag = os.environ.get(TAG_VAR) or uuid.uuid4().hex
        self.memwards = []
        self.loads = []

    def port(self):
        return free_port()

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def write_config(self, cfg, name="memward.yaml"):
        return self.write(name, cfg if isinstance(cfg, str) else yaml_dump(cfg))

    def memward(self, cfg=None, args=(), env=None, cwd=None, name=None, config_name=None, prefix=()):
        """Starts memward; cfg (dict or YAML text) is written and passed with -c."""
        name = name or "memward%d" % len(self.memwards)
        argv = []
        if cfg is not None:
            argv += ["-c", self.write_config(cfg, config_name or name + ".yaml")]
        mw = Memward(self, argv + list(args), env, cwd, name, prefix)
        self.memwards.append(mw)
        return mw

    def load(self, port, **kw):
        ld = Load(port, **kw)
        self.loads.append(ld)
        return ld.start()

    def run(self, args, timeout=10.0, env=None, cwd=None):
        """Runs memward to completion: (exit code, stdout, stderr, seconds)."""
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env[TAG_VAR] = self.tag
        t0 = time.monotonic()
        try:
            p = subprocess.run([MEMWARD] + list(args), stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=timeout, env=full_env,
                               cwd=cwd or self.dir)
        except subprocess.TimeoutExpired as e:
            fail("memward %s did not exit within %.1fs; stderr:\n%s" % (
                " ".join(args), timeout, (e.stderr or b"").decode("utf-8", "replace")[-3000:]))
        return (p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace"), time.monotonic() - t0)

    def start_fails(self, label, cfg, event, path):
        """Runs memward with cfg (written as <label>.yaml), which must fail at start-up:
        exit code 1 within 5 s, before any worker is spawned, with one `event` line that
        names path=. Returns that line's fields."""
        rc, out, err, secs = self.run(["-c", self.write_config(cfg, label + ".yaml")], timeout=15)
        check(rc == 1, "%s: exit %d, want 1; stderr:\n%s" % (label, rc, err[-2000:]))
        check(secs < 5, "%s: took %.1fs to fail" % (label, secs))
        lines = [parse_logfmt(l) for l in err.splitlines()]
        failed = [l for l in lines if l.get("event") == event]
        check(len(failed) == 1, "%s: want one %s line:\n%s" % (label, event, err))
        f = failed[0]
        check(f.get("path") == path, "%s: %s names path=%r, want %r:\n%s" % (label, event, f.get("path"), path, err))
        check(not any(l.get("event") == "spawn" for l in lines), "%s: workers were spawned:\n%s" % (label, err))
        print("%s: exit %d in %.2fs, %s path=%s" % (label, rc, secs, event, path))
        f["stderr"] = err
        return f

    def leftovers(self):
        return pids_with_env(TAG_VAR, self.tag)

    def cleanup(self):
        for ld in self.loads:
            ld._stop.set()
        for mw in self.memwards:
            mw.kill()
        for _ in range(3):
            pids = self.leftovers()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)


def _interrupted(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(test):
    """Runs test(ctx) and exits 0 (pass), 1 (fail) or 77 (skip). SIGTERM and SIGHUP
    interrupt it as SIGINT does: the cleanup still stops everything it started."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupted)
    code = EXIT_FAIL
    with tempfile.TemporaryDirectory(prefix="memward-it-") as directory:
        ctx = Context(directory)
        try:
            if not os.access(MEMWARD, os.X_OK):
                fail("no memward binary at %s (run make, or set MEMWARD)" % MEMWARD)
            test(ctx)
            code = EXIT_PASS
        except Skip as e:
            print("SKIP: %s" % e)
            code = EXIT_SKIP
        except Exception:
            traceback.print_exc(file=sys.stdout)
            for mw in ctx.memwards:
                lines = mw.lines()
                print("---- %s (%s), exit %s, last %d of %d log lines:" % (
                    mw.name, " ".join(mw.args), mw.proc.poll(), min(80, len(lines)), len(lines)))
                for line in lines[-80:]:
                    print("  " + line.text)
            code = EXIT_FAIL
        finally:
            ctx.cleanup()
    sys.stdout.flush()
    sys.exit(code)
