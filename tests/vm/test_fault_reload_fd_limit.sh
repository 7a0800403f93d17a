#!/bin/bash
# test_fault_reload_fd_limit.sh — a SIGHUP that asks for more workers than the open-files limit allows is refused (event=fd_limit_too_low, reload_failed) and the running workers keep serving; one that fits is taken.
# memward runs in /sys/fs/cgroup/app as a systemd unit with Delegate=yes would;
# the steps live in tests/vm/fault_vm.py (scenario "reload_fd_limit").
# Runs inside the VM only: tests/vm/run tests/vm/test_fault_reload_fd_limit.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
# vm-run: --timeout 240
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 ]] || { echo "FAIL: this test changes the root cgroup; run it through tests/vm/run" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/fault_vm.py reload_fd_limit
