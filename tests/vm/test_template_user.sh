#!/bin/bash
# test_template_user.sh — memward as root with workers.user nobody in workers.mode: template (the Python runtime, memward-gunicorn) and cgroup mode: the template runs as nobody and may not move processes between memward's leaves, so memward places each forked worker itself (PLACE/PLACED, docs/fork-server.md §3); every worker runs as nobody, alone in its own leaf before its first app code runs, and what it allocates is charged to its leaf, not the template's.
# The steps live in tests/vm/memory_vm.py (scenario "template_user").
# Runs inside the VM only: tests/vm/run tests/vm/test_template_user.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 ]] || { echo "FAIL: this test changes the root cgroup; run it through tests/vm/run" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/memory_vm.py template_user
