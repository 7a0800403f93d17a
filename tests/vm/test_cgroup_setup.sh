#!/bin/bash
# test_cgroup_setup.sh — memward's cgroup at start-up: stale worker-*/template-* leaves killed and removed before the first worker, worker_high/worker_max as each leaf's memory.high/memory.max, a systemd unit without Delegate=yes in procfs mode (with it, cgroup mode).
# memward runs in /sys/fs/cgroup/app as a systemd unit with Delegate=yes would;
# the steps live in tests/vm/cgroup_setup_vm.py (scenario "setup").
# Runs inside the VM only: tests/vm/run tests/vm/test_cgroup_setup.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 ]] || { echo "FAIL: this test changes the root cgroup; run it through tests/vm/run" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/cgroup_setup_vm.py setup
