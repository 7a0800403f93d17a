#!/bin/bash
# vm-run: --init systemd --timeout 420
# test_systemd_journal_stall.sh — systemd-journald stopped (SIGSTOP) for 60 s while
# memward.service logs far more than journald's socket queues: memward keeps sending
# WATCHDOG=1 (systemd never restarts it), /healthz answers within 1 s, workers serve,
# a killed worker is replaced; the dropped entries are counted in /metrics and, once
# journald runs again, told in a log_lines_dropped entry. The steps live in
# tests/vm/journal_stall_vm.py.
# Runs inside the VM only: tests/vm/run tests/vm/test_systemd_journal_stall.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 && ${MEMWARD_VM_INIT:-} == systemd ]] ||
    { echo "FAIL: needs systemd as PID 1: run it through tests/vm/run (its # vm-run: line asks for --init systemd)" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/journal_stall_vm.py
