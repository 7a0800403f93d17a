"""A minimal fork-server template (docs/fork-server.md, protocol 1), standard library only.

It "loads the application" (imports examples/python/worker.py and reads the message its
workers answer with), says READY on the control channel, and then, for each SPAWN, forks
an intermediate process that joins the leaf (CGROUP=1), forks the worker and reports its
pid through a pipe; the template reaps the intermediate and answers SPAWNED (or
SPAWN_FAILED). The worker calls setsid(), resets its signals, closes the control fd and
the leaf fd, sets the ENV of the request and LISTEN_PID, waits until it is re-parented to
memward, sets PR_SET_PDEATHSIG (SIGKILL) and runs the example worker's loop.

Knobs (environment):
  TEST_TEMPLATE_MESSAGE_FILE  the workers' message (EXAMPLE_MESSAGE) is this file's text,
                              read once, when the template starts: a code reload changes it
  TEST_TEMPLATE_MODE          never_ready    never says READY
                              garbage        answers a SPAWN with a malformed message
                              exit_on_spawn  exits (code 3) on SPAWN number TEST_TEMPLATE_N
                              crash_on_spawn READY, then exits (code 4) on every SPAWN
                              fail_spawn     answers SPAWN_FAILED ERRNO=12 (ENOMEM)
                              fork_and_hang  forks the worker (which serves) but never answers
                              claim_self     answers SPAWNED with its own pid
                              close_channel  READY, then closes the channel and lives on
                              protocol2      says READY with PROTOCOL=2
                              place_bad_pid  (with TEST_TEMPLATE_PLACE=1) answers a SPAWN with
                                             PLACE=1 by a PLACE naming itself, not its child
                              place_skip     (with TEST_TEMPLATE_PLACE=1) forks the worker of a
                                             SPAWN with PLACE=1 without a PLACE and answers SPAWNED
                              place_crash    (with TEST_TEMPLATE_PLACE=1) exits (code 5) right
                                             after its PLACE, before memward's PLACED
  TEST_TEMPLATE_PLACE=1       offers PLACE=1 in READY and, for a SPAWN with PLACE=1, lets
                              memward place the intermediate (docs/fork-server.md 3.1): it
                              waits on a release pipe until the template has PLACED
  TEST_TEMPLATE_N             see exit_on_spawn (default 2)
  TEST_TEMPLATE_ANSWER_DELAY_MS  waits this long before each SPAWNED, while the worker
                              already runs: its READY=1 (or its exit) comes first
  TEST_TEMPLATE_WORKER_EXIT   the forked worker exits at once with this code
  TEST_TEMPLATE_STUBBORN=1    ignores SIGTERM and stays after the channel's EOF
  TEST_TEMPLATE_PRELOAD_MIB   the "application" keeps this many MiB of anonymous memory,
                              touched in the template: every worker shares it
  TEST_TEMPLATE_READY_DELAY_MS  waits this long after loading before READY (a slow import)
  DIE_GENERATION              the worker of this generation runs workers/ready_then_die.py's
                              die_after_ready() (stops memward, READY=1, exits 1) instead
Every fork is logged on stderr as "template[PID]: forked WORKER_PID".
"""

import array
import ctypes
import importlib.util
import os
import random
import signal
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "examples", "python", "worker.py")


SUPERVISOR = os.getppid()          # memward: the template is its child


def log(msg):
    sys.stderr.write("template[%d]: %s\n" % (os.getpid(), msg))
    sys.stderr.flush()


def load_app():
    spec = importlib.util.spec_from_file_location("example_worker", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.PRELOAD = bytearray(int(os.environ.get("TEST_TEMPLATE_PRELOAD_MIB", "0") or 0) << 20)
    for i in range(0, len(mod.PRELOAD), 4096):
        mod.PRELOAD[i] = 1
    path = os.environ.get("TEST_TEMPLATE_MESSAGE_FILE")
    if path:
        with open(path, encoding="utf-8") as f:
            os.environ["EXAMPLE_MESSAGE"] = f.read().strip()
    return mod


def parse(data):
    lines = data.decode("utf-8", "replace").split("\n")
    kind, fields, env = lines[0], {}, []
    for line in lines[1:]:
        if not line:
            continue
        key, _, value = line.partition("=")
        if key == "ENV":
            env.append(value)
        else:
            fields[key] = value
    return kind, fields, env


def worker(mod, ctl, fds, env, intermediate):
    """The forked worker: never returns into the template."""
    code = 1
    try:
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # The app's own choice, as any app's: it has no log file to reopen on SIGUSR1.
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        ctl.close()
        for fd in fds:
            os.close(fd)
        for entry in env:
            name, _, value = entry.partition("=")
            os.environ[name] = value
        os.environ["LISTEN_PID"] = str(os.getpid())
        if "WATCHDOG_USEC" in os.environ:
            os.environ["WATCHDOG_PID"] = str(os.getpid())
        random.seed()
        if os.environ.get("TEST_TEMPLATE_WORKER_EXIT"):
            code = int(os.environ["TEST_TEMPLATE_WORKER_EXIT"])
            return
        # The example worker exits when its parent changes: start it once memward is it.
        while os.getppid() == intermediate:
            time.sleep(0.001)
        # Section 3 step 4.6: die with memward (the template's parent).
        if os.getppid() != SUPERVISOR:
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, ctypes.c_ulong(signal.SIGKILL), 0, 0, 0) != 0:    # PR_SET_PDEATHSIG
            return
        if os.getppid() != SUPERVISOR:
            return
        if os.environ.get("DIE_GENERATION"):
            sys.path.insert(0, HERE)
            import ready_then_die
            if ready_then_die.dies_now():
                ready_then_die.die_after_ready()
        code = mod.Worker().run()
    except BaseException as e:  # noqa: BLE001 -- nothing may return into the template
        log("worker: %r" % (e,))
    finally:
        os._exit(code or 0)


def placed(ctl, head):
    """Waits for memward's PLACED; its ERRNO, 0 when placed."""
    data = ctl.recv(65536)
    kind, fields, _ = parse(data)
    if kind != "PLACED" or "SLOT=%s\nGENERATION=%s\n" % (fields.get("SLOT"), fields.get("GENERATION")) != head:
        log("unexpected %r while waiting for PLACED" % data)
        os._exit(76)
    return int(fields.get("ERRNO", "0"))


def spawn(mod, ctl, fields, env, fds, mode=""):
    """Forks one worker; returns the answer to send."""
    slot, generation = fields.get("SLOT", "0"), fields.get("GENERATION", "1")
    head = "SLOT=%s\nGENERATION=%s\n" % (slot, generation)
    cgroup = fields.get("CGROUP") == "1"
    place = fields.get("PLACE") == "1" and mode != "place_skip"
    if cgroup != (len(fds) == 1):
        for fd in fds:
            os.close(fd)
        return "SPAWN_FAILED\n" + head + "ERRNO=9\nMESSAGE=CGROUP and fds disagree\n"
    if place and mode == "place_bad_pid":
        ctl.send(("PLACE\n" + head + "PID=%d\n" % os.getpid()).encode())
        placed(ctl, head)
        return "SPAWN_FAILED\n" + head + "ERRNO=1\n"
    r, w = os.pipe()
    release_r, release_w = os.pipe() if place else (-1, -1)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            if place:
                # Nothing before memward has moved us into the worker's leaf.
                os.close(release_w)
                if os.read(release_r, 1) != b"p":
                    os._exit(0)
                os.close(release_r)
            if cgroup:
                try:
                    fd = os.open("cgroup.procs", os.O_WRONLY, dir_fd=fds[0])
                    os.write(fd, b"0")
                    os.close(fd)
                except OSError as e:
                    os.write(w, b"E%d" % e.errno)
                    os._exit(0)
            me = os.getpid()
            wpid = os.fork()
            if wpid == 0:
                os.close(w)
                worker(mod, ctl, fds, env, me)
            os.write(w, b"P%d" % wpid)
        finally:
            os._exit(0)
    os.close(w)
    if place:
        os.close(release_r)
        ctl.send(("PLACE\n" + head + "PID=%d\n" % pid).encode())
        if mode == "place_crash":
            os._exit(5)         # the intermediate reads EOF and exits, unplaced
        err = placed(ctl, head)
        if err == 0:
            os.write(release_w, b"p")
        os.close(release_w)
        if err:
            os.waitpid(pid, 0)
            os.close(r)
            return "SPAWN_FAILED\n" + head + "ERRNO=%d\nMESSAGE=memward could not place it\n" % err
    os.waitpid(pid, 0)
    answer = os.read(r, 64).decode()
    os.close(r)
    for fd in fds:
        os.close(fd)
    if answer.startswith("P"):
        log("forked %s" % answer[1:])
        delay = int(os.environ.get("TEST_TEMPLATE_ANSWER_DELAY_MS", "0") or 0)
        if delay:
            time.sleep(delay / 1000)
        return "SPAWNED\n" + head + "PID=%s\n" % answer[1:]
    return "SPAWN_FAILED\n" + head + "ERRNO=%s\nMESSAGE=cannot join the leaf\n" % (answer[1:] or "5")


def main():
    if os.environ.get("MEMWARD_PROTOCOL") != "1":
        log("protocol %r not spoken" % os.environ.get("MEMWARD_PROTOCOL"))
        return 76
    mode = os.environ.get("TEST_TEMPLATE_MODE", "")
    nth = int(os.environ.get("TEST_TEMPLATE_N", "2"))
    signal.signal(signal.SIGUSR1, lambda *_: log("SIGUSR1"))
    stubborn = os.environ.get("TEST_TEMPLATE_STUBBORN") == "1"
    signal.signal(signal.SIGTERM, signal.SIG_IGN if stubborn else (lambda *_: os._exit(0)))
    ctl = socket.socket(fileno=int(os.environ["MEMWARD_CONTROL_FD"]))
    ctl.set_inheritable(False)
    mod = load_app()
    time.sleep(int(os.environ.get("TEST_TEMPLATE_READY_DELAY_MS", "0") or 0) / 1000)
    if mode == "never_ready":
        while True:
            time.sleep(3600)
    ctl.send(b"READY\nPROTOCOL=%d\nRUNTIME=test-template/1 python/%d.%d\n%s"
             % ((2 if mode == "protocol2" else 1,) + sys.version_info[:2]
                + (b"PLACE=1\n" if os.environ.get("TEST_TEMPLATE_PLACE") == "1" else b"",)))
    if mode == "close_channel":
        ctl.close()
        while True:
            time.sleep(3600)
    count = 0
    while True:
        fds = array.array("i")
        data, anc, _, _ = ctl.recvmsg(65536, socket.CMSG_SPACE(4 * fds.itemsize))
        if not data:
            while stubborn:
                time.sleep(3600)
            return 0
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        kind, fields, env = parse(data)
        if kind != "SPAWN":
            log("unexpected %r" % kind)
            return 76
        count += 1
        if mode == "crash_on_spawn" or (mode == "exit_on_spawn" and count == nth):
            log("exiting on SPAWN %d" % count)
            os._exit(4 if mode == "crash_on_spawn" else 3)
        if mode == "garbage":
            ctl.send(b"HELLO THERE\n")
            continue
        if mode == "claim_self":
            for fd in fds:
                os.close(fd)
            ctl.send(("SPAWNED\nSLOT=%s\nGENERATION=%s\nPID=%d\n"
                      % (fields["SLOT"], fields["GENERATION"], os.getpid())).encode())
            continue
        if mode == "fail_spawn":
            for fd in fds:
                os.close(fd)
            ctl.send(("SPAWN_FAILED\nSLOT=%s\nGENERATION=%s\nERRNO=12\nMESSAGE=test\n"
                      % (fields["SLOT"], fields["GENERATION"])).encode())
            continue
        answer = spawn(mod, ctl, fields, env, list(fds), mode)
        if mode == "fork_and_hang":
            while True:
                time.sleep(3600)
        ctl.send(answer.encode())


if __name__ == "__main__":
    sys.exit(main())
