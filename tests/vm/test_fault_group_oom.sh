#!/bin/bash
# test_fault_group_oom.sh — the group's memory.max lowered below the workers' total, then below what a worker needs, then raised: OOM kills stay in worker leaves, reason=oom, backoff, full recovery.
# memward runs in /sys/fs/cgroup/app as a systemd unit with Delegate=yes would;
# the steps live in tests/vm/fault_vm.py (scenario "group_oom").
# Runs inside the VM only: tests/vm/run tests/vm/test_fault_group_oom.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
# vm-run: --timeout 240
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 ]] || { echo "FAIL: this test changes the root cgroup; run it through tests/vm/run" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/fault_vm.py group_oom
