"""A worker command that cannot be executed at all ends memward at once:
127 when it is not found, 126 when it is not executable, one clear line, no
respawn loop. Checked with the command after `--` and from the config file.
A workers.directory that cannot be entered is a configuration error (exit 2)
that names the directory, not "worker command not found"."""

import os

import lib
from lib import check


def expect(t, label, args, code, needle):
    rc, out, err, secs = t.run(args, timeout=10)
    check(rc == code, "%s: exit %s, want %d; stderr:\n%s" % (label, rc, code, err[-2000:]))
    check(secs < 3, "%s: took %.1fs" % (label, secs))
    spawns = [l for l in err.splitlines() if lib.parse_logfmt(l).get("event") == "spawn"]
    check(len(spawns) <= 1, "%s: %d spawn lines, a respawn loop?\n%s" % (label, len(spawns), err))
    check(needle in err, "%s: stderr does not name %r:\n%s" % (label, needle, err))
    check(len(err.splitlines()) <= 12, "%s: %d lines on stderr:\n%s"
          % (label, len(err.splitlines()), err))
    print("%s: exit %d in %.2fs" % (label, rc, secs))


def test(t):
    port = t.port()
    listen = ["--listen", "tcp://127.0.0.1:%d" % port]
    plain = t.write("not-executable.sh", "#!/bin/sh\nexit 0\n")
    os.chmod(plain, 0o644)
    missing = t.path("no/such/worker")

    expect(t, "missing path", ["-w", "2"] + listen + ["--", missing], 127, missing)
    expect(t, "missing in PATH", ["-w", "1"] + listen + ["--", "memward-no-such-command"],
           127, "memward-no-such-command")
    expect(t, "not executable", ["-w", "2"] + listen + ["--", plain, "arg"], 126, plain)
    expect(t, "directory", ["-w", "1"] + listen + ["--", t.dir], 126, t.dir)

    cfg = t.write_config(lib.config(port, count=2, command=[missing, "--flag"]), "missing.yaml")
    expect(t, "missing, from config", ["-c", cfg], 127, missing)
    cfg = t.write_config(lib.config(port, count=2, command=[plain]), "plain.yaml")
    expect(t, "not executable, from config", ["-c", cfg], 126, plain)

    nodir = t.path("no/such/directory")
    cfg = t.write_config(lib.config(port, count=2, command=["/bin/sleep", "10"], workers={"directory": nodir}),
                         "nodir.yaml")
    expect(t, "missing workers.directory", ["-c", cfg], 2, "directory=%s" % nodir)
    rc, out, err, secs = t.run(["-c", cfg], timeout=10)
    check("not found" not in err, "a missing directory reported as a missing command:\n%s" % err)


if __name__ == "__main__":
    lib.main(test)
