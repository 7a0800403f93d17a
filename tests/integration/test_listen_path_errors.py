"""A regular file where a unix socket should go ends memward at start-up with one
clear error naming the path, for `listen:` and for `metrics.listen` alike (both go
through listen_address_open()), and the file is left as it was: memward replaces
only stale sockets (that a stale one is replaced, test_metrics checks)."""

import os

import lib
import metrics_helpers as mh
from lib import check

CONTENT = "not a socket\n"


def expect_refused(t, label, cfg_name, cfg, event, path):
    cfg_path = t.write_config(cfg, cfg_name)
    rc, out, err, secs = t.run(["-c", cfg_path], timeout=15)
    check(rc != 0, "%s: exit 0 with a regular file at %s; stderr:\n%s" % (label, path, err[-2000:]))
    check(secs < 5, "%s: took %.1fs to fail" % (label, secs))
    lines = [lib.parse_logfmt(l) for l in err.splitlines()]
    failed = [l for l in lines if l.get("event") == event]
    check(len(failed) == 1, "%s: want one %s line:\n%s" % (label, event, err))
    f = failed[0]
    check(f.get("path") == path, "%s: %s names path=%r, want %r:\n%s" % (label, event, f.get("path"), path, err))
    check("not a socket" in f.get("msg", ""), "%s: the message does not say why:\n%s" % (label, err))
    check(f.get("error") == os.strerror(17), "%s: error=%r, want EEXIST's text" % (label, f.get("error")))
    check(not any(l.get("event") == "spawn" for l in lines), "%s: workers were spawned:\n%s" % (label, err))
    with open(path) as fh:
        check(fh.read() == CONTENT, "%s: %s was modified" % (label, path))
    print("%s: exit %d in %.2fs, %s path=%s" % (label, rc, secs, event, path))


def test(t):
    port = t.port()

    path = t.write("listen.sock", CONTENT)
    cfg = lib.config(port, count=1, listen=[{"address": "unix:" + path, "name": "http"}])
    expect_refused(t, "listen:", "listen.yaml", cfg, "listen_failed", path)

    path = t.write("metrics.sock", CONTENT)
    expect_refused(t, "metrics.listen", "metrics.yaml", mh.config(t.port(), "unix:" + path, count=1),
                   "metrics_listen_failed", path)


if __name__ == "__main__":
    lib.main(test)
