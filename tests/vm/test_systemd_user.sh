#!/bin/bash
# vm-run: --init systemd --timeout 480
# test_systemd_user.sh — workers.user under a real systemd 252 with Delegate=yes: the
# shipped unit (memward root) running its workers as nobody:nogroup with umask 0027 in
# their delegated leaves, a unix socket 0660 root:nogroup, recycles that stay nobody;
# the same unit with User=nobody (systemd hands the subtree to nobody, nothing to
# switch); and with User=nobody plus workers.user: root, a start refused with exit 1.
# The steps live in tests/vm/systemd_user_vm.py.
# Runs inside the VM only: tests/vm/run tests/vm/test_systemd_user.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 && ${MEMWARD_VM_INIT:-} == systemd ]] ||
    { echo "FAIL: needs systemd as PID 1: run it through tests/vm/run (its # vm-run: line asks for --init systemd)" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/systemd_user_vm.py
