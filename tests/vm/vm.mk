# tests/vm/vm.mk — included by the top-level Makefile.
# `make vm-check` boots Debian's 6.1 kernel under QEMU (pure cgroup v2, host
# root shared read-only over 9p) and runs every tests/vm/test_*.sh inside it,
# one VM each.  See tests/vm/README.md.
#   VM_TESTS     tests to run (default: all of tests/vm/test_*.sh)
#   VM_RUN_ARGS  extra tests/vm/run options, e.g. --timeout 120
#   VM_VERBOSE=1 stream each test's output

VM_TESTS ?=
VM_RUN_ARGS ?=

vm-check: $(BUILD)/memward
	@MEMWARD='$(BUILD)/memward' VM_RUN_ARGS='$(VM_RUN_ARGS)' \
		tests/vm/run-all $(if $(filter 1,$(VM_VERBOSE)),-v) $(VM_TESTS)
