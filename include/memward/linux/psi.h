/* Pressure stall information (Documentation/accounting/psi.rst): parsing the
 * "some"/"full" lines and registering triggers that epoll reports with EPOLLPRI. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memward/base/units.h"

enum psi_kind {
        PSI_SOME,
        PSI_FULL,
};

struct psi_line {
        double avg10, avg60, avg300;    /* percent */
        uint64_t total;                 /* microseconds stalled since boot */
};

struct psi_stats {
        struct psi_line some;
        struct psi_line full;
        bool has_full;                  /* the system-wide cpu file has no "full" line on old kernels */
};

/* Parses a memory.pressure or /proc/pressure/memory text. Returns 0 or -EBADMSG. */
int psi_parse(const char *text, size_t length, struct psi_stats *ret);

/* Unprivileged triggers (no CAP_SYS_RESOURCE) must use a window that is a multiple of
 * 2 s (psi.rst: "an unprivileged user can only use windows that are multiples of 2s").
 * Returns the smallest such window >= window, at most PSI_WINDOW_MAX. */
#define PSI_WINDOW_MIN (500 * USEC_PER_MSEC)
#define PSI_WINDOW_MAX (10 * USEC_PER_SEC)
usec_t psi_round_window_unprivileged(usec_t window);

/* Formats the trigger text "some 150000 1000000" that the kernel expects. */
int psi_trigger_format(enum psi_kind kind, usec_t stall, usec_t window, char *buf, size_t size);

/* The stall that keeps stall/window's share of time in a window rounded up to rounded
 * (rounded up to the next microsecond, at most rounded). */
usec_t psi_scale_stall(usec_t stall, usec_t window, usec_t rounded);

/* Opens path (a memory.pressure file) and registers the trigger. When the kernel
 * refuses the window (EINVAL, unprivileged), retries once with the rounded window and
 * the stall scaled to it, and reports both through ret_stall and ret_window. Returns the
 * fd (poll for EPOLLPRI) or a negative errno. */
int psi_trigger_open(const char *path, enum psi_kind kind, usec_t stall, usec_t window, usec_t *ret_stall,
                     usec_t *ret_window);
