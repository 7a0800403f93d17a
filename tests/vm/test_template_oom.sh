#!/bin/bash
# test_template_oom.sh — workers.mode: template with worker_max: 100MiB: a forked worker that allocates 200 MiB is OOM-killed alone (memory.oom.group in its leaf); the template and the other workers keep their pids and serve on, memward logs reason=oom and forks the replacement from the same template into a fresh leaf.
# The steps live in tests/vm/memory_vm.py (scenario "template_oom").
# Runs inside the VM only: tests/vm/run tests/vm/test_template_oom.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 ]] || { echo "FAIL: this test changes the root cgroup; run it through tests/vm/run" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/memory_vm.py template_oom
