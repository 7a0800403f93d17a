"""A PSI trigger on /proc/pressure/memory is registered, its window rounded to 2 s.

pressure.trigger "some 150ms 1s" in procfs mode: the kernel refuses a 1 s window from
a process without CAP_SYS_RESOURCE (EINVAL), so memward rounds the window up to 2 s,
says so once (`event=pressure_window_rounded requested=1s used=2s`), and registers
`event=pressure_trigger path=/proc/pressure/memory kind=some stall=150ms window=2s`,
keeping the trigger fd open. memward runs without CAP_SYS_RESOURCE here (dropped with
setpriv when the test has it), as an unprivileged service would. Workers start and
serve as usual."""

import os
import shutil

import lib
from lib import check

CAP_SYS_RESOURCE = 24


def has_cap(cap):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> cap & 1)
    return False


def test(t):
    if not os.path.exists("/proc/pressure/memory"):
        lib.skip("no /proc/pressure/memory: this kernel has PSI off (tests/vm/test_memory_pressure.sh "
                 "covers triggers)")
    real = lib.MEMWARD
    if has_cap(CAP_SYS_RESOURCE):
        setpriv = shutil.which("setpriv")
        if not setpriv:
            lib.skip("we have CAP_SYS_RESOURCE (1 s windows are accepted) and no setpriv to drop it")
        # lib starts [MEMWARD] + args: start setpriv, which drops the capability for good.
        lib.MEMWARD = setpriv
        args = ["--bounding-set=-sys_resource", "--inh-caps=-sys_resource", "--", real]
    else:
        args = []

    port = t.port()
    cfg = lib.config(port, count=1, pressure={"trigger": "some 150ms 1s", "cooldown": "5s"})
    try:
        mw = t.memward(None, args=args + ["-c", t.write_config(cfg, "psi.yaml")])
    finally:
        lib.MEMWARD = real
    mw.wait_event("ready", count=1, timeout=15)

    acct = mw.events("accounting")
    check(acct, "no event=accounting line")
    if acct[0].get("mode") != "procfs":
        lib.skip("memward runs in %s mode here; the /proc/pressure/memory trigger is the procfs "
                 "mode's (cgroup mode: tests/vm/test_memory_pressure.sh)" % acct[0].get("mode"))

    rounded = mw.events("pressure_window_rounded")
    check(len(rounded) == 1, "want one event=pressure_window_rounded, got %r" % rounded)
    check(rounded[0].get("requested") == "1s" and rounded[0].get("used") == "2s",
          "want requested=1s used=2s: %s" % rounded[0].text)
    trig = mw.events("pressure_trigger")
    check(len(trig) == 1, "want one event=pressure_trigger, got %r" % trig)
    tr = trig[0]
    check(tr.get("path") == "/proc/pressure/memory", "trigger not on /proc/pressure/memory: %s" % tr.text)
    window = lib.parse_duration(tr.get("window"))
    check(window is not None and window >= 2 and window % 2 == 0,
          "trigger window is not a multiple of 2 s: %s" % tr.text)
    check(window == 2, "the 1 s window should round to 2 s, not %s: %s" % (tr.get("window"), tr.text))
    # 150ms in 1s is 15 % of the time; the 2 s window keeps that share.
    check(tr.get("kind") == "some" and tr.get("stall") == "300ms", "want kind=some stall=300ms: %s" % tr.text)
    check(rounded[0].get("stall") == "300ms", "the rounding line does not name the scaled stall: %s" % rounded[0].text)
    check(mw.lines().index(rounded[0]) < mw.lines().index(tr), "the rounding is logged after the trigger")
    check(not mw.events("pressure_polling"), "fell back to polling: %r" % mw.events("pressure_polling"))

    # memward is the process on the far side of setpriv's exec: same pid.
    fds = []
    for fd in os.listdir("/proc/%d/fd" % mw.pid):
        try:
            fds.append(os.readlink("/proc/%d/fd/%s" % (mw.pid, fd)))
        except OSError:
            pass
    check("/proc/pressure/memory" in fds, "memward holds no fd on /proc/pressure/memory: %r" % fds)

    status, _, body = lib.http_get(port, "/")
    check(status == 200, "HTTP %d %r" % (status, body))
    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    print("%s | %s | trigger fd held; %s" % (
        rounded[0].text.split("level=notice ", 1)[-1], tr.text.split("level=info ", 1)[-1],
        "CAP_SYS_RESOURCE dropped with setpriv" if args else "no CAP_SYS_RESOURCE to begin with"))


if __name__ == "__main__":
    lib.main(test)
