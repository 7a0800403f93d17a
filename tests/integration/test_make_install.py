"""`make install` (into a DESTDIR) installs the binary, the sample config, the unit
and the man pages, and a reinstall keeps a config the user has edited (Makefile:
"a reinstall must not undo the user's edits"); `make uninstall` leaves it too.

The binary under test is installed as it is (make -o: never rebuilt here)."""

import os
import subprocess

import lib
from lib import check


def make(t, *args):
    build = os.path.dirname(lib.MEMWARD)
    p = subprocess.run(["make", "-s", "-o", lib.MEMWARD, "BUILD=" + build] + list(args), cwd=lib.REPO,
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, "make %s: exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test(t):
    dest = t.path("root")
    args = ["DESTDIR=" + dest, "PREFIX=/opt/mw", "SYSTEMDUNITDIR=/lib/systemd/system"]
    make(t, "install", *args)
    conf = os.path.join(dest, "etc/memward/memward.yaml")
    sample = conf + ".sample"
    binary = os.path.join(dest, "opt/mw/bin/memward")
    unit = os.path.join(dest, "lib/systemd/system/memward.service")
    shipped = read(os.path.join(lib.REPO, "config/memward.yaml"))
    check(read(binary) == read(lib.MEMWARD) and os.access(binary, os.X_OK), "bin/memward is not the binary built")
    check(read(conf) == shipped and read(sample) == shipped, "the config and its sample are not config/memward.yaml")
    check(b"\nExecStart=/opt/mw/bin/memward " in read(unit), "the unit does not run /opt/mw/bin/memward")
    for man in ("opt/mw/share/man/man8/memward.8", "opt/mw/share/man/man5/memward.yaml.5"):
        check(os.path.exists(os.path.join(dest, man)), "no %s" % man)

    edited = shipped.replace(b"count: 4", b"count: 7") + b"# edited by the admin\n"
    check(edited.count(b"count: 7") == 1, "config/memward.yaml has no 'count: 4' to edit")
    with open(conf, "wb") as f:
        f.write(edited)
    os.utime(sample, (0, 0))
    make(t, "install", *args)
    check(read(conf) == edited, "a reinstall overwrote the edited config")
    check(read(sample) == shipped and os.stat(sample).st_mtime > 0, "the reinstall did not refresh the sample")

    make(t, "uninstall", *args)
    check(read(conf) == edited, "make uninstall removed or changed the edited config")
    check(not os.path.exists(sample) and not os.path.exists(binary) and not os.path.exists(unit),
          "make uninstall left the sample, the binary or the unit")
    print("install, edit, reinstall: the edited config kept, the sample refreshed; uninstall keeps the config")


if __name__ == "__main__":
    lib.main(test)
