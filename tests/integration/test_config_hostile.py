"""Config files that used to stall memward: nothing in them may stop its loop.

  * A FIFO as the config file: `--check-config` and start-up refuse it at once ("not a
    regular file") instead of blocking in open() until someone writes to it; on SIGHUP
    the reload fails (reason=read) and memward keeps serving: /healthz answers, a killed
    worker is replaced.
  * 1 MiB of nested brackets (libyaml's scanner takes time that grows with the square
    of the depth; 40,000 levels took 11.5 s): refused with its location. The bound
    asserted is 5 s, a margin for a busy machine; memward takes milliseconds, and the
    old code minutes."""

import os
import signal
import subprocess
import time

import lib
from lib import check
import metrics_helpers as mh


def check_config(t, path, timeout):
    start = time.monotonic()
    p = subprocess.run([lib.MEMWARD, "-c", path, "--check-config"], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stderr, time.monotonic() - start


def test(t):
    fifo = t.path("fifo.yaml")
    os.mkfifo(fifo)
    rc, err, secs = check_config(t, fifo, timeout=30)
    check(rc == 2 and "not a regular file" in err, "FIFO: exit %d, %r" % (rc, err))
    print("FIFO refused in %.3fs" % secs)

    nested = t.path("nested.yaml")
    half = (1 << 20) // 2 - 16
    with open(nested, "w") as f:
        f.write("x: " + "[" * half + "]" * half + "\n")
    rc, err, secs = check_config(t, nested, timeout=120)
    check(rc == 2 and "1:68: nested deeper than 64 levels" in err, "nested: exit %d, %r" % (rc, err[:300]))
    check(secs < 5, "1 MiB of nesting took %.2fs to refuse" % secs)
    check(len(err) < 2000, "the error shows the whole 1 MiB line: %d bytes" % len(err))
    print("1 MiB of nesting refused in %.3fs" % secs)

    # SIGHUP with a FIFO where the file was, and then with the nested file.
    port, mport = t.port(), t.port()
    mw = t.memward(lib.yaml_dump(mh.config(port, "127.0.0.1:%d" % mport, count=2)), name="memward",
                   config_name="memward.yaml")
    path = t.path("memward.yaml")
    mw.wait_event("ready", count=2)
    os.rename(path, path + ".good")
    os.mkfifo(path)
    since = time.monotonic()
    mw.signal(signal.SIGHUP)
    failed = mw.wait_event("reload_failed", since=since, timeout=10)[0]
    check(failed.get("reason") == "read", "reload_failed: %s" % failed.text)
    status, _, body = mh.get(mport, "/healthz", timeout=5)
    check(status == 200, "/healthz after the FIFO reload: %d %s" % (status, body))
    victim = sorted(mw.current_workers().values())[0]
    os.kill(victim, signal.SIGKILL)
    mw.wait_event("spawn", count=3, timeout=15)

    os.unlink(path)
    os.rename(nested, path)
    since = time.monotonic()
    mw.signal(signal.SIGHUP)
    failed = mw.wait_event("reload_failed", since=since, timeout=10)[0]
    check(failed.get("reason") == "config", "reload_failed: %s" % failed.text)
    status, _, body = mh.get(mport, "/healthz", timeout=5)
    check(status in (200, 503), "/healthz after the nested reload: %d %s" % (status, body))
    check(mw.running(), "memward exited %s" % mw.proc.poll())
    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)


if __name__ == "__main__":
    lib.main(test)
