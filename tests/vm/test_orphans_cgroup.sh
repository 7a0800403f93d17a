#!/bin/bash
# test_orphans_cgroup.sh — issue 16 §3 in cgroup mode: 200 setsid()'d children of a worker that ignore SIGTERM and keep the listening socket die with its leaf when it is stopped, none outlives memward, and a second memward binds the port at once; a worker that gets no leaf has its 50 children killed as orphans when it stops.
# memward runs in /sys/fs/cgroup/app as a systemd unit with Delegate=yes would;
# the steps live in tests/vm/memory_vm.py (scenario "setsid"): one Python
# interpreter for the whole test, since each start costs about a second under TCG.
# Runs inside the VM only: tests/vm/run tests/vm/test_orphans_cgroup.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 ]] || { echo "FAIL: this test changes the root cgroup; run it through tests/vm/run" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/memory_vm.py setsid
