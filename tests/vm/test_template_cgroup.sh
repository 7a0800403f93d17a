#!/bin/bash
# test_template_cgroup.sh — workers.mode: template in cgroup mode: the template in its own leaf template-<generation>, each forked worker alone in its worker-<slot>-<generation> leaf, shared pages charged to the template's leaf and a worker's own allocation to its leaf, a killed template's leaf kept, empty, while its workers serve on (its pages they map stay charged there), no leaf left after SIGTERM, memory.group_high counting the template's leaf.
# The steps live in tests/vm/memory_vm.py (scenario "template").
# Runs inside the VM only: tests/vm/run tests/vm/test_template_cgroup.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 ]] || { echo "FAIL: this test changes the root cgroup; run it through tests/vm/run" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/memory_vm.py template
