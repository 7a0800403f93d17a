"""--check-config and the command line: exit codes and messages.

A good file prints the effective configuration (defaults filled in) as YAML and
exits 0, and that output is itself a good config that prints the same; flags
override the file; a bad file exits 2 with every error as FILE:LINE:COL:; bad
usage exits 2; --version and --help exit 0."""

import re

import lib
from lib import check

try:
    import yaml
except ImportError:         # python3-yaml is optional: fall back to text checks
    yaml = None


def position(text, needle):
    before = text[:text.index(needle)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def test(t):
    port = t.port()
    good = t.write_config(lib.config(port, count=3, recycle={"max_requests": 1000,
                                                            "max_requests_jitter": 100}),
                          "good.yaml")

    rc, out, err, _ = t.run(["--check-config", "-c", good])
    check(rc == 0, "--check-config on a good file: exit %s\n%s" % (rc, err))
    check(re.search(r"^workers:", out, re.M), "no workers: section in\n%s" % out)
    for key in ("count", "command", "graceful_timeout", "ready_timeout", "max_requests",
                "max_requests_jitter", "max_concurrent", "restart_backoff", "start_limit_burst",
                "start_limit_interval"):
        check(re.search(r"^\s*%s:" % key, out, re.M), "%s missing from the dump\n%s" % (key, out))
    if yaml:
        doc = yaml.safe_load(out)
        check(doc["workers"]["count"] == 3, "count: %r" % doc["workers"]["count"])
        check(doc["workers"]["command"] == lib.EXAMPLE_COMMAND, "command: %r" % doc["workers"])
        check(doc["recycle"]["max_requests"] == 1000, "recycle: %r" % doc["recycle"])
        check(str(port) in str(doc["listen"]), "listen: %r" % doc["listen"])

    # The dump is a config that dumps to itself.
    again = t.write("dumped.yaml", out)
    rc, out2, err, _ = t.run(["--check-config", "-c", again])
    check(rc == 0, "--check-config on its own output: exit %s\n%s" % (rc, err))
    check(out2 == out, "the dump is not stable:\n%s\n---\n%s" % (out, out2))

    # Flags override the file; the command may come after --.
    rc, out, err, _ = t.run(["--check-config", "-c", good, "-w", "7",
                             "--listen", "tcp://127.0.0.1:1", "--", "/bin/true", "x"])
    check(rc == 0, "--check-config with overrides: exit %s\n%s" % (rc, err))
    check(re.search(r"^\s*count: 7\s*$", out, re.M), "-w 7 not applied:\n%s" % out)
    check("127.0.0.1:1" in out and "/bin/true" in out, "overrides missing:\n%s" % out)
    if yaml:
        doc = yaml.safe_load(out)
        check(doc["workers"]["command"] == ["/bin/true", "x"], "command: %r" % doc["workers"])

    # Every error, each at its position.
    text = lib.yaml_dump(lib.config(port, count=2)).replace("  count: 2\n", "  count: four\n")
    text += "bogus_section: 1\n"
    bad = t.write("bad.yaml", text)
    rc, out, err, _ = t.run(["--check-config", "-c", bad])
    both = out + err
    check(rc == 2, "bad file: exit %s, want 2\n%s" % (rc, both))
    for needle, what in (("four", "workers.count"), ("bogus_section", "bogus_section")):
        line, col = position(text, needle)
        _, key_col = position(text, "count: four") if needle == "four" else (line, col)
        check(re.search(r"%s:%d:(%d|%d): " % (re.escape(bad), line, col, key_col), both),
              "no %s:%d:%d: error for %s in\n%s" % (bad, line, col, what, both))

    syntax = t.write("syntax.yaml", "workers:\n  count: [2\n  command: x\n")
    rc, out, err, _ = t.run(["--check-config", "-c", syntax])
    check(rc == 2, "syntax error: exit %s\n%s" % (rc, out + err))
    check(re.search(r"%s:\d+:\d+: " % re.escape(syntax), out + err),
          "no FILE:LINE:COL: for a syntax error in\n%s" % (out + err))

    nocmd = t.write("nocmd.yaml", "workers:\n  count: 2\n")
    rc, out, err, _ = t.run(["--check-config", "-c", nocmd])
    check(rc == 2, "no command anywhere: exit %s\n%s" % (rc, out + err))

    rc, out, err, _ = t.run(["--check-config", "-c", t.path("missing.yaml")])
    check(rc == 2, "missing config file: exit %s\n%s" % (rc, out + err))

    rc, out, err, _ = t.run(["--no-such-flag"])
    check(rc == 2, "unknown flag: exit %s\n%s" % (rc, out + err))
    rc, out, err, _ = t.run(["-w", "zero", "--check-config", "-c", good])
    check(rc == 2, "-w zero: exit %s\n%s" % (rc, out + err))

    rc, out, err, _ = t.run(["--version"])
    check(rc == 0 and re.search(r"\d+\.\d+", out + err), "--version: exit %s %r" % (rc, out + err))
    rc, out, err, _ = t.run(["--help"])
    check(rc == 0 and "--check-config" in out + err, "--help: exit %s %r" % (rc, out + err))


if __name__ == "__main__":
    lib.main(test)
