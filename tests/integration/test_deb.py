# runner-timeout: 400
"""`make deb` builds a .deb that installs a working memward.

Builds the package with `make deb BUILD=<tmp>` (a copy of the source tree under the
temporary directory, so the shared build/ is left alone), unpacks it with `dpkg -x` into
a temporary root (never into the real system) and checks:
  * <root>/usr/bin/memward --version prints the version of packaging/debian/changelog;
  * --check-config -c <root>/etc/memward/memward.yaml passes;
  * /etc/memward/memward.yaml is a conffile (dpkg-deb --info);
  * the unit is at /lib/systemd/system/memward.service with ExecStart=/usr/bin/memward
    and otherwise the same as packaging/systemd/memward.service;
  * both man pages are there, and the package depends on the runtime libraries.

Skips when dpkg-buildpackage or debhelper is missing and `packaging/install-deps deb`
cannot install them.
"""

import glob
import os
import re
import shutil
import subprocess

import lib
from lib import check

INSTALL_DEPS = os.path.join(lib.REPO, "packaging", "install-deps")
CHANGELOG = os.path.join(lib.REPO, "packaging", "debian", "changelog")
UNIT = os.path.join(lib.REPO, "packaging", "systemd", "memward.service")
CONFFILE = "/etc/memward/memward.yaml"


def have_tools():
    return all(shutil.which(t) for t in ("dpkg-buildpackage", "dh", "dpkg-deb", "fakeroot"))


def clean_env():
    """The environment without an outer make's jobserver and variables."""
    env = dict(os.environ)
    for var in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "BUILD"):
        env.pop(var, None)
    return env


def run(argv, timeout=60, **kw):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout, **kw)
    return p.returncode, p.stdout, p.stderr


def test(t):
    if not have_tools():
        try:
            run([INSTALL_DEPS, "deb"], timeout=600)
        except (OSError, subprocess.SubprocessError):
            pass
    if not have_tools():
        lib.skip("dpkg-buildpackage/debhelper missing and `packaging/install-deps deb` "
                 "could not install them")

    build = t.path("build")
    rc, out, err = run(["make", "-s", "-C", lib.REPO, "deb", "BUILD=" + build],
                       timeout=300, env=clean_env())   # a full build: minutes on a loaded machine
    check(rc == 0, "make deb: exit %s\n%s\n%s" % (rc, out[-4000:], err[-4000:]))
    debs = [d for d in glob.glob(os.path.join(build, "deb", "memward_*.deb"))]
    check(len(debs) == 1, "expected one memward_*.deb under %s/deb, found %s" % (build, debs))
    deb = debs[0]

    with open(CHANGELOG, encoding="utf-8") as f:
        m = re.match(r"memward \(([^)]+)\)", f.readline())
    check(m, "cannot read the version from %s" % CHANGELOG)
    version = m.group(1).split("-")[0]
    check(os.path.basename(deb).startswith("memward_%s_" % m.group(1)),
          "%s is not version %s" % (deb, m.group(1)))

    # Metadata: conffile, dependencies.
    rc, conffiles, err = run(["dpkg-deb", "--info", deb, "conffiles"])
    check(rc == 0 and CONFFILE in conffiles.split(),
          "%s is not a conffile: dpkg-deb --info conffiles says %r %s" % (CONFFILE, conffiles, err))
    rc, depends, err = run(["dpkg-deb", "--field", deb, "Depends"])
    check(rc == 0, "dpkg-deb --field Depends: %s" % err)
    for lib_pkg in ("libsystemd0", "libyaml-0-2", "libmicrohttpd12"):
        check(lib_pkg in depends, "Depends lacks %s: %s" % (lib_pkg, depends))

    # Contents, unpacked into a scratch root.
    root = t.path("root")
    rc, _, err = run(["dpkg", "-x", deb, root])
    check(rc == 0, "dpkg -x: %s" % err)
    binary = os.path.join(root, "usr", "bin", "memward")
    check(os.access(binary, os.X_OK), "no executable /usr/bin/memward in the package")

    rc, out, err = run([binary, "--version"], timeout=10, cwd=t.dir)
    check(rc == 0 and out.strip() == "memward %s" % version,
          "--version: exit %s, %r (want \"memward %s\") %s" % (rc, out, version, err))

    config = os.path.join(root, CONFFILE.lstrip("/"))
    rc, out, err = run([binary, "--check-config", "-c", config], timeout=10, cwd=t.dir)
    check(rc == 0, "--check-config -c %s: exit %s\n%s" % (config, rc, err))
    check(re.search(r"^workers:", out, re.M), "--check-config printed no workers:\n%s" % out)

    unit = os.path.join(root, "lib", "systemd", "system", "memward.service")
    check(os.path.exists(unit), "no /lib/systemd/system/memward.service in the package")
    with open(unit, encoding="utf-8") as f:
        shipped = f.read()
    check(re.search(r"^ExecStart=/usr/bin/memward ", shipped, re.M),
          "the unit's ExecStart is not /usr/bin/memward:\n%s" % shipped)
    with open(UNIT, encoding="utf-8") as f:
        source = f.read()
    strip_exec = re.compile(r"^ExecStart=.*$", re.M)
    check(strip_exec.sub("", shipped) == strip_exec.sub("", source),
          "the shipped unit differs from %s in more than ExecStart" % UNIT)

    for page in ("usr/share/man/man8/memward.8.gz", "usr/share/man/man5/memward.yaml.5.gz"):
        check(os.path.exists(os.path.join(root, page)), "no /%s in the package" % page)

    # The fork-server's Python runtime: the package where Debian's python3 finds it, and
    # the commands, which import it from there (not from this source tree).
    for command in ("memward-gunicorn", "memward-asgi"):
        check(os.access(os.path.join(root, "usr", "bin", command), os.X_OK), "no /usr/bin/%s" % command)
    package = os.path.join(root, "usr", "lib", "python3", "dist-packages", "memward")
    check(os.path.exists(os.path.join(package, "template.py")), "no memward package under %s" % package)
    rc, out, err = run(["/usr/bin/python3", "-c", "import memward.protocol, memward.template; "
                        "print(memward.template.__file__)"], timeout=20, cwd=t.dir,
                       env=dict(clean_env(), PYTHONPATH=os.path.dirname(package)))
    check(rc == 0 and out.strip().startswith(package), "import memward from the package: %r %s" % (out, err))
    print("%s: version %s, conffile %s, unit, man pages" % (os.path.basename(deb), version,
                                                             CONFFILE))


if __name__ == "__main__":
    lib.main(test)
