#!/bin/bash
# test_template_user_faults.sh — placement by memward (docs/fork-server.md §3.1) with the minimal test template, memward as root, workers.user nobody, cgroup mode: the workers of a template that offers PLACE=1 placed by memward; a PLACE naming a process that is not the template's child is reason=bad_pid; a template dying right after its PLACE is no protocol error and leaves no template leaf; a SPAWNED that skips the PLACE is reason=unexpected_message and its unplaced worker dies; a template that does not offer PLACE=1 is warned about and its spawns fail with EACCES.
# The steps live in tests/vm/memory_vm.py (scenario "template_user_faults").
# Runs inside the VM only: tests/vm/run tests/vm/test_template_user_faults.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 ]] || { echo "FAIL: this test changes the root cgroup; run it through tests/vm/run" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/memory_vm.py template_user_faults
