"""The template process of docs/fork-server.md: load the app once, fork workers on request.

    class MyAdapter(Adapter):
        def load(self, listen_fds): ...          # import the app, in the template
        def run_worker(self, context, spawn, ppid): ...  # serve, in the worker

    sys.exit(Template(MyAdapter()).run())

The template reads MEMWARD_CONTROL_FD and LISTEN_FDS (section 1), calls the adapter to
load the app, says READY (offering PLACE=1), then answers every SPAWN with SPAWNED or
SPAWN_FAILED. Each worker is forked twice (section 3) so that it ends up memward's child;
the intermediate process joins the worker's leaf itself (CGROUP=1) or, when memward asks
to place it (PLACE=1: the template runs as a user who may not move processes between
memward's leaves), waits on a pipe until memward has moved it (PLACE, PLACED). The
worker's reset is one function, Template._become_worker, in the order of section 3
step 4.

The GC recipe (CPython's gc.freeze() documentation; python/README.md): gc.disable() as
early as possible in the template so that no collection leaves freed holes in the
pages the workers will share, gc.freeze() just before each fork (before the pre_fork
hook) so that the workers' collections never write to the template's objects,
gc.enable() in the worker. After each spawn the template collects what the spawn left
(younger than the freeze). MEMWARD_GC_FREEZE=0 in the environment (or gc_freeze=False)
turns it off.

The template exits 0 when memward closes the control channel or on SIGTERM/SIGINT
(also while the app loads: its handlers are in place before),
EXIT_PROTOCOL after logging a malformed message from memward (section 4), and
EXIT_USAGE when it was not started as a template or for another protocol version.
"""

from __future__ import annotations

import array
import ctypes
import errno
import gc
import os
import random
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from typing import Any, List, Mapping, NoReturn, Optional, Tuple

from memward import protocol

CONTROL_FD_ENV = "MEMWARD_CONTROL_FD"
PROTOCOL_ENV = "MEMWARD_PROTOCOL"
GC_FREEZE_ENV = "MEMWARD_GC_FREEZE"
SD_LISTEN_FDS_START = 3

EXIT_OK = 0
EXIT_USAGE = 2                      # not started by memward as a template
EXIT_PROTOCOL = 76                  # sysexits.h EX_PROTOCOL: memward sent a malformed message

_OFF = ("0", "no", "false", "off")

_PR_SET_PDEATHSIG = 1               # <linux/prctl.h>


class _ParentDeathSignal:
    """prctl(PR_SET_PDEATHSIG) through libc, looked up once in the template so that a
    worker calls it without a dlopen() after the fork."""

    def __init__(self) -> None:
        self._prctl: Any = None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            self._prctl = libc.prctl
        except (OSError, AttributeError):
            pass                    # set() says so, in the worker, where it matters
        else:
            self._prctl.restype = ctypes.c_int

    def set(self, sig: int) -> None:
        """The calling process gets `sig` when its parent dies. OSError when it cannot."""
        if self._prctl is None:
            raise OSError(errno.ENOSYS, "prctl() not found in the C library")
        if self._prctl(ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(sig), ctypes.c_ulong(0),
                       ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "prctl(PR_SET_PDEATHSIG): %s" % os.strerror(err))


def gc_freeze_wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the GC recipe is on: unless MEMWARD_GC_FREEZE is 0/no/false/off.
    (The scripts in python/bin apply the same rule before importing anything.)"""
    return environ.get(GC_FREEZE_ENV, "1").strip().lower() not in _OFF


def python_threads() -> List[str]:
    """The live Python threads other than the main one, as 'name (tid N)'."""
    main = threading.main_thread()
    return ["%s (tid %s)" % (t.name, t.native_id)
            for t in threading.enumerate() if t is not main]


def other_os_threads() -> List[str]:
    """Threads of this process that Python did not start (C libraries' pools), as
    'comm (tid N)'; a Python thread that was just joined may still be listed."""
    known = {os.getpid()} | {t.native_id for t in threading.enumerate()}
    found = []
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return []
    for tid in tids:
        if not tid.isdigit() or int(tid) in known:
            continue
        try:
            with open("/proc/self/task/%s/comm" % tid) as f:
                found.append("%s (tid %s)" % (f.read().strip(), tid))
        except OSError:
            continue                # it has exited meanwhile
    return found


class TemplateError(Exception):
    """The template cannot start: not run by memward, or given the wrong fds."""


def spawn_errno(value: Any) -> int:
    """`value` when it can go out as SPAWN_FAILED's ERRNO (an int in 1..4095, as
    Linux errnos are), else ECANCELED: socket.gaierror's are negative (EAI_*), an
    app's exception may carry anything in .errno."""
    if isinstance(value, int) and not isinstance(value, bool) and \
            1 <= value <= protocol.ERRNO_MAX:
        return value
    return errno.ECANCELED


class SpawnRefused(Exception):
    """A SPAWN that must be answered with SPAWN_FAILED; carries the errno."""

    def __init__(self, err: int, message: str) -> None:
        super().__init__(message)
        self.errno = err


class _MemwardGone(BaseException):
    """The control channel reached EOF in the middle of a spawn (waiting for PLACED):
    not a failure of the spawn, the end of the template."""


class _StopWhileLoading(BaseException):
    """Raised by the SIGTERM/SIGINT handler into the app's loading: the template
    exits 0 without waiting for the rest of the import."""


class Adapter:
    """What a server plugs into the Template. Every method but run_worker has a
    default that does nothing, so an adapter overrides only what it needs."""

    def runtime(self) -> str:
        """Free text for memward's log, sent as READY's RUNTIME."""
        return "python/%d.%d.%d" % sys.version_info[:3]

    def load(self, listen_fds: List[int]) -> None:
        """Loads the application, in the template, before READY."""

    def pre_fork(self, spawn: protocol.Spawn) -> Any:
        """In the template, before the fork for `spawn`; returns a context object
        handed to run_worker() in the worker and to after_fork() in the template.
        Raising SpawnRefused (or anything) answers SPAWN_FAILED."""
        return None

    def after_fork(self, context: Any) -> None:
        """In the template once the spawn is over, whatever its outcome."""

    def run_worker(self, context: Any, spawn: protocol.Spawn, ppid: int) -> int:
        """Serves requests, in the worker, after the reset; returns the exit code.
        `ppid` is the worker's parent (memward) once the intermediate is gone."""
        raise NotImplementedError

    def reopen_logs(self) -> None:
        """SIGUSR1 in the template: reopen log files that future workers inherit."""

    def on_exit(self) -> None:
        """The template is about to exit (memward gone, SIGTERM, or a fault)."""


class Template:
    """One template process. run() returns the process's exit code."""

    def __init__(self, adapter: Adapter, *, gc_freeze: Optional[bool] = None,
                 environ: Optional[Mapping[str, str]] = None, name: str = "memward-template"
                 ) -> None:
        self.adapter = adapter
        self.name = name
        env = os.environ if environ is None else environ
        self.gc_freeze = gc_freeze_wanted(env) if gc_freeze is None else gc_freeze
        self.control: Optional[socket.socket] = None
        self.listen_fds: List[int] = []
        self._wakeup: Tuple[int, int] = (-1, -1)
        # The spawn in progress: the worker reads this pipe's first byte before it serves
        # (_become_worker step 8); its write end stays here until the SPAWNED went out.
        self._go: Tuple[int, int] = (-1, -1)
        self._stop_signal: Optional[int] = None
        self._loading = False
        self._reopen = False
        self._warned_threads: Tuple[str, ...] = ()
        # memward's pid, from the control channel's peer credentials (_take_fds): each
        # worker must end up its child and dies with it (section 3 step 4.6).
        self.supervisor = 0
        self._parent_death = _ParentDeathSignal()
        self._ssl_primed = False

    # ------------------------------------------------------------------ start-up

    def log(self, text: str) -> None:
        sys.stderr.write("%s[%d]: %s\n" % (self.name, os.getpid(), text))
        sys.stderr.flush()

    def _take_fds(self) -> None:
        """Section 1: the protocol version (MEMWARD_PROTOCOL, 1 when unset), the control
        fd from MEMWARD_CONTROL_FD, the listening fds from LISTEN_FDS (when LISTEN_PID
        is ours)."""
        version = os.environ.get(PROTOCOL_ENV, str(protocol.PROTOCOL_VERSION))
        if version != str(protocol.PROTOCOL_VERSION):
            raise TemplateError("%s=%s: this runtime speaks protocol version %d only"
                                % (PROTOCOL_ENV, version, protocol.PROTOCOL_VERSION))
        text = os.environ.get(CONTROL_FD_ENV)
        if text is None:
            raise TemplateError("%s is not set: this command runs as memward's template "
                                "(workers.mode: template)" % CONTROL_FD_ENV)
        if not text.isdigit():
            raise TemplateError("%s=%r is not an fd number" % (CONTROL_FD_ENV, text))
        fd = int(text)
        try:
            sock = socket.socket(fileno=fd)
        except OSError as e:
            raise TemplateError("%s=%d: %s" % (CONTROL_FD_ENV, fd, e.strerror)) from None
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_SEQPACKET:
            sock.detach()
            raise TemplateError("%s=%d is not a unix SOCK_SEQPACKET socket"
                                % (CONTROL_FD_ENV, fd))
        # Neither a program the app runs nor anything after the reset gets this fd
        # or its number: only the template may ask for workers.
        sock.set_inheritable(False)
        del os.environ[CONTROL_FD_ENV]
        self.control = sock
        # memward made the socketpair: its peer credentials are memward's pid, whoever
        # our parent is (a wrapper that forks rather than execs is the parent then).
        pid, _, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                        struct.calcsize("3i")))
        self.supervisor = pid

        count = os.environ.get("LISTEN_FDS", "")
        if os.environ.get("LISTEN_PID") == str(os.getpid()) and count.isdigit():
            self.listen_fds = list(range(SD_LISTEN_FDS_START,
                                         SD_LISTEN_FDS_START + int(count)))
        if fd in self.listen_fds:
            raise TemplateError("%s=%d is one of the LISTEN_FDS" % (CONTROL_FD_ENV, fd))

    def _check_parent(self) -> None:
        """Section 1: the template is memward's child, exec'd by it. Its forked workers
        must end up memward's children (section 3 step 4.6), and LISTEN_PID names the
        process memward started: a wrapper that forks the template instead of exec'ing
        it (a shell script without `exec`) breaks both, and every worker would exit."""
        parent = os.getppid()
        if parent == self.supervisor:
            return
        try:
            with open("/proc/%d/comm" % parent) as f:
                name = f.read().strip()
        except OSError:
            name = "?"
        raise TemplateError("started by pid %d (%s), not by memward (pid %d, the control "
                            "channel's peer): a wrapper in workers.command must exec the "
                            "template (`exec %s ...` in a shell script), not fork it"
                            % (parent, name, self.supervisor, os.path.basename(sys.argv[0] or "python")))

    def _install_signals(self) -> None:
        """SIGTERM/SIGINT stop the template, SIGUSR1 reopens logs. The handlers set a
        flag; the wakeup pipe makes the main loop's poll() return for it. While the app
        loads, SIGTERM/SIGINT also interrupt the loading (_StopWhileLoading). Called
        before the app loads and again after, in case it set handlers of its own."""
        if self._wakeup[1] < 0:
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            self._wakeup = (r, w)
        signal.set_wakeup_fd(self._wakeup[1], warn_on_full_buffer=False)

        def stop(signum: int, frame: Any) -> None:
            self._stop_signal = signum
            if self._loading:
                self._loading = False           # raised once; a second signal only flags
                raise _StopWhileLoading()

        def reopen(signum: int, frame: Any) -> None:
            self._reopen = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGUSR1, reopen)

    def _load(self) -> bool:
        """Loads the app with the template's signal handlers in place (docs/fork-server.md
        section 4: SIGTERM or SIGINT, at any time, exit 0); False when a stop signal
        came meanwhile."""
        self._install_signals()
        self._loading = True
        try:
            try:
                self.adapter.load(self.listen_fds)
            finally:
                self._loading = False
        except _StopWhileLoading:
            pass                                # the handler cleared _loading itself
        if self._stop_signal is not None:       # raised, or caught by the app's code
            self.log("stopping on %s while the app was loading"
                     % signal.Signals(self._stop_signal).name)
            return False
        self._install_signals()
        return True

    def run(self) -> int:
        """Loads the app, says READY, serves SPAWN requests until memward is gone."""
        try:
            self._take_fds()
            self._check_parent()
        except TemplateError as e:
            self.log(str(e))
            return EXIT_USAGE
        if self.gc_freeze:
            gc.disable()                # the scripts did it already; a library user may not
        try:
            if not self._load():
                return EXIT_OK
            self._warn_threads()
            # PLACE=1: this runtime can also let memward move its intermediate (section 3).
            self._send(protocol.Ready(runtime=self.adapter.runtime(), place=True))
            return self._serve()
        except protocol.ProtocolError as e:
            self.log("malformed message from memward, exiting: %s" % e)
            return EXIT_PROTOCOL
        except (BrokenPipeError, ConnectionResetError):
            self.log("memward closed the control channel; exiting")
            return EXIT_OK
        finally:
            try:
                self.adapter.on_exit()
            except Exception:
                self.log("on_exit failed:\n" + traceback.format_exc())

    # ----------------------------------------------------------------- main loop

    def _serve(self) -> int:
        assert self.control is not None
        poller = select.poll()
        poller.register(self.control.fileno(), select.POLLIN)
        poller.register(self._wakeup[0], select.POLLIN)
        while True:
            if self._stop_signal is not None:
                self.log("stopping on %s" % signal.Signals(self._stop_signal).name)
                return EXIT_OK
            if self._reopen:
                self._reopen = False
                self.adapter.reopen_logs()
            for fd, _ in poller.poll():
                if fd == self._wakeup[0]:
                    self._drain_wakeup()
                elif not self._receive_and_spawn():
                    return EXIT_OK      # EOF: memward is gone

    def _drain_wakeup(self) -> None:
        try:
            while os.read(self._wakeup[0], 512):
                pass
        except BlockingIOError:
            pass

    def _receive(self) -> Optional[Tuple[protocol.Message, List[int], bool]]:
        """One message, the fds attached to it, and whether more fds came than fit
        (MSG_CTRUNC; the kernel closed those). None at EOF."""
        assert self.control is not None
        fd_space = socket.CMSG_SPACE(4 * (protocol.MAX_FDS + 3))   # room to see extras
        data, ancdata, flags, _ = self.control.recvmsg(
            protocol.MAX_MESSAGE, fd_space, socket.MSG_CMSG_CLOEXEC)
        fds: List[int] = []
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(payload[:len(payload) - len(payload) % got.itemsize])
                fds.extend(got)
        if not data and not fds and not flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            # EOF, or an empty packet: POLLHUP tells them apart (memward closed its end).
            hung_up = select.poll()
            hung_up.register(self.control.fileno(), select.POLLIN)
            if any(event & select.POLLHUP for _, event in hung_up.poll(0)):
                return None
        try:
            if flags & socket.MSG_TRUNC:
                raise protocol.ProtocolError("message longer than %d bytes"
                                             % protocol.MAX_MESSAGE)
            message = protocol.parse_message(data)
            if (fds or flags & socket.MSG_CTRUNC) and not isinstance(message, protocol.Spawn):
                raise protocol.ProtocolError("file descriptors attached to %s" % message.TYPE)
            return message, fds, bool(flags & socket.MSG_CTRUNC)
        except protocol.ProtocolError:
            _close_all(fds)
            raise

    def _receive_and_spawn(self) -> bool:
        got = self._receive()
        if got is None:
            self.log("memward closed the control channel; exiting")
            return False
        message, fds, more_fds = got
        if not isinstance(message, protocol.Spawn):
            raise protocol.ProtocolError("%s sent to the template; memward sends only SPAWN"
                                         % message.TYPE)
        wanted = 1 if message.cgroup else 0
        if len(fds) != wanted or more_fds:
            # Section 2: not exactly one fd with CGROUP=1 (or any with CGROUP=0) is
            # answered, not fatal: SPAWN_FAILED with EBADF, and what came is closed.
            _close_all(fds)
            text = "SPAWN with CGROUP=%d carries %s%d fds" % (message.cgroup,
                                                             "more than " if more_fds else "",
                                                             len(fds))
            self.log("spawn slot=%d generation=%d failed: %s"
                     % (message.slot, message.generation, text))
            self._send(protocol.SpawnFailed(message.slot, message.generation,
                                            errno.EBADF, text))
            return True
        leaf_fd = fds[0] if fds else None
        try:
            answer = self._spawn(message, leaf_fd)
            self._send(answer)
            if isinstance(answer, protocol.Spawned):
                # Only the worker memward was told of: after a SPAWN_FAILED (the
                # intermediate killed after its fork, say) memward adopts none, and one
                # let serve would be killed as an orphan with the connections it took.
                self._release_worker()
        except _MemwardGone:
            self.log("memward closed the control channel during a spawn; exiting")
            return False
        finally:
            _close_all(fds)
            self._drop_go()
        if self.gc_freeze:
            # What the spawn left (UvicornWorker and its Config refer to each other):
            # collections are off in the template, and this one only looks at objects
            # younger than the spawn's gc.freeze(), never at the shared ones. Here, once
            # _spawn() has returned, nothing of the spawn is referenced any more.
            gc.collect()
        return True

    def _release_worker(self) -> None:
        """Lets the worker of the spawn just answered serve: memward has its SPAWNED."""
        if self._go[1] >= 0:
            try:
                os.write(self._go[1], b"g")
            except OSError:
                pass            # it died already (EPIPE): memward sees its exit
        self._drop_go()

    def _drop_go(self) -> None:
        """The go pipe's write end closed: a worker still waiting on it, whose SPAWNED did
        not go out (memward gave the spawn up, or is gone), gets EOF and exits unserved."""
        _close_all([fd for fd in self._go if fd >= 0])
        self._go = (-1, -1)

    def _send(self, message: protocol.Message) -> None:
        assert self.control is not None
        self.control.send(protocol.format_message(message))

    def _warn_threads(self) -> None:
        threads = python_threads()
        if threads:
            self.log("threads are running after the app was loaded; every spawn fails "
                     "until they stop: " + ", ".join(threads))

    # ------------------------------------------------------------------ spawning

    def _spawn(self, spawn: protocol.Spawn, leaf_fd: Optional[int]) -> protocol.Message:
        """Section 3, the template's side: fork the intermediate, wait for it, and answer
        from what it reported. The answer goes out only after the intermediate has been
        reaped, so the worker's parent is already memward when memward checks it."""
        def failed(err: Any, text: str) -> protocol.SpawnFailed:
            self.log("spawn slot=%d generation=%d failed: %s"
                     % (spawn.slot, spawn.generation, text))
            return protocol.SpawnFailed(spawn.slot, spawn.generation, spawn_errno(err),
                                        text)

        self._prime_shared_state()
        if self.gc_freeze:
            # Every object the template has moves to the permanent generation, which no
            # collection traverses. Done before the pre_fork hook, so that what the hook
            # builds for this one worker stays young and is collected after the spawn.
            gc.freeze()
        try:
            context = self.adapter.pre_fork(spawn)
        except SpawnRefused as e:
            return failed(e.errno, str(e))
        except Exception as e:
            self.log("pre_fork failed:\n" + traceback.format_exc())
            return failed(getattr(e, "errno", None),
                          "pre_fork: %s: %s" % (type(e).__name__, e))
        try:
            threads = python_threads()
            if threads:
                # A lock a thread holds at fork() stays locked forever in the child.
                return failed(errno.EDEADLK, "refusing to fork while Python threads run: "
                              + ", ".join(threads))
            others = tuple(other_os_threads())
            if others and others != self._warned_threads:
                self._warned_threads = others
                self.log("forking with threads Python did not start (a C library's?): "
                         + ", ".join(others))
            return self._double_fork(spawn, leaf_fd, context)
        except protocol.ProtocolError:
            raise                       # memward's PLACED was malformed: section 4, exit
        except OSError as e:
            # Out of fds for the pipes (EMFILE) or the like: its errno is the answer.
            self.log("spawn failed:\n" + traceback.format_exc())
            return failed(e.errno or errno.EIO, "%s: %s" % (type(e).__name__, e))
        except Exception as e:
            # A bug of ours or a surprise of the platform: this spawn fails, the
            # template keeps serving.
            self.log("spawn failed:\n" + traceback.format_exc())
            return failed(errno.EIO, "%s: %s" % (type(e).__name__, e))
        finally:
            try:
                self.adapter.after_fork(context)
            except Exception:
                self.log("after_fork failed:\n" + traceback.format_exc())

    def _prime_shared_state(self) -> None:
        """Does once, in the template, what every worker would otherwise do for itself
        first thing after the fork, so that the workers share it instead of each writing
        its own copy. OpenSSL's random generator (ssl is loaded: gunicorn imports it) is
        instantiated lazily by its first use, and the worker's reseed (_become_worker
        step 5) was that first use: its providers and DRBGs, allocated into the holes
        of the template's malloc heap, copied ~2.8 MiB of the heap's pages into every
        worker (bench/fork: about 40 % of a fresh worker's Private_Dirty). Done here,
        the worker's reseed only mixes new entropy into the state it inherits."""
        if self._ssl_primed:
            return
        ssl_module = sys.modules.get("ssl")
        if ssl_module is not None:
            ssl_module.RAND_add(os.urandom(32), 32.0)
            self._ssl_primed = True

    def _double_fork(self, spawn: protocol.Spawn, leaf_fd: Optional[int], context: Any
                     ) -> protocol.Message:
        # Buffered output would otherwise be written again by every child that flushes.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):
                pass
        # SIGCHLD at SIG_DFL until the intermediate is reaped: an app that ignores it
        # (SIG_IGN: the kernel reaps children itself, waitpid() fails with ECHILD) or
        # whose handler calls wait() would take the intermediate's exit status from us.
        # The intermediate inherits SIG_DFL. Restored afterwards, the app's own again.
        old_sigchld = signal.getsignal(signal.SIGCHLD)
        if old_sigchld is not None:         # None: set outside Python, cannot be restored
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        try:
            return self._fork_intermediate(spawn, leaf_fd, context)
        finally:
            if old_sigchld is not None:
                signal.signal(signal.SIGCHLD, old_sigchld)

    def _fork_intermediate(self, spawn: protocol.Spawn, leaf_fd: Optional[int],
                           context: Any) -> protocol.Message:
        report_r, report_w = os.pipe()
        try:
            os.set_blocking(report_r, False)
            self._go = os.pipe()
            # PLACE=1: the intermediate waits for one byte on this pipe before it does
            # anything else; EOF without it (memward could not place it, the template
            # died) makes it exit without forking the worker.
            release = os.pipe() if spawn.place else None
        except BaseException:
            _close_all([report_r, report_w])    # EMFILE on a later pipe: none leaks
            self._drop_go()
            raise
        # Every signal blocked across the fork: no handler of the template runs in the
        # intermediate or in the worker before its reset; the worker unblocks them.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            pid = os.fork()
        except OSError as e:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            _close_all([report_r, report_w] + list(release or ()))
            return protocol.SpawnFailed(spawn.slot, spawn.generation,
                                        spawn_errno(e.errno or errno.EIO),
                                        "fork: %s" % e.strerror)
        if pid == 0:
            try:
                self._intermediate(spawn, leaf_fd, context, report_r, report_w, release)
            finally:
                os._exit(1)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        os.close(report_w)
        os.close(self._go[0])
        self._go = (-1, self._go[1])
        refused: Optional[protocol.Placed] = None
        if release is not None:
            os.close(release[0])
            try:
                refused = self._be_placed(spawn, pid, release[1])
            except BaseException:
                # memward gone or its answer malformed: the intermediate exits on the
                # pipe's EOF, without a worker; reaped here, since the template exits.
                os.close(release[1])
                os.close(report_r)
                _reap(pid)
                raise
            os.close(release[1])        # EOF: the intermediate goes on, or exits if refused
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            # SIGCHLD ignored outside Python's knowledge (a C library): the kernel reaped
            # the intermediate; its report in the pipe is all there is.
            status = None
        try:
            report = os.read(report_r, 4096).decode("utf-8", "replace")
        except BlockingIOError:
            report = ""
        finally:
            os.close(report_r)
        if refused is not None:
            text = "memward could not place the intermediate process %d: %s" % (
                pid, os.strerror(refused.errno))
            self.log("spawn slot=%d generation=%d failed: %s"
                     % (spawn.slot, spawn.generation, text))
            return protocol.SpawnFailed(spawn.slot, spawn.generation, refused.errno, text)
        kind, _, rest = report.partition(" ")
        if kind == "PID" and rest.strip().isdigit():
            worker = int(rest)
            self.log("spawned slot=%d generation=%d pid=%d"
                     % (spawn.slot, spawn.generation, worker))
            return protocol.Spawned(spawn.slot, spawn.generation, worker)
        if kind == "ERR":
            number, _, text = rest.partition(" ")
            self.log("spawn slot=%d generation=%d failed: %s"
                     % (spawn.slot, spawn.generation, text))
            return protocol.SpawnFailed(spawn.slot, spawn.generation,
                                        spawn_errno(int(number)) if number.isdigit()
                                        else errno.EIO, text)
        how = ("exit status unknown" if status is None
               else "killed by signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status)
               else "exit status %d" % os.waitstatus_to_exitcode(status))
        return protocol.SpawnFailed(spawn.slot, spawn.generation, errno.ECHILD,
                                    "the intermediate process ended (%s) without a pid" % how)

    def _be_placed(self, spawn: protocol.Spawn, pid: int, release_w: int
                   ) -> Optional[protocol.Placed]:
        """Section 3 step 2 with PLACE=1, the template's side: PLACE with the
        intermediate's pid, wait for memward's PLACED, release the intermediate (one byte)
        when it is in its leaf. Returns None once released, the PLACED when memward could
        not place it (the caller then closes the pipe: the intermediate exits). Raises
        ProtocolError for anything but the PLACED of this spawn, _MemwardGone at EOF."""
        self._send(protocol.Place(spawn.slot, spawn.generation, pid))
        got = self._receive()
        if got is None:
            raise _MemwardGone()
        answer, fds, _ = got
        _close_all(fds)                 # none: _receive() refuses fds on anything but SPAWN
        if not isinstance(answer, protocol.Placed) or \
                (answer.slot, answer.generation) != (spawn.slot, spawn.generation):
            raise protocol.ProtocolError(
                "%r while waiting for PLACED for slot %d generation %d"
                % (answer, spawn.slot, spawn.generation))
        if answer.errno != 0:
            return answer
        os.write(release_w, b"p")
        return None

    def _intermediate(self, spawn: protocol.Spawn, leaf_fd: Optional[int], context: Any,
                      report_r: int, report_w: int,
                      release: Optional[Tuple[int, int]]) -> NoReturn:
        """Section 3 steps 2-3, in the intermediate process: join the leaf (or, with
        PLACE=1, wait until memward has moved us into it), fork the worker, wait until it
        has its own session, report its pid (or the errno) to the template through the
        pipe, exit."""
        code = 1
        try:
            os.close(report_r)
            os.close(self._go[1])       # the worker inherits only the read end
            if release is not None:
                # Nothing of the worker's may run before we are in its leaf: the first
                # thing is to wait for the template's byte. Signals are blocked; SIGKILL
                # of the template's group still ends us, and its death closes the pipe.
                os.close(release[1])
                released = len(os.read(release[0], 1)) == 1     # any byte (section 3.1)
                os.close(release[0])
                if not released:
                    code = 0
                    return              # not placed: no worker, the template answers
            # SIGCHLD is SIG_DFL here already (see _double_fork); said again for the case
            # where the template could not set it (a handler installed outside Python).
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            if leaf_fd is not None:
                try:
                    fd = os.open("cgroup.procs", os.O_WRONLY | os.O_CLOEXEC, dir_fd=leaf_fd)
                    try:
                        os.write(fd, b"0")      # "0": the writing process itself
                    finally:
                        os.close(fd)
                except OSError as e:
                    os.write(report_w, ("ERR %d joining the cgroup leaf: %s"
                                        % (e.errno, e.strerror)).encode())
                    code = 0
                    return              # to the finally: _exit
            intermediate = os.getpid()
            session_r, session_w = os.pipe()
            try:
                pid = os.fork()
            except OSError as e:
                os.write(report_w, ("ERR %d fork: %s" % (e.errno, e.strerror)).encode())
                code = 0
                return
            if pid == 0:
                try:
                    os.close(session_r)
                    self._become_worker(spawn, leaf_fd, context, report_w, intermediate,
                                        session_w)
                finally:
                    os._exit(1)
            # The pid goes out only once the worker has its own session (or is dead):
            # memward may kill the worker's process group as soon as it has the pid.
            os.close(session_w)
            os.read(session_r, 1)
            os.write(report_w, ("PID %d" % pid).encode())
            code = 0
        except BaseException as e:
            try:
                os.write(report_w, ("ERR %d intermediate process: %s: %s"
                                    % (errno.EIO, type(e).__name__, e)).encode())
            except BaseException:
                pass
        finally:
            os._exit(code)

    def _become_worker(self, spawn: protocol.Spawn, leaf_fd: Optional[int], context: Any,
                       report_w: int, intermediate: int, session_w: int) -> NoReturn:
        """Section 3 step 4: the worker's reset, in order, then the worker. Never
        returns: every way out ends in os._exit()."""
        code = 1
        try:
            # 1. Own session and process group: memward's kill of the group reaches all
            #    the worker starts and nothing of the template's; no controlling tty.
            #    Then tell the intermediate, which reports our pid only after this.
            os.setsid()
            os.write(session_w, b"s")
            os.close(session_w)

            # 2. Dispositions back to what a freshly started interpreter has (the
            #    template's handlers, and whatever the app ignored, must not act here):
            #    SIG_DFL, but SIGPIPE/SIGXFSZ ignored and SIGINT raising
            #    KeyboardInterrupt, as Python sets them at start-up, so that a write to a
            #    closed connection raises BrokenPipeError instead of killing the worker.
            #    Then the mask empty: signals were blocked across both forks.
            for sig in signal.valid_signals():
                if sig in (signal.SIGKILL, signal.SIGSTOP):
                    continue
                if sig in (signal.SIGPIPE, signal.SIGXFSZ):
                    handler: Any = signal.SIG_IGN
                elif sig == signal.SIGINT:
                    handler = signal.default_int_handler
                else:
                    handler = signal.SIG_DFL
                try:
                    signal.signal(sig, handler)
                except (OSError, ValueError):
                    pass                # a signal the kernel does not let us set
            signal.set_wakeup_fd(-1)
            signal.pthread_sigmask(signal.SIG_SETMASK, ())

            # 3. Close the control channel and the leaf fd (a worker must not be able to
            #    ask for workers), and the template's own pipes.
            if self.control is not None:
                self.control.close()
            for fd in (leaf_fd, report_w) + self._wakeup:
                if fd is not None and fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass

            # 4. The request's ENV over what the template inherited, then LISTEN_PID (and
            #    WATCHDOG_PID with WATCHDOG_USEC) naming the worker, as for an exec'd one.
            for name, value in spawn.env:
                os.environ[name] = value
            me = str(os.getpid())
            if self.listen_fds:
                os.environ["LISTEN_PID"] = me
            if "WATCHDOG_USEC" in os.environ:
                os.environ["WATCHDOG_PID"] = me
            else:
                os.environ.pop("WATCHDOG_PID", None)

            # 5. Reseed what would draw the template's numbers: the random module (Python
            #    also does this at fork, once more costs nothing) and OpenSSL's pool when
            #    ssl is loaded (the template instantiated that generator before the fork:
            #    _prime_shared_state). secrets/os.urandom/uuid4 read the kernel; tempfile
            #    notices the new pid by itself.
            random.seed()
            ssl_module = sys.modules.get("ssl")
            if ssl_module is not None:
                ssl_module.RAND_add(os.urandom(32), 32.0)
            #    uuid1() calls libuuid's uuid_generate_time_safe(), which keeps its clock
            #    sequence and last timestamp in the process (without uuidd or a writable
            #    /var/lib/libuuid/clock.txt): every worker of a template that used
            #    uuid1() would go on from the same state, and workers generating at the
            #    same instant would make the same UUIDs. Without libuuid, Python's own
            #    uuid1() draws each clock sequence from `random`, reseeded above. (A
            #    uuid module imported only in the worker starts libuuid afresh.)
            uuid_module = sys.modules.get("uuid")
            if uuid_module is not None and hasattr(uuid_module, "_generate_time_safe"):
                uuid_module._generate_time_safe = None

            # 6. Wait until the intermediate has exited and we are memward's child, so
            #    that getppid() stays what it says from here on (gunicorn's workers exit
            #    when it changes).
            ppid = _wait_until_reparented(intermediate)

            # 7. Die with memward, as its exec'd workers do (PR_SET_PDEATHSIG, SIGKILL, set
            #    by memward between their fork and exec): a SIGKILLed memward must not
            #    leave forked workers serving unsupervised. The fork cleared what the
            #    template had; SIGKILL, not the stop signal, because a worker that ignores
            #    SIGTERM would otherwise outlive it. The signal is tied to the parent, so
            #    it is set once memward is the parent; had memward died before, we were
            #    re-parented to someone else: exit. Checked again after the prctl, which
            #    closes the race with memward dying in between.
            if ppid != self.supervisor:
                sys.stderr.write("%s[%d]: memward (pid %d) is gone before the worker became its "
                                 "child (parent %d); exiting\n"
                                 % (self.name, os.getpid(), self.supervisor, ppid))
                code = 1
                return
            self._parent_death.set(signal.SIGKILL)
            if os.getppid() != self.supervisor:
                code = 1
                return

            # 8. Serve only once the template has sent our SPAWNED (its byte on the go
            #    pipe): a spawn memward gave up on meanwhile (a reload retired the template
            #    while it forked) gets EOF, and its worker exits before it accepts a
            #    connection, instead of serving until memward kills it as an orphan and
            #    resetting the connection it had taken.
            go_r = self._go[0]
            go = os.read(go_r, 1)
            os.close(go_r)
            if go != b"g":
                code = 0
                return

            # 9. The GC recipe's last step: collections again, for the worker's own
            #    objects only (the template's are frozen).
            if self.gc_freeze:
                gc.enable()

            # 10. The worker.
            code = self.adapter.run_worker(context, spawn, ppid)
        except SystemExit as e:
            code = _exit_code(e)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(_finish_worker(code))


def _close_all(fds: List[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _wait_until_reparented(intermediate: int) -> int:
    """Returns our parent's pid once it is no longer the intermediate process."""
    if os.getppid() == intermediate:
        # While it is our parent it has not been reaped, so the pid is still its own.
        try:
            pidfd = os.pidfd_open(intermediate)
        except OSError:
            pidfd = -1              # gone already, or no pidfd_open (ENOSYS, seccomp)
        if pidfd >= 0:
            try:
                poller = select.poll()
                poller.register(pidfd, select.POLLIN)
                poller.poll()       # readable once it has exited: children re-parented
            finally:
                os.close(pidfd)
        while os.getppid() == intermediate:
            time.sleep(0.001)       # only without pidfd_open: nothing else to wait on
    return os.getppid()


def _exit_code(e: SystemExit) -> int:
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code & 0xFF
    sys.stderr.write("%s\n" % (e.code,))
    return 1


def _finish_worker(code: int) -> int:
    """A worker's end, as the interpreter's own would be (gunicorn's workers leave
    through sys.exit()): wait for non-daemon threads, run atexit handlers, flush; and
    the final request count for memward (notify.final_reports()).
    Returns the exit code for os._exit()."""
    try:
        shutdown = getattr(threading, "_shutdown", None)
        if shutdown is not None:
            shutdown()
    except BaseException:
        traceback.print_exc()
    try:
        import atexit
        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
    try:
        from memward import notify
        notify.final_reports()
    except BaseException:
        traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    return code if isinstance(code, int) else 1
