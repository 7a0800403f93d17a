#!/bin/bash
# test_memory_metric.sh — memory.metric current in cgroup mode: a worker whose leaf holds 32 MiB of shared memory is recycled at retained_max 20MiB with metric current, never with metric anon.
# memward runs in /sys/fs/cgroup/app as a systemd unit with Delegate=yes would;
# the steps live in tests/vm/metric_vm.py (scenario "current").
# Runs inside the VM only: tests/vm/run tests/vm/test_memory_metric.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 ]] || { echo "FAIL: this test changes the root cgroup; run it through tests/vm/run" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/metric_vm.py current
