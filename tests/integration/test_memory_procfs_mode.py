"""Without a usable cgroup-v2 memory controller memward says so and accounts through /proc.

On a v1/v2 hybrid (this development and CI machine: cgroup2 is mounted without the
memory controller) the first thing memward logs, before any worker starts, is one
`event=accounting mode=procfs reason="..."` line naming why, with a group limit no
larger than the machine's memory; workers are then spawned without a cgroup leaf.
Where a delegated cgroup2 memory controller exists this test skips: there memward runs
in cgroup mode, which tests/vm/test_memory_cgroup.sh covers."""

import os

import lib
from lib import check


def cgroup2_memory_missing():
    """Why this machine has no cgroup-v2 memory controller for us, or None if it has one."""
    own = None
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                own = line.rstrip("\n")[3:]
    if own is None:
        return "no cgroup v2 hierarchy"
    mount = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[:1] == ["cgroup2"]:
                mount = pre.split()[4]
                break
    if mount is None:
        return "cgroup2 is not mounted"
    try:
        with open(os.path.join(mount, own.lstrip("/"), "cgroup.controllers")) as f:
            controllers = f.read().split()
    except OSError as e:
        return "cannot read cgroup.controllers: %s" % e
    if "memory" not in controllers:
        return "cgroup2 has no memory controller"
    if not os.access(os.path.join(mount, own.lstrip("/"), "cgroup.subtree_control"), os.W_OK):
        return "our cgroup is not writable"
    return None


def mem_total():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    lib.fail("no MemTotal in /proc/meminfo")


def test(t):
    why = cgroup2_memory_missing()
    if why is None:
        lib.skip("this machine has a delegated cgroup2 memory controller, so memward runs in "
                 "cgroup mode here (tests/vm/test_memory_cgroup.sh covers that mode)")

    port = t.port()
    mw = t.memward(lib.config(port, count=2))
    mw.wait_event("ready", count=2, timeout=15)

    lines = mw.lines()
    acct = [l for l in lines if l.event == "accounting"]
    check(len(acct) == 1, "want exactly one event=accounting line, got %d: %r" % (len(acct), acct))
    a = acct[0]
    first_spawn = next(i for i, l in enumerate(lines) if l.event == "spawn")
    check(lines.index(a) < first_spawn, "the accounting line comes after a spawn: %r" % lines[:first_spawn + 1])
    check(a.get("mode") == "procfs", "mode is %r, want procfs (%s): %s" % (a.get("mode"), why, a.text))
    reason = a.get("reason") or ""
    check(len(reason) >= 10, "mode=procfs without a reason: %s" % a.text)
    if why == "cgroup2 has no memory controller":
        check("memory controller" in reason, "the reason does not name the missing memory controller "
              "(this machine: %s): %s" % (why, a.text))
    check('reason="' in a.text, "the reason is not a quoted logfmt value: %s" % a.text)

    limit = int(a.get("group_limit", "0"))
    check(0 < limit <= mem_total(), "group_limit=%d, want 0 < limit <= MemTotal %d: %s"
          % (limit, mem_total(), a.text))

    for s in mw.events("spawn"):
        check(s.get("cgroup") is None, "procfs mode but a worker was given a cgroup: %s" % s.text)

    # Still a working supervisor: both workers answer.
    pids = set()
    for _ in range(10):
        status, headers, body = lib.http_get(port, "/")
        check(status == 200, "HTTP %d: %s" % (status, body))
        pids.add(lib.worker_pid_of(headers, body))
    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    print("%s (this machine: %s); group_limit=%.1f GiB; %d worker(s) answered"
          % (a.text.split("event=accounting ", 1)[-1], why, limit / (1 << 30), len(pids)))


if __name__ == "__main__":
    lib.main(test)
