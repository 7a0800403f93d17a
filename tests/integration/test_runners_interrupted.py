"""Every bench and test runner stops what it started when it is interrupted.

bench/footprint, stopped by a timeout, once left its `gunicorn -w 64` running for
over an hour: the servers it measures run in sessions of their own, which a signal
to the runner does not reach, and Python's default SIGTERM skipped its cleanup.

Each runner is started in a session of its own with MEMWARD_RUNNER_TAG=<random> in
its environment (inherited by everything it starts, memward's workers included).
Once it has started its servers (and load generator), the runner alone gets SIGTERM,
as from `kill` or a timeout; it must exit within 60 s and leave no tagged process
behind. Runners: bench/footprint (memward, 4 workers), bench/seed/run (setup d:
memward + hey), bench/keepalive/run (gunicorn standalone and behind memward + wrk),
bench/recycle-loss/run (memward with uvicorn workers + wrk),
tests/integration/run (test_soak_short: memward, 4 workers, load threads),
bench/orphans/run (a C program with up to 4,000 children in sessions of their own).
SIGINT is checked once, on bench/footprint. Checked by hand: bench/leak (it needs
Flask, a bench dependency; it uses bench/lib as recycle-loss does), tests/vm/run-all
and tests/fuzz/run-fuzz (they forward the signal from a trap; they need QEMU, clang)."""

import os
import signal
import subprocess
import time
import uuid

import lib
from lib import check

TAG_VAR = "MEMWARD_RUNNER_TAG"


def comms(pids):
    out = []
    for pid in pids:
        try:
            with open("/proc/%d/comm" % pid) as f:
                out.append(f.read().strip())
        except OSError:
            pass
    return out


def interrupt(t, name, argv, env, started, sig=signal.SIGTERM):
    """Runs argv until started(names of the tagged processes) holds, sends sig to
    the runner only, and checks that it exits and nothing it started is left."""
    tag = uuid.uuid4().hex
    full_env = dict(os.environ, **env)
    full_env[TAG_VAR] = tag
    log = open(t.path(name + ".log"), "wb")
    proc = subprocess.Popen(argv, cwd=lib.REPO, env=full_env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            names = comms(p for p in lib.pids_with_env(TAG_VAR, tag) if p != proc.pid)
            if started(names):
                break
            check(proc.poll() is None, "%s exited (%s) before it started its servers:\n%s"
                  % (name, proc.poll(), open(t.path(name + ".log"), errors="replace").read()[-2000:]))
            check(time.monotonic() < deadline, "%s: did not start its servers in 60 s (running: %r)" % (name, names))
            time.sleep(0.2)
        t0 = time.monotonic()
        proc.send_signal(sig)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            lib.fail("%s did not exit within 60 s of %s" % (name, sig.name))
        took = time.monotonic() - t0
        deadline = time.monotonic() + 5
        while lib.pids_with_env(TAG_VAR, tag) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = lib.pids_with_env(TAG_VAR, tag)
        check(not left, "%s, interrupted by %s (exit %s), left %r running" % (name, sig.name, rc, comms(left)))
        print("%s: %s while %s ran -> exit %s in %.1fs, nothing left" % (name, sig.name, ",".join(sorted(set(names))),
                                                                         rc, took))
    finally:
        for pid in lib.pids_with_env(TAG_VAR, tag):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


def test(t):
    memward = {"MEMWARD": lib.MEMWARD}
    footprint = dict(memward, WORKERS="4", BENCH_SECONDS="60")
    up = lambda names: names.count("python3") >= 4 and "memward" in names  # noqa: E731
    interrupt(t, "footprint", [os.path.join(lib.REPO, "bench", "footprint")], footprint, up)
    interrupt(t, "footprint-sigint", [os.path.join(lib.REPO, "bench", "footprint")], footprint, up,
              sig=signal.SIGINT)
    interrupt(t, "seed", [os.path.join(lib.REPO, "bench", "seed", "run")],
              dict(memward, BENCH_SETUPS="d", BENCH_SECONDS="60", BENCH_WORKERS="2", BENCH_NAME="bench-interrupted"),
              lambda names: "hey" in names)
    interrupt(t, "keepalive", [os.path.join(lib.REPO, "bench", "keepalive", "run")],
              dict(memward, BENCH_EXAMPLES="gunicorn", BENCH_SECONDS="60"), lambda names: "wrk" in names)
    interrupt(t, "recycle-loss", [os.path.join(lib.REPO, "bench", "recycle-loss", "run")],
              dict(memward, BENCH_SETUPS="mw-uvicorn", BENCH_SECONDS="60"), lambda names: "wrk" in names)
    interrupt(t, "integration", [os.path.join(lib.REPO, "tests", "integration", "run"), "soak_short"], memward,
              lambda names: "memward" in names and names.count("python3") >= 5)
    # Children in sessions of their own, pausing forever, between its fork and its sweep.
    interrupt(t, "orphans", [os.path.join(lib.REPO, "bench", "orphans", "run")], {},
              lambda names: names.count("bench-orphans") >= 100)


if __name__ == "__main__":
    lib.main(test)
