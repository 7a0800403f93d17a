#!/bin/bash
# test_cgroup_basics.sh — proves the VM shows what memward needs: a pure
# cgroup-v2 kernel with the memory controller, memory.current accounting of a
# process moved into a child cgroup, and a PSI trigger on that cgroup's
# memory.pressure that fires (POLLPRI) when memory.high squeezes it.
# Runs inside the VM only: tests/vm/run tests/vm/test_cgroup_basics.sh
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

[[ ${MEMWARD_VM:-} == 1 ]] || fail "this test changes the root cgroup; run it through tests/vm/run"

CG=/sys/fs/cgroup
PY=/usr/bin/python3

[[ $(stat -fc %T "$CG") == cgroup2fs ]] ||
    fail "$CG is $(stat -fc %T "$CG"), not cgroup2"
v1=$(awk '$3 == "cgroup" { print; exit }' /proc/mounts)
[[ -z $v1 ]] || fail "a cgroup v1 hierarchy is mounted: $v1"
grep -qw memory "$CG/cgroup.controllers" ||
    fail "no memory controller in $CG/cgroup.controllers: '$(cat "$CG/cgroup.controllers")'"
[[ -r /proc/pressure/memory ]] || fail "no /proc/pressure/memory: PSI is off (psi=1 missing?)"
ok "pure cgroup v2 with the memory controller and PSI"

echo +memory >"$CG/cgroup.subtree_control" || fail "cannot enable +memory in $CG/cgroup.subtree_control"
grep -qw memory "$CG/cgroup.subtree_control" || fail "+memory did not stick in cgroup.subtree_control"

CHILD=$CG/vm-test-$$
mkdir "$CHILD" || fail "cannot create $CHILD"
cleanup() {
    echo max >"$CHILD/memory.high" 2>/dev/null || true
    # The hog is gone with the driver; wait for the cgroup to empty.
    for _ in $(seq 50); do
        [[ -s $CHILD/cgroup.procs ]] || break
        xargs -r kill -9 <"$CHILD/cgroup.procs" 2>/dev/null || true
        sleep 0.1
    done
    rmdir "$CHILD" 2>/dev/null || echo "warning: could not remove $CHILD" >&2
}
trap cleanup EXIT
for f in memory.current memory.high memory.pressure memory.events; do
    [[ -e $CHILD/$f ]] || fail "$CHILD/$f missing: memory controller not enabled for children"
done
ok "child cgroup $CHILD has memory.current, memory.high, memory.pressure"

# The driver stays in the root cgroup so the squeeze never throttles it; the
# hog it spawns moves itself into the child cgroup.
"$PY" - "$CHILD" <<'EOF'
import os, select, subprocess, sys, time

cg = sys.argv[1]
MiB = 1 << 20

def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def read(name):
    with open(os.path.join(cg, name)) as f:
        return f.read()

def write(name, text):
    with open(os.path.join(cg, name), "w") as f:
        f.write(text)

HOG = r'''
import os, sys
with open(os.path.join(sys.argv[1], "cgroup.procs"), "w") as f:
    f.write(str(os.getpid()))
chunks = [bytearray(b"\xa5") * (64 << 20)]          # filled, so resident
print("allocated", flush=True)
sys.stdin.readline()
chunks.append(bytearray(b"\x5a") * (64 << 20))      # past memory.high: stalls
print("done", flush=True)
sys.stdin.readline()
'''
hog = subprocess.Popen([sys.executable, "-c", HOG, cg], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, text=True)

def expect(word, timeout):
    r, _, _ = select.select([hog.stdout], [], [], timeout)
    line = hog.stdout.readline().strip() if r else ""
    if line != word:
        hog.kill()
        fail("hog did not report '%s' within %ds (got %r, exit %s)"
             % (word, timeout, line, hog.poll()))

try:
    expect("allocated", 60)
    procs = read("cgroup.procs").split()
    if str(hog.pid) not in procs:
        fail("hog pid %d not in %s/cgroup.procs: %s" % (hog.pid, cg, procs))
    cur = int(read("memory.current"))
    print("ok: hog in the child cgroup, memory.current = %.1f MiB" % (cur / MiB))
    if cur < 60 * MiB:
        fail("memory.current is %.1f MiB after a 64 MiB allocation, expected >= 60 MiB"
             % (cur / MiB))

    fd = os.open(os.path.join(cg, "memory.pressure"), os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.write(fd, b"some 50000 1000000")
    except OSError as e:
        fail("writing the PSI trigger to memory.pressure: %s" % e)
    p = select.poll()
    p.register(fd, select.POLLPRI)
    if any(ev & select.POLLPRI for _, ev in p.poll(0)):
        fail("PSI trigger fired before any squeeze")
    print("ok: PSI trigger 'some 50000 1000000' armed, quiet before the squeeze")

    # Squeeze: memory.high below the working set, then make the hog allocate
    # more.  Without swap it is throttled for a long time, so lift the limit
    # as soon as the trigger has fired.
    write("memory.high", str(32 * MiB))
    t0 = time.monotonic()
    hog.stdin.write("more\n")
    hog.stdin.flush()
    events = p.poll(30000)
    waited = time.monotonic() - t0
    write("memory.high", "max")
    if not any(ev & select.POLLPRI for _, ev in events):
        fail("PSI trigger did not fire within 30 s of squeezing with memory.high=32M "
             "(memory.pressure: %s)" % read("memory.pressure").replace("\n", "; "))
    print("ok: PSI trigger fired (POLLPRI) %.2f s after the squeeze; memory.high lifted" % waited)

    expect("done", 120)
    high = dict(l.split() for l in read("memory.events").splitlines()).get("high", "0")
    if int(high) < 1:
        fail("memory.events shows no 'high' event after the squeeze")
    print("ok: hog finished after the lift; memory.events high=%s" % high)
    os.close(fd)
finally:
    if hog.poll() is None:
        hog.kill()
    hog.wait()
EOF
echo "PASS: cgroup v2 memory accounting and PSI triggers work"
