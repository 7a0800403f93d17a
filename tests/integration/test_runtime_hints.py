"""memory.runtime_hints: with a memory.worker_max, every worker gets GOMEMLIMIT (90% of
it), NODE_OPTIONS=--max-old-space-size= (75% of it, in MiB) and MALLOC_ARENA_MAX=2 in
its environment -- unless memward's own environment or workers.env already sets one,
which is then left alone. Without runtime_hints none of them is set (memward(8):
ENVIRONMENT, memward.yaml(5): memory.runtime_hints). Read from /proc/PID/environ."""

import os

import lib
from lib import check

SLEEPER = ["/bin/sh", "-c", "exec sleep 1000"]
WORKER_MAX = 100 * 1024 * 1024
HINTS = ("GOMEMLIMIT", "NODE_OPTIONS", "MALLOC_ARENA_MAX")


def worker_env(t, name, memory, workers_env=None, env=None):
    cfg = lib.config(t.port(), count=2, command=SLEEPER, listen=[],
                     workers={"ready": "100ms", "env": workers_env or {}}, memory=memory)
    mw = t.memward(cfg, env=env, name=name)
    mw.wait_event("ready", count=2)
    envs = []
    for pid in mw.current_workers().values():
        with open("/proc/%d/environ" % pid, "rb") as f:
            env_ = dict(i.decode().split("=", 1) for i in f.read().split(b"\0") if b"=" in i)
        envs.append({k: env_.get(k) for k in HINTS})
    check(mw.stop() == 0, "%s: memward did not exit 0" % name)
    check(len(envs) == 2 and envs[0] == envs[1], "%s: the workers differ: %r" % (name, envs))
    return envs[0]


def test(t):
    for k in HINTS:
        os.environ.pop(k, None)     # memward inherits the test's environment
    hints = {"worker_max": "100MiB", "runtime_hints": True}

    got = worker_env(t, "hints", hints)
    want = {"GOMEMLIMIT": str(WORKER_MAX // 10 * 9), "NODE_OPTIONS": "--max-old-space-size=75",
            "MALLOC_ARENA_MAX": "2"}
    check(got == want, "runtime_hints with worker_max 100MiB: %r, want %r" % (got, want))

    got = worker_env(t, "preset", hints, workers_env={"MALLOC_ARENA_MAX": "4"},
                     env={"NODE_OPTIONS": "--trace-warnings"})
    want = {"GOMEMLIMIT": str(WORKER_MAX // 10 * 9), "NODE_OPTIONS": "--trace-warnings", "MALLOC_ARENA_MAX": "4"}
    check(got == want, "already set in memward's environment / workers.env: %r, want %r" % (got, want))

    got = worker_env(t, "off", {"worker_max": "100MiB"})
    check(got == {k: None for k in HINTS}, "without runtime_hints: %r" % got)
    print("worker_max 100MiB: GOMEMLIMIT=%d NODE_OPTIONS=--max-old-space-size=75 MALLOC_ARENA_MAX=2; "
          "values already set are kept; nothing without runtime_hints" % (WORKER_MAX // 10 * 9))


if __name__ == "__main__":
    lib.main(test)
