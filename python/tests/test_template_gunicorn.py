"""memward-gunicorn end to end, without memward: the test plays memward (fakememward).

Starts the real template (python/bin/memward-gunicorn, Debian's gunicorn 20.1) with a
listening socket at fd 3 and the control channel at fd 4, asks it for workers and
checks each worker as memward would see it.
"""

import errno
import os
import signal
import socket
import tempfile
import time
import unittest

from tests.fakememward import (python_default_ignored, APPS, BIN_GUNICORN, PYTHON, TIMEOUT, FakeMemward, NotifySocket,
                               become_subreaper, http_get, python_has, is_our_child, proc_status,
                               signal_bits, wait_accepted, wait_pid, http_on)
from memward import protocol

def setUpModule():
    become_subreaper()


def fd_links(pid):
    """{fd: readlink} of a process's open fds."""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            pass
    return out


class TemplateCase(unittest.TestCase):
    """Starts templates and a notify socket; cleans everything up."""

    argv = [BIN_GUNICORN, "-c", "gunicorn.conf.py", "wsgi_app:app"]
    abstract_notify = True

    def setUp(self):
        if not python_has("gunicorn"):
            self.skipTest("%s cannot import gunicorn (apt-get install gunicorn)" % PYTHON)
        tmp = tempfile.TemporaryDirectory(prefix="memward-py-test-")
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        self.hooks = os.path.join(self.tmp, "hooks.log")
        self.notify = NotifySocket(self.abstract_notify, self.tmp)
        self.addCleanup(self.notify.close)

    def start(self, *extra, argv=None, env=None, ready=True):
        env = dict(env or {})
        env.setdefault("TEST_HOOK_LOG", self.hooks)
        if argv is None:
            argv = self.argv[:-1] + list(extra) + self.argv[-1:]
        mw = FakeMemward(argv, env=env)
        self.addCleanup(mw.cleanup)
        mw.start()
        if ready:
            mw.wait_ready()
        return mw

    def spawn(self, mw, slot=0, generation=1, **env):
        env.setdefault("NOTIFY_SOCKET", self.notify.name)
        answer = mw.spawn(slot, generation, env=env)
        self.assertIsInstance(answer, protocol.Spawned, mw.log())
        self.assertEqual((answer.slot, answer.generation), (slot, generation))
        return answer.pid

    def hook_lines(self):
        try:
            with open(self.hooks) as f:
                return [tuple(line.split()) for line in f]
        except FileNotFoundError:
            return []

    def assert_exits(self, mw, code):
        self.assertEqual(mw.wait_exit(), code, mw.log())


def assert_watchdog_paced(test, mw):
    """With workers.watchdog: 1s the worker pings every quarter second (the reporter's
    pace); gthread and UvicornWorker pinged once a second, and memward recycled them
    right after READY. The margin is for a busy 2-core machine: every gap under 0.75 s,
    where a worker that pings once a second shows gaps of 1 s."""
    pid = test.spawn(mw, WATCHDOG_USEC="1000000")
    test.notify.wait_for(pid, "READY=1")
    gaps = test.notify.gaps(pid, "WATCHDOG=1", 3.5)
    test.assertGreaterEqual(len(gaps), 2, gaps)
    test.assertLess(max(gaps), 0.75, gaps)
    return gaps


def assert_stops_at_memwards_limit(test, mw, limit=3):
    """MEMWARD_MAX_REQUESTS=3 and gunicorn's own --max-requests 100 with jitter: the
    worker serves exactly memward's 3 and exits 0 by itself, its 3rd X_REQUESTS sent
    before it exits (memward judges the exit by that count)."""
    pid = test.spawn(mw, MEMWARD_MAX_REQUESTS=str(limit))
    test.notify.wait_for(pid, "READY=1")
    for n in range(1, limit + 1):
        test.assertEqual(wait_pid(pid, 0), None, "exited after %d requests" % (n - 1))
        test.assertEqual(http_get(mw.port)[1]["pid"], pid)
        test.notify.wait_for(pid, "X_REQUESTS=%d" % n)
    test.assertEqual(wait_pid(pid, TIMEOUT), 0, mw.log())
    mw.workers.remove(pid)


class SyncWorkerTest(TemplateCase):
    """The whole contract on gunicorn's default worker class."""

    def test_worker_is_memwards_child_reset_and_serving(self):
        mw = self.start()
        pid = self.spawn(mw, slot=3, generation=7, MEMWARD_WORKER_ID="3",
                         MEMWARD_WORKER_GENERATION="7", TEST_VALUE="a=b c")

        # Section 3: re-parented to us (the subreaper), in its own session and group.
        self.assertTrue(is_our_child(pid))
        self.assertEqual(int(proc_status(pid)["PPid"]), os.getpid())
        self.assertEqual(os.getpgid(pid), pid)
        self.assertEqual(os.getsid(pid), pid)

        self.notify.wait_for(pid, "READY=1")

        # Signals: the app ignored SIGHUP and blocked SIGUSR2 in the template; the worker
        # has an empty mask and ignores only what Python itself ignores at start-up.
        template_status = proc_status(mw.pid)
        self.assertTrue(int(template_status["SigIgn"], 16) & signal_bits(signal.SIGHUP))
        self.assertTrue(int(template_status["SigBlk"], 16) & signal_bits(signal.SIGUSR2))
        status = proc_status(pid)
        self.assertEqual(int(status["SigBlk"], 16), 0)
        self.assertEqual(int(status["SigIgn"], 16),
                         python_default_ignored())

        # fds: the listening socket still at fd 3, no control channel.
        worker_fds, template_fds = fd_links(pid), fd_links(mw.pid)
        self.assertEqual(worker_fds[3], template_fds[3])
        self.assertNotIn(template_fds[4], worker_fds.values())

        # One request, served by it, with the environment of section 3 step 4.
        code, body = http_get(mw.port)
        self.assertEqual(code, 200)
        self.assertEqual(body["pid"], pid)
        env = body["env"]
        self.assertEqual(env["LISTEN_PID"], str(pid))
        self.assertEqual(env["LISTEN_FDS"], "1")
        self.assertEqual(env["NOTIFY_SOCKET"], self.notify.name)
        self.assertEqual(env["MEMWARD_WORKER_ID"], "3")
        self.assertEqual(env["MEMWARD_WORKER_GENERATION"], "7")
        self.assertEqual(env["TEST_VALUE"], "a=b c")
        self.assertIsNone(env["MEMWARD_CONTROL_FD"])
        self.assertIsNone(env["WATCHDOG_PID"])
        self.assertEqual(body["post_fork"], {"pid": pid, "ppid": os.getpid(),
                                             "worker_ppid": os.getpid(),
                                             "LISTEN_PID": str(pid), "LISTEN_FDS": "1"})
        self.assertTrue(body["gc_enabled"])
        self.assertGreater(body["frozen"], 0)
        self.assertEqual(self.notify.wait_for(pid, "X_REQUESTS=1"), "X_REQUESTS=1\nX_INFLIGHT=0")
        http_get(mw.port)
        self.notify.wait_for(pid, "X_REQUESTS=2")

        # A graceful stop, then memward goes away: both exit 0.
        self.assertEqual(mw.stop_worker(pid), 0)
        self.notify.wait_for(pid, "STOPPING=1")
        mw.close_control()
        self.assert_exits(mw, 0)

        hooks = self.hook_lines()
        t, w = str(mw.pid), str(pid)
        self.assertEqual(hooks, [("on_starting", t), ("when_ready", t), ("pre_fork", t),
                                 ("post_fork", w), ("post_worker_init", w),
                                 ("pre_request", w), ("post_request", w),
                                 ("pre_request", w), ("post_request", w),
                                 ("worker_exit", w), ("on_exit", t)])

    def test_workers_outlive_the_parent_check_and_the_template(self):
        # --timeout 2: gunicorn's sync worker compares its ppid with getppid() every
        # second; its ppid is memward's pid, so it keeps serving.
        mw = self.start("--timeout", "2")
        pids = [self.spawn(mw, slot) for slot in range(2)]
        for pid in pids:
            self.notify.wait_for(pid, "READY=1")
        time.sleep(3)
        served = {http_get(mw.port)[1]["pid"] for _ in range(6)}
        self.assertLessEqual(served, set(pids))
        os.killpg(mw.pid, signal.SIGKILL)       # a worker never depends on its template
        self.assertEqual(mw.wait_exit(), -signal.SIGKILL)
        for pid in pids:
            self.assertTrue(is_our_child(pid))
        self.assertIn(http_get(mw.port)[1]["pid"], pids)

    def test_stops_itself_at_memwards_request_limit(self):
        assert_stops_at_memwards_limit(self, self.start("--max-requests", "100",
                                                        "--max-requests-jitter", "50"))

    def test_watchdog(self):
        mw = self.start()
        pid = self.spawn(mw, WATCHDOG_USEC="400000")
        self.notify.wait_for(pid, "READY=1")
        self.notify.wait_for(pid, "WATCHDOG=1", timeout=10)
        self.assertEqual(http_get(mw.port)[1]["env"]["WATCHDOG_PID"], str(pid))

    def test_sigterm_stops_the_template(self):
        mw = self.start()
        os.kill(mw.pid, signal.SIGTERM)
        self.assert_exits(mw, 0)
        self.assertIn("stopping on SIGTERM", mw.log())
        self.assertEqual(self.hook_lines()[-1], ("on_exit", str(mw.pid)))

    def test_sigterm_or_sigint_while_the_app_loads(self):
        # docs/fork-server.md section 4: exit 0 on SIGTERM or SIGINT, also while the
        # app is still importing (its handlers were installed only after the import:
        # SIGTERM killed it, SIGINT raised KeyboardInterrupt). slow_app's import takes
        # 30 s; the template exits without waiting for the rest of it.
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(sig=sig.name):
                mw = self.start(argv=[BIN_GUNICORN, "-c", "gunicorn.conf.py", "slow_app:app"],
                                ready=False)
                deadline = time.monotonic() + TIMEOUT
                while "slow_app loading" not in mw.log() and time.monotonic() < deadline:
                    time.sleep(0.02)
                os.kill(mw.pid, sig)
                self.assertEqual(mw.wait_exit(timeout=20), 0, mw.log())
                self.assertIn("stopping on %s while the app was loading" % sig.name, mw.log())
                self.assertIsNone(mw.receive())         # no READY: the channel closed

    def test_a_worker_that_fails_after_booting_exits_255(self):
        # As gunicorn's Arbiter.spawn_worker(): sys.exit(-1) (it was 1 here).
        mw = self.start(argv=[BIN_GUNICORN, "-c", "fails_after_boot.conf.py", "wsgi_app:app"])
        pid = self.spawn(mw)
        code = wait_pid(pid, TIMEOUT)
        if code is not None:
            mw.workers.remove(pid)              # reaped
        self.assertEqual(code, 255, mw.log())
        self.assertIn("the worker's loop failed", mw.log())

    def test_refuses_to_fork_while_a_python_thread_runs(self):
        mw = self.start(env={"TEST_START_THREAD": "1"})
        self.assertIn("test-background-thread", mw.log())     # said at READY
        answer = mw.spawn(0, 1, env={"NOTIFY_SOCKET": self.notify.name})
        self.assertIsInstance(answer, protocol.SpawnFailed)
        self.assertEqual(answer.errno, errno.EDEADLK)
        self.assertIn("test-background-thread", answer.message)
        self.assertEqual((answer.slot, answer.generation), (0, 1))
        # The template stays up; once the thread has stopped, spawns work again.
        os.kill(mw.pid, signal.SIGALRM)
        deadline = time.monotonic() + TIMEOUT
        generation = 1
        while isinstance(answer, protocol.SpawnFailed) and time.monotonic() < deadline:
            time.sleep(0.05)
            generation += 1
            answer = mw.spawn(0, generation, env={"NOTIFY_SOCKET": self.notify.name})
        self.assertIsInstance(answer, protocol.Spawned, mw.log())
        self.notify.wait_for(answer.pid, "READY=1")

    def test_a_leaf_that_cannot_be_joined(self):
        mw = self.start()
        not_a_cgroup = os.open(self.tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.addCleanup(os.close, not_a_cgroup)
        answer = mw.spawn(0, 1, env={"NOTIFY_SOCKET": self.notify.name}, leaf_fd=not_a_cgroup)
        self.assertIsInstance(answer, protocol.SpawnFailed)
        self.assertEqual(answer.errno, errno.ENOENT)
        self.assertIn("cgroup", answer.message)
        pid = self.spawn(mw, 0, 2)              # the template keeps serving
        self.notify.wait_for(pid, "READY=1")

    def test_a_pre_fork_error_with_a_negative_errno(self):
        # gaierror(-2) from the pre_fork hook: SPAWN_FAILED with ECANCELED, as for any
        # errno that cannot go out as ERRNO=; the template keeps serving.
        mw = self.start(argv=[BIN_GUNICORN, "-c", "gaierror.conf.py", "wsgi_app:app"])
        for generation in (1, 2):
            answer = mw.spawn(0, generation, env={"NOTIFY_SOCKET": self.notify.name})
            self.assertIsInstance(answer, protocol.SpawnFailed, mw.log())
            self.assertEqual(answer.errno, errno.ECANCELED)
            self.assertIn("gaierror", answer.message)
        mw.close_control()
        self.assert_exits(mw, 0)

    def test_an_app_that_ignores_sigchld(self):
        # SIGCHLD at SIG_IGN (set at import, as an app that wants no zombies does) made
        # the template's waitpid() for the intermediate fail with ECHILD: the template
        # crashed on its first SPAWN.
        mw = self.start(argv=[BIN_GUNICORN, "-c", "gunicorn.conf.py",
                              "sigchld_ignored_app:app"])
        for generation in (1, 2):
            pid = self.spawn(mw, 0, generation)
            self.notify.wait_for(pid, "READY=1")
            self.assertEqual(int(proc_status(pid)["SigIgn"], 16),
                             python_default_ignored())
        # The app's disposition is the template's again after each spawn.
        self.assertTrue(int(proc_status(mw.pid)["SigIgn"], 16) & signal_bits(signal.SIGCHLD))

    def test_joins_the_cgroup_leaf(self):
        leaf = make_cgroup_leaf(self)
        mw = self.start()
        leaf_fd = os.open(leaf.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.addCleanup(os.close, leaf_fd)
        answer = mw.spawn(0, 1, env={"NOTIFY_SOCKET": self.notify.name}, leaf_fd=leaf_fd)
        self.assertIsInstance(answer, protocol.Spawned, mw.log())
        self.assertEqual(cgroup2_of(answer.pid), leaf.name)
        self.assertNotEqual(cgroup2_of(mw.pid), leaf.name)
        self.notify.wait_for(answer.pid, "READY=1")
        self.assertEqual(mw.stop_worker(answer.pid), 0)


class MalformedTest(TemplateCase):
    """Section 4: a malformed message from memward makes the template log it and exit
    EX_PROTOCOL (76)."""

    CASES = {
        "SLOT out of range": (b"SPAWN\nSLOT=99999\nGENERATION=1\nCGROUP=0\n", "SLOT"),
        "unknown type": (b"HELLO\n", "unknown message type"),
        "a type memward does not send": (b"READY\nPROTOCOL=1\n", "READY sent to the template"),
        "longer than 64 KiB": (b"SPAWN\nX=" + b"y" * 70000 + b"\n", "longer than"),
        "an empty packet": (b"", "empty message"),
    }

    def test_each_case(self):
        for name, (data, said) in self.CASES.items():
            with self.subTest(name):
                mw = self.start()
                mw.send_raw(data)
                self.assertIsNone(mw.receive())         # no answer: the channel closes
                self.assert_exits(mw, 76)
                self.assertIn("malformed message from memward", mw.log())
                self.assertIn(said, mw.log())

    def test_cgroup_without_its_fd_is_answered(self):
        # Section 2: not malformed; SPAWN_FAILED with EBADF, and the template serves on.
        mw = self.start()
        mw.send_raw(b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=1\n")
        answer = mw.receive()
        self.assertIsInstance(answer, protocol.SpawnFailed)
        self.assertEqual(answer.errno, errno.EBADF)
        pid = self.spawn(mw, 0, 2)
        self.notify.wait_for(pid, "READY=1")

    def test_not_started_by_memward(self):
        import subprocess
        done = subprocess.run([PYTHON, BIN_GUNICORN, "wsgi_app:app"], cwd=APPS,
                              env={k: v for k, v in os.environ.items()
                                   if k != "MEMWARD_CONTROL_FD"},
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=TIMEOUT)
        self.assertEqual(done.returncode, 2)
        self.assertIn("MEMWARD_CONTROL_FD is not set", done.stderr)


class GthreadWorkerTest(TemplateCase):
    # `--bind fd://3` names the fd LISTEN_FDS also names: gunicorn 20.1 on its own dies of
    # EBADF there. `-w 3` is ignored (memward counts workers).
    argv = [BIN_GUNICORN, "-c", "gunicorn.conf.py", "-k", "gthread", "--threads", "4",
            "--bind", "fd://3", "-w", "3", "wsgi_app:app"]
    abstract_notify = False

    def test_serves_and_reports(self):
        mw = self.start()
        self.assertIn("Using worker: gthread", mw.log())
        self.assertIn("workers=3 ignored", mw.log())
        pid = self.spawn(mw)
        self.notify.wait_for(pid, "READY=1")
        for n in range(1, 4):
            self.assertEqual(http_get(mw.port)[1]["pid"], pid)
            self.notify.wait_for(pid, "X_REQUESTS=%d" % n)
        status = proc_status(pid)
        self.assertEqual(int(status["SigBlk"], 16), 0)
        self.assertGreater(int(status["Threads"]), 1)       # gthread's pool, after the fork
        self.assertEqual(mw.stop_worker(pid), 0)

    def test_watchdog_of_one_second(self):
        assert_watchdog_paced(self, self.start())


def assert_fresh_connection_answered(test, mw):
    """uvicorn 0.17.6 closes, at shutdown, every connection that has not sent its
    request yet, one accepted a moment before the SIGTERM too: under memward's recycles
    that client got an empty reply. A connection the worker accepted, then SIGTERM, then
    the request: the stopping worker answers it."""
    pid = test.spawn(mw)
    test.notify.wait_for(pid, "READY=1")
    with socket.create_connection(("127.0.0.1", mw.port), timeout=TIMEOUT) as sock:
        wait_accepted(sock)
        os.killpg(pid, signal.SIGTERM)
        test.notify.wait_for(pid, "STOPPING=1", timeout=5)
        time.sleep(0.2)                 # uvicorn's shutdown runs meanwhile
        reply = http_on(sock)
    test.assertTrue(reply.startswith(b"HTTP/1.1 200"), reply[:200])
    test.assertIn(b'"pid": %d' % pid, reply)
    test.assertEqual(mw.stop_worker(pid), 0)         # stopping already: reaps it


class UvicornWorkerTest(TemplateCase):
    argv = [BIN_GUNICORN, "-c", "gunicorn.conf.py", "-k", "uvicorn.workers.UvicornWorker",
            "asgi_app:app"]

    def setUp(self):
        super().setUp()
        if not python_has("uvicorn.workers"):
            self.skipTest("%s cannot import uvicorn (apt-get install python3-uvicorn)" % PYTHON)

    def test_serves_and_reports(self):
        mw = self.start()
        pid = self.spawn(mw)
        self.notify.wait_for(pid, "READY=1")
        code, body = http_get(mw.port)
        self.assertEqual(body["pid"], pid)
        self.assertEqual(body["started_in"], pid)           # lifespan ran in the worker
        self.assertEqual(body["env"]["LISTEN_PID"], str(pid))
        self.notify.wait_for(pid, "X_REQUESTS=1")
        self.assertEqual(int(proc_status(pid)["SigBlk"], 16), 0)
        self.assertEqual(mw.stop_worker(pid), 0)
        self.notify.wait_for(pid, "STOPPING=1")

    def test_watchdog_of_one_second(self):
        assert_watchdog_paced(self, self.start())

    def test_stops_itself_at_memwards_request_limit(self):
        assert_stops_at_memwards_limit(self, self.start("--max-requests", "100"))

    def test_an_asgi2_app(self):
        # The request counter wrapped the app before uvicorn detected its interface:
        # an ASGI 2 app was called as ASGI 3 and every request answered 500.
        mw = self.start(argv=self.argv[:-1] + ["asgi2_app:app"])
        pid = self.spawn(mw)
        self.notify.wait_for(pid, "READY=1")
        self.assertEqual(http_get(mw.port), (200, {"raw": b"asgi2"}), mw.log()[-1500:])
        self.notify.wait_for(pid, "X_REQUESTS=1")

    def test_a_connection_accepted_before_the_stop_is_answered(self):
        # memward-asgi's graceful-shutdown fix, here too.
        assert_fresh_connection_answered(self, self.start())

    def test_stopping_without_lifespan(self):
        # uvicorn's own SIGTERM handler replaces the worker's: STOPPING=1 came only
        # from the lifespan shutdown, which an app without lifespan never gets.
        mw = self.start(argv=self.argv[:-1] + ["asgi_nolifespan_app:app"])
        pid = self.spawn(mw)
        self.notify.wait_for(pid, "READY=1")
        self.assertEqual(mw.stop_worker(pid), 0)
        self.notify.wait_for(pid, "STOPPING=1", timeout=5)


# ------------------------------------------------------------------ cgroup v2 leaf

class Leaf:
    def __init__(self, path, name):
        self.path, self.name = path, name


def cgroup2_of(pid):
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


def make_cgroup_leaf(test):
    """A new leaf under our own cgroup v2 directory, or skips the test."""
    mount = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[:1] == ["cgroup2"]:
                mount = left.split()[4]
                break
    ours = cgroup2_of(os.getpid())
    if mount is None or ours is None:
        test.skipTest("no cgroup v2 hierarchy mounted")
    name = os.path.join(ours, "memward-py-test-%d-%s" % (os.getpid(), os.urandom(3).hex()))
    path = mount + name
    try:
        os.mkdir(path)
    except OSError as e:
        test.skipTest("cannot create a cgroup v2 leaf %s: %s" % (path, e.strerror))

    def remove():
        for _ in range(100):
            try:
                os.rmdir(path)
                return
            except OSError as e:
                if e.errno != errno.EBUSY:
                    return
                time.sleep(0.05)        # a killed process leaves its cgroup on reaping
    test.addCleanup(remove)
    return Leaf(path, name)


if __name__ == "__main__":
    unittest.main()
