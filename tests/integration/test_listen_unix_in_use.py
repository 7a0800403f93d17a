"""A unix socket path belongs to the memward that listens on it.

  * A second memward started on the same path (by mistake, with a TCP port that is
    taken as well, so it exits) fails at once with one clear error naming the path,
    exit code 1 like any listen failure, and the first one keeps answering on the
    path: the second must not delete the running one's socket on its way in. The
    same for metrics.listen. A start that fails on a later address removes the socket
    files it made for the earlier ones.
  * At shutdown memward removes its socket file only while it is still its own: after
    the file was deleted by hand and the path taken by another memward, stopping the
    first leaves the newcomer's socket alone.
  * A socket left by a SIGKILLed memward (nothing listens on it any more) is still
    replaced at the next start, and removed at a clean exit."""

import errno
import os
import socket
import time

import lib
import metrics_helpers as mh
from lib import check


def unix_config(path, **kw):
    return lib.config(0, count=1, listen=[{"address": "unix:" + path, "name": "http"}], **kw)


def served_by(path, mw):
    """GET / over the socket at path; checks that a worker of mw answered."""
    status, headers, body = lib.http_get_unix(path, "/", timeout=5)
    check(status == 200, "GET over %s: HTTP %d %r" % (path, status, body))
    pid = lib.worker_pid_of(headers, body)
    check(pid in mw.current_workers().values(),
          "GET over %s answered by pid %s, not by a worker of %s (%r)" % (path, pid, mw.name,
                                                                          mw.current_workers()))


def expect_in_use(t, label, cfg, event, path):
    f = t.start_fails(label, cfg, event, path)
    check(f.get("error") == os.strerror(errno.EADDRINUSE), "%s: error=%r:\n%s" % (label, f.get("error"), f["stderr"]))
    check("listening" in f.get("msg", ""), "%s: the message does not say why:\n%s" % (label, f["stderr"]))


def wait_gone(pids, timeout=5.0):
    deadline = time.monotonic() + timeout
    while any(lib.alive(p) for p in pids):
        check(time.monotonic() < deadline, "workers %r outlived their memward" % pids)
        time.sleep(0.05)


def test(t):
    sock = t.path("app.sock")
    metrics_sock = t.path("metrics.sock")
    first = t.memward(mh.config(0, "unix:" + metrics_sock, count=1,
                                listen=[{"address": "unix:" + sock, "name": "http"}]), name="first")
    first.wait_event("ready", timeout=15)
    served_by(sock, first)

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        busy_tcp = {"address": "tcp://127.0.0.1:%d" % port, "name": "admin"}
        expect_in_use(t, "second", lib.config(0, count=1, listen=[{"address": "unix:" + sock, "name": "http"},
                                                                   busy_tcp]), "listen_failed", sock)
        # A start that fails on a later address takes back the socket files it made.
        fresh = t.path("fresh.sock")
        cfg = lib.config(0, count=1, listen=[{"address": "unix:" + fresh, "name": "http"}, busy_tcp])
        rc, _, err, _ = t.run(["-c", t.write_config(cfg, "fresh.yaml")], timeout=15)
        check(rc == 1 and "event=listen_failed" in err, "fresh: exit %d:\n%s" % (rc, err))
        check(not os.path.exists(fresh), "a failed start left its socket file %s behind" % fresh)
    served_by(sock, first)

    expect_in_use(t, "second-metrics", mh.config(t.port(), "unix:" + metrics_sock, count=1),
                  "metrics_listen_failed", metrics_sock)
    status, _, body = lib.http_get_unix(metrics_sock, "/healthz", timeout=5)
    check(status == 200 and body == "ok: 1/1 workers ready\n", "first's /healthz: %d %r" % (status, body))

    # Deleted by hand, the path is taken by another memward: the first one's exit must
    # not remove the newcomer's socket.
    os.unlink(sock)
    third = t.memward(unix_config(sock), name="third")
    third.wait_event("ready", timeout=15)
    served_by(sock, third)
    check(first.stop() == 0, "first memward did not exit 0")
    check(os.path.exists(sock), "stopping the first memward removed the third one's socket %s" % sock)
    served_by(sock, third)

    # SIGKILLed: its socket file stays, stale, and is replaced by the next start.
    workers = list(third.current_workers().values())
    third.kill()
    wait_gone(workers)
    with socket.socket(socket.AF_UNIX) as probe:
        check(probe.connect_ex(sock) == errno.ECONNREFUSED, "%s is not a stale socket after SIGKILL" % sock)
    fourth = t.memward(unix_config(sock), name="fourth")
    fourth.wait_event("ready", timeout=15)
    served_by(sock, fourth)
    check(fourth.stop() == 0, "fourth memward did not exit 0")
    check(not os.path.exists(sock), "the socket %s was left behind at a clean exit" % sock)
    print("in-use path refused, first kept serving; stale socket replaced")


if __name__ == "__main__":
    lib.main(test)
