"""The template's side of the control channel, in this process (no fork): what it
takes from its environment, how it reads memward's messages, how it answers a spawn
that fails; and the worker's reset, in forked children of another interpreter."""

import array
import contextlib
import errno
import fcntl
import io
import os
import socket
import subprocess
import textwrap
import unittest
from unittest import mock

from memward import protocol, template
from tests.fakememward import PYTHON, PYTHON_DIR, TIMEOUT, FakeMemward


class NoAdapter(template.Adapter):
    def run_worker(self, context, spawn, ppid):
        raise AssertionError("no worker in these tests")


def open_fds():
    return set(os.listdir("/proc/self/fd"))


class ChannelTest(unittest.TestCase):
    """Template._receive / _receive_and_spawn on a real socketpair."""

    def setUp(self):
        self.memward, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(self.memward.close)
        self.template = template.Template(NoAdapter(), gc_freeze=False)
        self.template.control = theirs
        self.addCleanup(theirs.close)

    def send(self, data, fds=()):
        ancdata = ([(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
                   if fds else [])
        self.memward.sendmsg([data], ancdata)

    def assert_malformed(self, text):
        with self.assertRaises(protocol.ProtocolError) as caught:
            self.template._receive_and_spawn()
        self.assertIn(text, str(caught.exception))

    def test_eof(self):
        self.memward.close()
        self.assertIsNone(self.template._receive())

    def test_an_empty_packet_is_not_eof(self):
        self.send(b"")
        self.assert_malformed("empty message")

    def test_a_packet_too_long(self):
        self.send(b"SPAWN\nX=" + b"y" * protocol.MAX_MESSAGE + b"\n")
        self.assert_malformed("longer than 65536")

    def test_a_message_of_the_wrong_type(self):
        self.send(protocol.format_message(protocol.Ready()))
        self.assert_malformed("READY sent to the template")

    def answer(self):
        return protocol.parse_message(self.memward.recv(protocol.MAX_MESSAGE))

    def test_cgroup_without_its_fd(self):
        self.send(protocol.format_message(protocol.Spawn(2, 5, True)))
        with contextlib.redirect_stderr(io.StringIO()):
            self.assertTrue(self.template._receive_and_spawn())
        answer = self.answer()
        self.assertEqual((answer.slot, answer.generation, answer.errno), (2, 5, errno.EBADF))
        self.assertIn("CGROUP=1 carries 0 fds", answer.message)

    def test_an_fd_without_cgroup_is_closed(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        before = open_fds()
        self.send(protocol.format_message(protocol.Spawn(0, 1, False)), [r])
        with contextlib.redirect_stderr(io.StringIO()):
            self.assertTrue(self.template._receive_and_spawn())
        self.assertEqual(self.answer().errno, errno.EBADF)
        self.assertEqual(open_fds(), before)

    def test_two_fds_for_one_leaf_are_closed(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        before = open_fds()
        self.send(protocol.format_message(protocol.Spawn(0, 1, True)), [r, w])
        with contextlib.redirect_stderr(io.StringIO()):
            self.assertTrue(self.template._receive_and_spawn())
        answer = self.answer()
        self.assertEqual(answer.errno, errno.EBADF)
        self.assertIn("CGROUP=1 carries 2 fds", answer.message)
        self.assertEqual(open_fds(), before)

    def test_no_second_pipe_leaks_the_first(self):
        """PLACE=1 needs two pipes: when the second cannot be had (EMFILE), the spawn
        fails with that errno and the first pipe is closed, spawn after spawn."""
        real_pipe = os.pipe
        calls = []

        def pipe():
            calls.append(1)
            if len(calls) % 2 == 0:
                raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
            return real_pipe()

        before = open_fds()
        with mock.patch("os.pipe", pipe), contextlib.redirect_stderr(io.StringIO()):
            for generation in (1, 2, 3):
                self.send(protocol.format_message(protocol.Spawn(0, generation, False, place=True)))
                self.assertTrue(self.template._receive_and_spawn())
                answer = self.answer()
                self.assertIsInstance(answer, protocol.SpawnFailed)
                self.assertEqual((answer.generation, answer.errno), (generation, errno.EMFILE))
        self.assertEqual(len(calls), 6)
        self.assertEqual(open_fds(), before)

    def go_after(self, answer):
        """What the worker of a spawn the template answered with `answer` reads on its go
        pipe (docs/fork-server.md §3 step 4.7): the read end stands for that worker,
        forked and waiting; the template holds the write end, as _fork_intermediate
        leaves it."""
        go_r, go_w = os.pipe()
        self.addCleanup(os.close, go_r)

        def spawn(message, leaf_fd):
            self.template._go = (-1, go_w)
            return answer

        self.send(protocol.format_message(protocol.Spawn(answer.slot, answer.generation, False)))
        with mock.patch.object(self.template, "_spawn", side_effect=spawn):
            self.assertTrue(self.template._receive_and_spawn())
        self.assertEqual(type(self.answer()), type(answer))
        self.assertEqual(self.template._go, (-1, -1))
        return os.read(go_r, 2)

    def test_only_the_worker_of_a_spawned_serves(self):
        # The intermediate killed between its fork and its report: SPAWN_FAILED goes out
        # and memward adopts nothing, so the worker must get EOF, not the go byte (it
        # would serve until killed as an orphan, resetting what it had taken).
        self.assertEqual(self.go_after(protocol.Spawned(0, 1, 4242)), b"g")
        self.assertEqual(self.go_after(protocol.SpawnFailed(0, 2, errno.ECHILD, "killed")), b"")

    def test_more_fds_than_fit_are_closed(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        before = open_fds()
        self.send(protocol.format_message(protocol.Spawn(0, 1, True)), [r] * 40)
        with contextlib.redirect_stderr(io.StringIO()):
            self.assertTrue(self.template._receive_and_spawn())
        self.assertIn("more than", self.answer().message)
        self.assertEqual(open_fds(), before)

    def test_fds_on_another_type_are_closed(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        before = open_fds()
        self.send(protocol.format_message(protocol.Ready()), [r])
        self.assert_malformed("file descriptors attached to READY")
        self.assertEqual(open_fds(), before)

    def test_fds_of_a_malformed_message_are_closed(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        before = open_fds()
        self.send(b"SPAWN\nSLOT=5000\nGENERATION=1\nCGROUP=1\n", [r])
        self.assert_malformed("SLOT=5000")
        self.assertEqual(open_fds(), before)

    def test_received_fds_are_close_on_exec(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        self.send(protocol.format_message(protocol.Spawn(0, 1, True)), [r])
        message, fds, more = self.template._receive()
        self.addCleanup(os.close, fds[0])
        self.assertEqual(message, protocol.Spawn(0, 1, True))
        self.assertFalse(os.get_inheritable(fds[0]))


class SpawnFaultTest(unittest.TestCase):
    """Template._spawn answers SPAWN_FAILED for whatever goes wrong, and the answer
    can always be sent."""

    def setUp(self):
        self.template = template.Template(NoAdapter(), gc_freeze=False)
        patcher = mock.patch.object(template, "python_threads", return_value=[])
        patcher.start()
        self.addCleanup(patcher.stop)

    def spawn(self):
        with contextlib.redirect_stderr(io.StringIO()) as stderr:
            answer = self.template._spawn(protocol.Spawn(2, 5, False), None)
        self.assertIsInstance(answer, protocol.SpawnFailed)
        self.assertEqual((answer.slot, answer.generation), (2, 5))
        protocol.format_message(answer)         # sendable
        return answer, stderr.getvalue()

    def refuse_with(self, exception):
        adapter = self.template.adapter
        with mock.patch.object(adapter, "pre_fork", side_effect=exception, create=True):
            return self.spawn()

    def test_pre_fork_errnos_that_cannot_be_sent(self):
        # socket.gaierror's errno is an EAI_* code, negative: it made format_message()
        # raise ValueError and the template die.
        answer, log = self.refuse_with(socket.gaierror(socket.EAI_NONAME, "Name unknown"))
        self.assertEqual(answer.errno, errno.ECANCELED)
        self.assertIn("pre_fork: gaierror", answer.message)
        for err in (-2, 0, 4096, None, "5", True):
            with self.subTest(err=err):
                answer, _ = self.refuse_with(template.SpawnRefused(err, "no"))
                self.assertEqual(answer.errno, errno.ECANCELED)
                error = OSError("odd")
                error.errno = err
                answer, _ = self.refuse_with(error)
                self.assertEqual(answer.errno, errno.ECANCELED)

    def test_pre_fork_errnos_that_are_kept(self):
        answer, _ = self.refuse_with(template.SpawnRefused(errno.EAGAIN, "later"))
        self.assertEqual((answer.errno, answer.message), (errno.EAGAIN, "later"))
        answer, _ = self.refuse_with(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
        self.assertEqual(answer.errno, errno.ECONNREFUSED)
        answer, _ = self.refuse_with(ValueError("no errno"))
        self.assertEqual(answer.errno, errno.ECANCELED)

    def test_an_unexpected_error_in_the_fork_path(self):
        with mock.patch.object(self.template, "_double_fork",
                               side_effect=RuntimeError("surprise")):
            answer, log = self.spawn()
        self.assertEqual(answer.errno, errno.EIO)
        self.assertIn("RuntimeError: surprise", answer.message)
        self.assertIn("Traceback", log)


class WorkerResetTest(unittest.TestCase):
    """Template._become_worker in forked children of a separate interpreter (Debian's
    python3, with libuuid behind uuid1()), whose template state the test sets up."""

    SCRIPT = textwrap.dedent('''
        import os, sys, uuid
        sys.path.insert(0, sys.argv[1])
        from memward import protocol, template
        uuid.uuid1()        # the template uses uuid1() once, at import say

        class Worker(template.Adapter):
            def run_worker(self, context, spawn, ppid):
                print(" ".join(str(uuid.uuid1().clock_seq) for _ in range(4)), flush=True)
                return 0

        t = template.Template(Worker(), gc_freeze=False)
        # This process forks the workers and plays memward, unless argv[2] names
        # another pid as memward's (one that is gone, as far as the workers can tell).
        t.supervisor = int(sys.argv[2]) if sys.argv[2:3] not in ([], ["self"]) else os.getpid()
        # The go pipe: one byte per worker, as the template writes once each SPAWNED went
        # out; with argv[3] "given-up" none (the spawns memward gave up on: EOF).
        go_r, go_w = os.pipe()
        if sys.argv[3:] != ["given-up"]:
            os.write(go_w, b"gg")
        os.close(go_w)
        t._go = (go_r, -1)
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                t._become_worker(protocol.Spawn(0, 1, False), None, None, -1, -1,
                                 os.open(os.devnull, os.O_WRONLY))
            os.waitpid(pid, 0)
        ''')

    def test_workers_do_not_share_uuid1_clock_state(self):
        # libuuid's clock sequence, set in the template, went on in every worker: two
        # workers' uuid1() at the same instant were the same UUID. Python's uuid1()
        # draws a clock sequence per call from the reseeded random: 8 equal draws
        # would be a 2**-98 chance.
        done = subprocess.run([PYTHON, "-c", self.SCRIPT, PYTHON_DIR], capture_output=True,
                              text=True, timeout=TIMEOUT)
        workers = [line.split() for line in done.stdout.splitlines()]
        self.assertEqual(len(workers), 2, done.stderr)
        self.assertGreater(len(set(workers[0] + workers[1])), 1, workers)

    def test_a_worker_whose_parent_is_not_memward_exits(self):
        # memward died before the worker was re-parented to it: the parent-death signal
        # would be tied to someone else, and the worker would serve unsupervised.
        done = subprocess.run([PYTHON, "-c", self.SCRIPT, PYTHON_DIR, "1"], capture_output=True,
                              text=True, timeout=TIMEOUT)
        self.assertEqual(done.stdout, "", "a worker ran")
        self.assertEqual(done.stderr.count("memward (pid 1) is gone before the worker became "
                                           "its child"), 2, done.stderr)


    def test_a_worker_of_a_spawn_given_up_on_exits_unserved(self):
        # A reload retired the template while it forked: memward gave the spawn up, the
        # SPAWNED never went out, the go pipe ends without a byte. The worker must exit
        # before it serves (it accepted a connection and memward, killing it as an orphan,
        # reset it: a failed request in test_template_python).
        done = subprocess.run([PYTHON, "-c", self.SCRIPT, PYTHON_DIR, "self", "given-up"],
                              capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(done.stdout, "", "a worker ran")
        self.assertEqual(done.stderr, "")


class StartUpTest(unittest.TestCase):
    def test_not_run_by_memward(self):
        with mock.patch.dict(os.environ, clear=False):
            os.environ.pop("MEMWARD_CONTROL_FD", None)
            t = template.Template(NoAdapter(), gc_freeze=False)
            with mock.patch("sys.stderr") as stderr:
                self.assertEqual(t.run(), template.EXIT_USAGE)
            self.assertIn("MEMWARD_CONTROL_FD is not set",
                          "".join(c.args[0] for c in stderr.write.call_args_list))

    def test_another_protocol_version(self):
        with mock.patch.dict(os.environ, {"MEMWARD_PROTOCOL": "2"}):
            t = template.Template(NoAdapter(), gc_freeze=False)
            with contextlib.redirect_stderr(io.StringIO()) as stderr:
                self.assertEqual(t.run(), template.EXIT_USAGE)
        self.assertIn("MEMWARD_PROTOCOL=2", stderr.getvalue())

    def test_control_fd_must_be_seqpacket(self):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        with mock.patch.dict(os.environ, {"MEMWARD_CONTROL_FD": str(b.fileno())}):
            t = template.Template(NoAdapter(), gc_freeze=False)
            with self.assertRaises(template.TemplateError):
                t._take_fds()

    def test_takes_the_fds(self):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(a.close)
        fd = fcntl.fcntl(b.fileno(), fcntl.F_DUPFD, 100)      # clear of 3 and 4
        b.close()
        env = {"MEMWARD_CONTROL_FD": str(fd), "LISTEN_FDS": "2",
               "LISTEN_PID": str(os.getpid())}
        with mock.patch.dict(os.environ, env):
            t = template.Template(NoAdapter(), gc_freeze=False)
            t._take_fds()
            self.addCleanup(t.control.close)
            self.assertEqual(t.control.fileno(), fd)
            self.assertEqual(t.listen_fds, [3, 4])
            self.assertNotIn("MEMWARD_CONTROL_FD", os.environ)
            self.assertFalse(t.control.get_inheritable())

    def test_listen_fds_for_another_pid_are_not_ours(self):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(a.close)
        env = {"MEMWARD_CONTROL_FD": str(b.fileno()), "LISTEN_FDS": "2", "LISTEN_PID": "1"}
        with mock.patch.dict(os.environ, env):
            t = template.Template(NoAdapter(), gc_freeze=False)
            t._take_fds()
            self.addCleanup(t.control.close)
            b.detach()
            self.assertEqual(t.listen_fds, [])

    def test_memwards_pid_is_the_channels_peer(self):
        # memward made the socketpair: SO_PEERCRED names it, whoever the parent is. Here
        # this process made it, and is not its own parent.
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(a.close)
        with mock.patch.dict(os.environ, {"MEMWARD_CONTROL_FD": str(b.fileno())}):
            t = template.Template(NoAdapter(), gc_freeze=False)
            t._take_fds()
            self.addCleanup(t.control.close)
            b.detach()
        self.assertEqual(t.supervisor, os.getpid())
        with self.assertRaises(template.TemplateError) as caught:
            t._check_parent()
        self.assertIn("started by pid %d" % os.getppid(), str(caught.exception))
        self.assertIn("not by memward (pid %d" % os.getpid(), str(caught.exception))
        with mock.patch("os.getppid", return_value=os.getpid()):
            t._check_parent()

    def test_a_wrapper_that_forks_the_template_fails_at_start(self):
        # `sh -c "memward-gunicorn ..."` without exec: the template's parent is the
        # wrapper, memward is the channel's peer. It used to start, and every worker it
        # forked exited 1 with "memward (pid WRAPPER) is gone".
        script = ("import sys; sys.path.insert(0, %r)\n"
                  "from memward import template\n"
                  "sys.exit(template.Template(template.Adapter(), gc_freeze=False).run())\n"
                  % PYTHON_DIR)
        wrapper = ("import subprocess, sys; sys.exit(subprocess.call([sys.executable, '-c', %r], "
                   "pass_fds=(3, 4)))" % script)
        mw = FakeMemward(["-c", wrapper])
        self.addCleanup(mw.cleanup)
        mw.start()
        self.assertEqual(mw.wait_exit(), template.EXIT_USAGE, mw.log())
        self.assertIn("not by memward (pid %d, the control channel's peer)" % os.getpid(), mw.log())
        self.assertIn("(python3)", mw.log())
        self.assertIn("must exec the template", mw.log())

    def test_gc_switch(self):
        self.assertTrue(template.gc_freeze_wanted({}))
        self.assertTrue(template.gc_freeze_wanted({"MEMWARD_GC_FREEZE": "1"}))
        for off in ("0", "no", "False", " off "):
            self.assertFalse(template.gc_freeze_wanted({"MEMWARD_GC_FREEZE": off}))


if __name__ == "__main__":
    unittest.main()
