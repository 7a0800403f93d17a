"""The command line's documented limits and `memward status`'s exit 2 cases
(memward(8): OPTIONS, COMMANDS, EXIT STATUS).

  * -w N takes 1 to 1024: 1024 is accepted, 0 and 1025 exit 2 naming the range;
  * --listen is repeatable at most 16 times: 16 are accepted, the 17th exits 2;
  * `memward status` exits 2 on bad usage, each with one line saying what is wrong:
    both --url and -c, a FILE that is invalid (FILE:LINE:COL:), missing, or has no
    metrics.listen, and an unknown option; nothing is fetched in any of them."""

import re

import lib
from lib import check


def listens(n):
    return [a for i in range(n) for a in ("--listen", "tcp://127.0.0.1:%d" % (20000 + i))]


def test(t):
    rc, out, err, _ = t.run(["-w", "1024", "--check-config", "--", "/bin/true"])
    check(rc == 0 and re.search(r"^\s*count: 1024$", out, re.M), "-w 1024: exit %d\n%s" % (rc, err))
    for n in ("0", "1025"):
        rc, out, err, _ = t.run(["-w", n, "--check-config", "--", "/bin/true"])
        check(rc == 2 and "1..1024" in err and '"%s"' % n in err, "-w %s: exit %d, %r" % (n, rc, err))

    rc, out, err, _ = t.run(listens(16) + ["--check-config", "--", "/bin/true"])
    check(rc == 0 and out.count("tcp://127.0.0.1:") == 16, "16 x --listen: exit %d\n%s" % (rc, err))
    rc, out, err, _ = t.run(listens(17) + ["--check-config", "--", "/bin/true"])
    check(rc == 2 and "--listen: at most 16" in err, "17 x --listen: exit %d, %r" % (rc, err))

    nometrics = t.write("nometrics.yaml", "workers:\n  command: [/bin/true]\n")
    bad = t.write("bad.yaml", "workers:\n  count: x\n")
    cases = [
        (["-c", nometrics, "--url", "http://127.0.0.1:1"], "--url and -c are alternatives"),
        (["-c", bad], "%s:2:10: workers.count" % bad),
        (["-c", t.path("missing.yaml")], "cannot read"),
        (["-c", nometrics], "metrics.listen is not set"),
        (["--bogus"], "unrecognized option"),
        (["--url", "gopher://x"], ""),
    ]
    for args, says in cases:
        rc, out, err, _ = t.run(["status"] + args)
        check(rc == 2 and says in err and not out, "memward status %s: exit %d, stdout %r, stderr %r"
              % (" ".join(args), rc, out, err))
    print("-w 1024 and 16 x --listen accepted, -w 0/1025 and a 17th --listen exit 2; "
          "memward status exits 2 in %d bad-usage cases" % len(cases))


if __name__ == "__main__":
    lib.main(test)
