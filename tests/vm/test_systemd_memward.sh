#!/bin/bash
# vm-run: --init systemd --timeout 480
# test_systemd_memward.sh — memward as a real systemd 252 service: Type=notify start
# only once the workers are ready, worker leaves in the delegated unit cgroup with
# memward in supervisor/, `systemctl reload` rolling every worker under load with no
# failed request, `journalctl MEMWARD_REASON=...`, a SIGSTOPped memward restarted by
# the watchdog, socket activation through memward-example.socket, and a stop that
# leaves no process and no cgroup.
# The "# vm-run:" line above makes tests/vm/run boot systemd as PID 1 (on a tmpfs
# overlay of the host root) and run this script as a service; the steps live in
# tests/vm/systemd_vm.py, one Python interpreter for the whole test.
# Runs inside the VM only: tests/vm/run tests/vm/test_systemd_memward.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
set -euo pipefail

[[ ${MEMWARD_VM:-} == 1 && ${MEMWARD_VM_INIT:-} == systemd ]] ||
    { echo "FAIL: needs systemd as PID 1: run it through tests/vm/run (its # vm-run: line asks for --init systemd)" >&2; exit 1; }
[[ -x ${MEMWARD:-build/memward} ]] || { echo "FAIL: ${MEMWARD:-build/memward} is missing: run 'make' on the host first" >&2; exit 1; }
exec /usr/bin/python3 tests/vm/systemd_vm.py
