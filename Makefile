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

PKGS := libsystemd yaml-0.1
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

SRCS := $(sort $(wildcard src/*.c))
OBJS := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
LIB_OBJS := $(filter-out $(BUILD)/obj/main.o,$(OBJS))

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all check unit integration asan vm-check install uninstall clean deps run test-all

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

check: unit integration

# ASan + UBSan: a separate build tree so the two never mix objects.
asan:
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		LDFLAGS="-fsanitize=address,undefined" check

include tests/vm/vm.mk

# The README's two commands.
deps:
	packaging/install-deps build

run: all
	$(BUILD)/memward -c config/memward.yaml

# Everything CI runs: installs what the tests need, then unit + integration,
# the same under ASan/UBSan, and the VM suite on a real cgroup-v2 kernel.
test-all:
	packaging/install-deps test
	$(MAKE) WERROR=1 all
	$(MAKE) WERROR=1 check
	$(MAKE) WERROR=1 asan
	$(MAKE) WERROR=1 vm-check

install: $(BUILD)/memward
	install -Dm755 $(BUILD)/memward $(DESTDIR)$(BINDIR)/memward
	install -Dm644 config/memward.yaml $(DESTDIR)$(SYSCONFDIR)/memward/memward.yaml
	install -Dm644 packaging/systemd/memward.service $(DESTDIR)$(SYSTEMDUNITDIR)/memward.service

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/memward $(DESTDIR)$(SYSTEMDUNITDIR)/memward.service

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(UNIT_BINS:=.d)
