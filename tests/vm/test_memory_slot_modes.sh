#!/bin/bash
# test_memory_slot_modes.sh — one threshold means the same in both accounting modes: a gunicorn slot (arbiter + sync worker, examples/gunicorn) reads within 15 % in cgroup mode (its leaf's memory.stat anon) and procfs mode (Pss_Anon summed), and procfs mode no longer counts the pages the two share twice.
# memward runs once in /sys/fs/cgroup/app (delegated, with +memory) and once in a
# cgroup without the memory controller; the steps live in tests/vm/memory_vm.py
# (scenario "slot_modes").
# Runs inside the VM only: tests/vm/run tests/vm/test_memory_slot_modes.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 ]] || { echo "FAIL: this test changes the root cgroup; run it through tests/vm/run" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/memory_vm.py slot_modes
