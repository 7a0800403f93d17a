#!/bin/bash
# test_memory_oom.sh — worker_max: 100MiB and a 200 MiB allocation: the kernel OOM-kills that worker alone (memory.oom.group), memward logs reason=oom, survives, the other worker serves on and the slot respawns.
# memward runs in /sys/fs/cgroup/app as a systemd unit with Delegate=yes would;
# the steps live in tests/vm/memory_vm.py (scenario "oom"): one Python
# interpreter for the whole test, since each start costs about a second under TCG.
# Runs inside the VM only: tests/vm/run tests/vm/test_memory_oom.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 ]] || { echo "FAIL: this test changes the root cgroup; run it through tests/vm/run" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/memory_vm.py oom
