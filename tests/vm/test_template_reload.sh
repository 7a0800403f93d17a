#!/bin/bash
# test_template_reload.sh — workers.mode: template in cgroup mode, SIGHUP under load with changed code: a new template in template-2, every worker forked from it into a fresh leaf, the old workers' leaves removed and template-1 once the last of them exited, the response changed, no failed request.
# The steps live in tests/vm/memory_vm.py (scenario "template_reload").
# Runs inside the VM only: tests/vm/run tests/vm/test_template_reload.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 ]] || { echo "FAIL: this test changes the root cgroup; run it through tests/vm/run" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/memory_vm.py template_reload
