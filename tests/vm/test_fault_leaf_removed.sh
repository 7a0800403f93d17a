#!/bin/bash
# test_fault_leaf_removed.sh — a worker's leaf removed behind memward's back (moved out + rmdir, or cgroup.kill + rmdir): cgroup_leaf_lost, no busy loop, the slot gets a new worker.
# memward runs in /sys/fs/cgroup/app as a systemd unit with Delegate=yes would;
# the steps live in tests/vm/fault_vm.py (scenario "leaf_removed").
# Runs inside the VM only: tests/vm/run tests/vm/test_fault_leaf_removed.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
# vm-run: --timeout 240
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 ]] || { echo "FAIL: this test changes the root cgroup; run it through tests/vm/run" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/fault_vm.py leaf_removed
