"""The shipped systemd units are clean under `systemd-analyze verify` (systemd 252, as in
Debian 12) and say what memward needs.

verify checks that ExecStart='s binary exists, so it runs on copies whose ExecStart is
rewritten the way `make install` rewrites it (the Makefile's own sed expression), to the
memward binary under test. Documentation=man: pages are looked up in docs/ through
MANPATH, so a page the units name must exist in the tree. "Clean" means exit 0 *and* no
output at all: verify only warns, with exit 0, about unknown keys and bad values. Two
deliberately broken copies prove that this test notices both kinds of problem.

The units run for real under systemd in tests/vm/test_systemd_memward.sh."""

import os
import re
import shutil
import subprocess

import lib
from lib import check

UNIT_DIR = os.path.join(lib.REPO, "packaging", "systemd")
UNITS = ("memward.service", "memward-example.socket", "memward-example.service")
SERVICES = ("memward.service", "memward-example.service")
MAN_PAGES = {"memward(8)": "memward.8", "memward.yaml(5)": "memward.yaml.5"}
INSTALL_SED_DEFAULT = r"s|^ExecStart=[^ ]*/memward |ExecStart=$(BINDIR)/memward |"

# Settings both services must have (issue 6), and ones that break delegation or do not
# exist in systemd 252.
REQUIRED = {
    "Type": "notify",
    "NotifyAccess": "main",
    "Delegate": "yes",
    "KillMode": "mixed",
    "ExecReload": "kill -HUP $MAINPID",
    "Restart": "on-failure",
}
FORBIDDEN = {
    "ProtectControlGroups": "makes /sys/fs/cgroup read-only: no worker leaves",
    "PrivateUsers": "memward can no longer bind ports below 1024",
    "ProcSubset": "hides /proc/meminfo (the group limit)",
    "DelegateSubgroup": "systemd 254",
    "PrivatePIDs": "systemd 257",
}


def parse_unit(path):
    """{(section, key): [values]} of a unit file (comments and blank lines skipped)."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            out.setdefault((section, key.strip()), []).append(value.strip())
    return out


def install_sed(bindir):
    """The sed script `make install` applies to memward.service, for BINDIR=bindir."""
    with open(os.path.join(lib.REPO, "Makefile")) as f:
        m = re.search(r"sed '(s\|\^ExecStart=[^']*)' packaging/systemd/memward\.service", f.read())
    script = m.group(1) if m else INSTALL_SED_DEFAULT
    if not m:
        print("note: no ExecStart rewrite found in the Makefile; using %s" % INSTALL_SED_DEFAULT)
    return script.replace("$(BINDIR)", bindir)


def rewrite(name, script, out_dir):
    src = os.path.join(UNIT_DIR, name)
    dst = os.path.join(out_dir, name)
    p = subprocess.run(["sed", script, src], capture_output=True, text=True, check=True)
    with open(dst, "w") as f:
        f.write(p.stdout)
    return dst


def verify(paths, env):
    p = subprocess.run(["systemd-analyze", "verify"] + list(paths), capture_output=True, text=True,
                       env=env, timeout=60)
    return p.returncode, (p.stdout + p.stderr).strip()


def check_settings(t):
    for name in SERVICES:
        u = parse_unit(os.path.join(UNIT_DIR, name))
        for key, want in REQUIRED.items():
            got = u.get(("Service", key), [])
            check(got == [want], "%s: %s=%s, want %s" % (name, key, got, want))
        watchdog = u.get(("Service", "WatchdogSec"), [""])[-1]
        check(lib.parse_duration(watchdog), "%s: no WatchdogSec=" % name)
        for key, why in FORBIDDEN.items():
            check(("Service", key) not in u, "%s sets %s= (%s)" % (name, key, why))
    with open(os.path.join(UNIT_DIR, "memward.service")) as f:
        text = f.read()
    for key in ("ProtectControlGroups", "PrivateUsers", "PrivatePIDs"):
        check(re.search(r"^#.*\b%s=" % key, text, re.M),
              "memward.service does not say in a comment why %s= is not used" % key)
    check("ExecStart=/usr/local/bin/memward -c /etc/memward/memward.yaml\n" in text,
          "memward.service: ExecStart= is not '/usr/local/bin/memward -c /etc/memward/memward.yaml'")

    # Stop timeout above the sample config's graceful_timeout, or systemd SIGKILLs workers
    # that memward is still waiting for.
    stop = lib.parse_duration(parse_unit(os.path.join(UNIT_DIR, "memward.service"))
                              [("Service", "TimeoutStopSec")][-1])
    rc, out, err, _ = t.run(["--check-config", "-c", os.path.join(lib.REPO, "config", "memward.yaml")])
    check(rc == 0, "memward --check-config config/memward.yaml: exit %d: %s" % (rc, err))
    m = re.search(r"^\s*graceful_timeout:\s*(\S+)", out, re.M)
    check(m, "no graceful_timeout in --check-config output:\n%s" % out)
    graceful = lib.parse_duration(m.group(1).strip('"'))
    check(stop > graceful, "TimeoutStopSec=%ss is not above graceful_timeout %ss" % (stop, graceful))

    sock = parse_unit(os.path.join(UNIT_DIR, "memward-example.socket"))
    check(sock.get(("Socket", "Service")) == ["memward-example.service"],
          "memward-example.socket does not activate memward-example.service")
    check(sock.get(("Socket", "ListenStream")), "memward-example.socket has no ListenStream=")
    print("settings: %s on both services; TimeoutStopSec=%gs > graceful_timeout %gs"
          % (", ".join("%s=%s" % kv for kv in REQUIRED.items()), stop, graceful))


def test(t):
    if not shutil.which("systemd-analyze"):
        lib.skip("systemd-analyze is not installed (the VM test runs the units for real)")
    version = subprocess.run(["systemd-analyze", "--version"], capture_output=True, text=True).stdout
    print(version.splitlines()[0] if version else "systemd-analyze: unknown version")

    check_settings(t)

    # man pages from the tree
    man = t.path("man")
    for ref, page in MAN_PAGES.items():
        src = os.path.join(lib.REPO, "docs", page)
        check(os.path.exists(src), "the units name man:%s, but docs/%s does not exist" % (ref, page))
        section_dir = os.path.join(man, "man" + page.rsplit(".", 1)[1])
        os.makedirs(section_dir, exist_ok=True)
        os.symlink(src, os.path.join(section_dir, page))
    env = dict(os.environ, MANPATH=man + ":", SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="")

    # Copies with ExecStart= rewritten like `make install` does.
    out_dir = t.path("units")
    os.mkdir(out_dir)
    script = install_sed(os.path.dirname(lib.MEMWARD))
    copies = []
    for name in UNITS:
        dst = rewrite(name, script if name == "memward.service" else
                      "s|^ExecStart=/usr/local/bin/memward |ExecStart=%s |" % lib.MEMWARD, out_dir)
        if name.endswith(".service"):
            execs = parse_unit(dst)[("Service", "ExecStart")]
            check(execs[0].startswith(lib.MEMWARD + " "),
                  "%s: ExecStart= not rewritten to the binary under test: %s" % (name, execs))
        copies.append(dst)

    rc, out = verify(copies, env)
    check(rc == 0 and not out, "systemd-analyze verify %s: exit %d:\n%s" % (" ".join(UNITS), rc, out))
    print("systemd-analyze verify: clean on %s" % " ".join(UNITS))

    # The detector works: a warning-only problem and a hard one are both seen.
    bad_dir = t.path("bad")
    os.mkdir(bad_dir)
    with open(copies[0]) as f:
        text = f.read()
    for label, broken, needle in (
            ("unknown key", text.replace("Delegate=yes\n", "Delegate=yes\nDelegateSubgroup=supervisor\n"),
             "DelegateSubgroup"),
            ("missing binary", text.replace("ExecStart=" + lib.MEMWARD, "ExecStart=/nonexistent/memward"),
             "/nonexistent/memward")):
        path = os.path.join(bad_dir, "memward.service")
        with open(path, "w") as f:
            f.write(broken)
        rc, out = verify([path], env)
        check(out and needle in out, "verify did not report the %s (exit %d): %r" % (label, rc, out))
        print("self-check, %s: %s" % (label, out.splitlines()[0]))


if __name__ == "__main__":
    lib.main(test)
