# memward — a memory-aware prefork supervisor.
# Plain make + pkg-config. Objects live under build/.

PKG_CONFIG ?= pkg-config
CC ?= cc
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
MANDIR ?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= $(shell $(PKG_CONFIG) --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)

VERSION := 0.1.0
BUILD ?= build

PKGS := libsystemd yaml-0.1 libmicrohttpd
DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS))
DEP_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS))
CMOCKA_CFLAGS := $(shell $(PKG_CONFIG) --cflags cmocka 2>/dev/null)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

WARNINGS := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wwrite-strings -Wformat=2 -Wno-format-nonliteral
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif

CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu11 $(WARNINGS) -Iinclude $(DEP_CFLAGS) \
                   -D_GNU_SOURCE -DMEMWARD_VERSION=\"$(VERSION)\" -MMD -MP
LDLIBS += $(DEP_LIBS)

# src/<layer>/<module>.c; tests/check-layers says which layer may include which.
SRCS := $(sort $(wildcard src/*/*.c))
OBJS := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
LIB_OBJS := $(filter-out $(BUILD)/obj/cli/main.o,$(OBJS))

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all check layers unit python-check integration asan vm-check install uninstall deb clean deps run test-all bench-seed bench-keepalive bench-orphans bench-leak bench-recycle bench-fork

all: $(BUILD)/memward

$(BUILD)/memward: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CMOCKA_CFLAGS) -DFIXTURES_DIR=\"$(CURDIR)/tests/fixtures\" \
		$(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS) $(CMOCKA_LIBS)

unit: $(UNIT_BINS)
	@tests/run-unit $(UNIT_BINS)

integration: $(BUILD)/memward
	@MEMWARD=$(CURDIR)/$(BUILD)/memward tests/integration/run

check: layers unit fuzz-replay python-check integration

# The fork-server's Python runtime (python/README.md): protocol, template, adapters.
PYTHON ?= /usr/bin/python3
python-check:
	$(PYTHON) tests/run-python

# Fails when a lower layer includes a higher one (README: How it is built).
layers:
	@tests/check-layers

# ASan + UBSan: a separate build tree so the two never mix objects.
asan:
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		LDFLAGS="-fsanitize=address,undefined" check

include tests/vm/vm.mk

# ---- fuzzing (tests/fuzz/README.md) ----------------------------------------------------
# `make fuzz` builds every tests/fuzz/fuzz_<target>.c with clang's libFuzzer and ASan/UBSan
# against the library (src/*/*.c but cli/main.c, compiled with clang into build/fuzz/) and runs
# each target for FUZZ_SECONDS, one after the other. `make fuzz-replay` (part of `check`)
# links the same entry points with tests/fuzz/replay.c instead, with gcc, and replays the
# seed corpus and the regression files. The fuzz tree ignores CFLAGS and BUILD so that
# `make asan` and `make check` share one replay build.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS ?=
FUZZ_CC ?= clang
REPLAY_CC ?= gcc
FUZZ_BUILD ?= build/fuzz
FUZZ_TARGETS := $(sort $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_SAN := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -O1 -g -std=gnu11 $(WARNINGS) -Iinclude -Itests/fuzz $(DEP_CFLAGS) -D_GNU_SOURCE \
               -DMEMWARD_VERSION=\"$(VERSION)\" -MMD -MP $(FUZZ_SAN)
FUZZ_LIB_OBJS := $(patsubst src/%.c,$(FUZZ_BUILD)/obj/%.o,$(filter-out src/cli/main.c,$(SRCS)))
REPLAY_LIB_OBJS := $(patsubst src/%.c,$(FUZZ_BUILD)/replay/obj/%.o,$(filter-out src/cli/main.c,$(SRCS)))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
REPLAY_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/replay/replay_%)

.PHONY: fuzz fuzz-build fuzz-replay
# Objects reached only through the pattern rules below: keep them for the next build.
.SECONDARY: $(FUZZ_LIB_OBJS) $(REPLAY_LIB_OBJS) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/obj/fuzz_%.o) \
            $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/replay/obj/fuzz_%.o) $(FUZZ_BUILD)/replay/obj/replay.o

fuzz: fuzz-build
	@FUZZ_FLAGS="$(FUZZ_FLAGS)" tests/fuzz/run-fuzz $(FUZZ_SECONDS) $(FUZZ_BUILD) $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_BINS)

fuzz-replay: $(REPLAY_BINS)
	@tests/fuzz/run-replay $(FUZZ_BUILD)/replay $(FUZZ_TARGETS)

$(FUZZ_BUILD)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/obj/fuzz_%.o: tests/fuzz/fuzz_%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/fuzz_%.o $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(DEP_LIBS)

$(FUZZ_BUILD)/replay/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(REPLAY_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/replay/obj/fuzz_%.o: tests/fuzz/fuzz_%.c
	@mkdir -p $(@D)
	$(REPLAY_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/replay/obj/replay.o: tests/fuzz/replay.c
	@mkdir -p $(@D)
	$(REPLAY_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/replay/replay_%: $(FUZZ_BUILD)/replay/obj/fuzz_%.o $(FUZZ_BUILD)/replay/obj/replay.o $(REPLAY_LIB_OBJS)
	$(REPLAY_CC) $(FUZZ_SAN) -o $@ $^ $(DEP_LIBS)

-include $(wildcard $(FUZZ_BUILD)/obj/*.d $(FUZZ_BUILD)/obj/*/*.d $(FUZZ_BUILD)/replay/obj/*.d $(FUZZ_BUILD)/replay/obj/*/*.d)
# ---- end of fuzzing ----------------------------------------------------------------------

# The README's two commands.
deps:
	packaging/install-deps build

run: all
	$(BUILD)/memward -c config/memward.yaml

# Everything CI runs: installs what the tests need, then unit + integration,
# the same under ASan/UBSan, and the VM suite on a real cgroup-v2 kernel.
# With CI=true (or MEMWARD_TEST_NO_SKIP=1, which .ci/run sets) a skipped test fails the
# run unless tests/skips-allowed lists it.
ifeq ($(CI),true)
test-all: export MEMWARD_TEST_NO_SKIP ?= 1
endif
test-all:
	packaging/install-deps test
	$(MAKE) WERROR=1 all
	$(MAKE) WERROR=1 check
	$(MAKE) WERROR=1 asan
	$(MAKE) WERROR=1 vm-check

# The seeds' workload against gunicorn and uWSGI (bench/seed/README.md); ~6 minutes.
# BENCH_VM=1 runs it inside the tests/vm kernel instead.
bench-seed: $(BUILD)/memward
	MEMWARD=$(CURDIR)/$(BUILD)/memward bench/seed/run

# What finding and killing orphans costs the loop (bench/orphans/README.md); ~1 minute.
bench-orphans: $(BUILD)/memward
	BUILD=$(BUILD) bench/orphans/run

# One keep-alive connection (wrk -c1) to each example, on its own port and behind
# memward (bench/keepalive/README.md); ~2 minutes.
bench-keepalive: $(BUILD)/memward
	MEMWARD=$(CURDIR)/$(BUILD)/memward bench/keepalive/run

# A Flask app leaking through lru_cache(maxsize=None): gunicorn --max-requests against
# the memory policies of examples/gunicorn, exec and template (bench/leak/README.md); ~7 minutes.
bench-leak: $(BUILD)/memward
	MEMWARD=$(CURDIR)/$(BUILD)/memward bench/leak/run

# Requests lost per worker recycle under wrk -c32 keep-alive: memward (exec and
# template) against gunicorn's UvicornWorker and uWSGI (bench/recycle-loss/README.md);
# ~4 minutes.
bench-recycle: $(BUILD)/memward
	MEMWARD=$(CURDIR)/$(BUILD)/memward bench/recycle-loss/run

# Template ("fork-server") mode against gunicorn and uWSGI: memory of the whole tree,
# replacement latency, max_requests at ~1,000 requests/s (bench/fork/README.md); ~6 minutes.
bench-fork: $(BUILD)/memward
	MEMWARD=$(CURDIR)/$(BUILD)/memward bench/fork/run

# Debian's python3 reads /usr/lib/python3/dist-packages (PREFIX=/usr, the .deb) and
# /usr/local/lib/python3.X/dist-packages (PREFIX=/usr/local).
PYTHON_VERSION = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
PYTHONDIR ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/lib/python3/dist-packages,$(PREFIX)/lib/python$(PYTHON_VERSION)/dist-packages)

install: $(BUILD)/memward
	install -Dm755 $(BUILD)/memward $(DESTDIR)$(BINDIR)/memward
	install -d $(DESTDIR)$(PYTHONDIR)/memward
	install -m644 python/memward/*.py $(DESTDIR)$(PYTHONDIR)/memward/
	install -Dm755 python/bin/memward-gunicorn $(DESTDIR)$(BINDIR)/memward-gunicorn
	install -Dm755 python/bin/memward-asgi $(DESTDIR)$(BINDIR)/memward-asgi
	# The sample config only where there is none: a reinstall must not undo the user's edits.
	install -Dm644 config/memward.yaml $(DESTDIR)$(SYSCONFDIR)/memward/memward.yaml.sample
	test -e $(DESTDIR)$(SYSCONFDIR)/memward/memward.yaml || \
		install -m644 config/memward.yaml $(DESTDIR)$(SYSCONFDIR)/memward/memward.yaml
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	sed 's|^ExecStart=[^ ]*/memward |ExecStart=$(BINDIR)/memward |' packaging/systemd/memward.service \
		>$(DESTDIR)$(SYSTEMDUNITDIR)/memward.service
	chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/memward.service
	install -Dm644 docs/memward.8 $(DESTDIR)$(MANDIR)/man8/memward.8
	install -Dm644 docs/memward.yaml.5 $(DESTDIR)$(MANDIR)/man5/memward.yaml.5

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/memward-gunicorn $(DESTDIR)$(BINDIR)/memward-asgi
	rm -rf $(DESTDIR)$(PYTHONDIR)/memward
	rm -f $(DESTDIR)$(BINDIR)/memward $(DESTDIR)$(SYSTEMDUNITDIR)/memward.service \
		$(DESTDIR)$(MANDIR)/man8/memward.8 $(DESTDIR)$(MANDIR)/man5/memward.yaml.5 \
		$(DESTDIR)$(SYSCONFDIR)/memward/memward.yaml.sample

# A binary .deb from packaging/debian/ (debhelper), built in a copy of the source tree
# under $(BUILD)/deb/; the .deb lands in $(BUILD)/deb/. Needs `packaging/install-deps deb`.
# MAKEFLAGS is dropped so that our own command-line variables (BUILD=, -j) do not leak
# into the package build.
DEB_SRC := $(BUILD)/deb/memward-$(VERSION)
deb:
	rm -rf $(BUILD)/deb
	mkdir -p $(DEB_SRC)
	tar -C . --exclude=./build --exclude=./.git --exclude=./$(BUILD) -cf - . | tar -C $(DEB_SRC) -xf -
	rm -rf $(DEB_SRC)/debian && cp -r packaging/debian $(DEB_SRC)/debian
	cd $(DEB_SRC) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL dpkg-buildpackage -b -us -uc -Jauto
	@ls -1 $(BUILD)/deb/*.deb

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(UNIT_BINS:=.d)

# Ten minutes of load, recycles and reloads; prints the numbers docs/reliability.md quotes.
SOAK_SECONDS ?= 600
.PHONY: soak
soak: $(BUILD)/memward
	SOAK_SECONDS=$(SOAK_SECONDS) MEMWARD=$(CURDIR)/$(BUILD)/memward /usr/bin/python3 tests/soak/soak.py
