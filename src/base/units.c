/* Time and size units of the configuration language. See units.h for the contract.
 *
 * The grammar is deliberately small: an unsigned decimal integer immediately followed by
 * one unit. No signs, no fractions, no spaces, no compound forms ("1m30s"): every value has
 * exactly one spelling that format_duration()/format_size() can produce again. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "memward/base/macro.h"
#include "memward/base/units.h"

struct unit {
        const char *suffix;
        uint64_t factor;
};

static const struct unit duration_units[] = {
        { "us", 1 },
        { "ms", USEC_PER_MSEC },
        { "s", USEC_PER_SEC },
        { "m", 60 * USEC_PER_SEC },
        { "h", 3600 * USEC_PER_SEC },
};

static const struct unit size_units[] = {
        { "B", 1 },
        { "K", 1ULL << 10 },   { "KiB", 1ULL << 10 },
        { "M", 1ULL << 20 },   { "MiB", 1ULL << 20 },
        { "G", 1ULL << 30 },   { "GiB", 1ULL << 30 },
};

/* Reads the leading decimal digits of s. *ret_end points after them. An overflow is
 * remembered in *ret_overflow rather than returned at once, so that "999…9xyz" is
 * reported as a bad unit (-EINVAL) and not as a range error. */
static int parse_digits(const char *s, uint64_t *ret, const char **ret_end, bool *ret_overflow) {
        uint64_t n = 0;
        bool overflow = false;
        const char *p = s;

        if (*p < '0' || *p > '9')
                return -EINVAL;

        for (; *p >= '0' && *p <= '9'; p++) {
                unsigned d = (unsigned) (*p - '0');
                if (n > (UINT64_MAX - d) / 10)
                        overflow = true;
                else
                        n = n * 10 + d;
        }

        *ret = n;
        *ret_end = p;
        *ret_overflow = overflow;
        return 0;
}

static int parse_with_units(const char *s, const struct unit *units, size_t n_units, bool bare_ok,
                            uint64_t *ret) {
        const char *end;
        uint64_t n, factor = 0;
        bool overflow;
        int r;

        assert(s);
        assert(ret);

        r = parse_digits(s, &n, &end, &overflow);
        if (r < 0)
                return r;

        if (*end == '\0') {
                /* A duration needs a unit unless it is zero: "30" is ambiguous, "0" is not. */
                if (!bare_ok && (overflow || n != 0))
                        return -EINVAL;
                factor = 1;
        } else {
                for (size_t i = 0; i < n_units; i++)
                        if (streq(end, units[i].suffix)) {
                                factor = units[i].factor;
                                break;
                        }
                if (factor == 0)
                        return -EINVAL;
        }

        if (overflow || n > UINT64_MAX / factor)
                return -ERANGE;

        *ret = n * factor;
        return 0;
}

int parse_duration(const char *s, usec_t *ret) {
        uint64_t v;
        int r;

        r = parse_with_units(s, duration_units, ELEMENTSOF(duration_units), false, &v);
        if (r < 0)
                return r;
        /* UINT64_MAX is USEC_INFINITY, a sentinel, never a value someone wrote. */
        if (v == USEC_INFINITY)
                return -ERANGE;

        *ret = v;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        return parse_with_units(s, size_units, ELEMENTSOF(size_units), true, ret);
}

int parse_size_si(const char *s, uint64_t *ret_bytes, uint64_t *ret_nearest, const char **ret_nearest_unit) {
        static const struct { const char *si, *iec; uint64_t si_factor, iec_factor; } ranks[] = {
                { "kB", "B", 1000ULL, 1 },
                { "MB", "KiB", 1000ULL * 1000, 1ULL << 10 },
                { "GB", "MiB", 1000ULL * 1000 * 1000, 1ULL << 20 },
        };
        const char *end;
        uint64_t n;
        bool overflow;
        int r;

        assert(s);

        r = parse_digits(s, &n, &end, &overflow);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(ranks); i++) {
                if (!streq(end, ranks[i].si))
                        continue;
                if (overflow || n > UINT64_MAX / ranks[i].si_factor)
                        return -ERANGE;
                uint64_t bytes = n * ranks[i].si_factor;
                uint64_t f = ranks[i].iec_factor;
                uint64_t nearest = bytes / f + (f > 1 && bytes % f >= f / 2);
                *ret_bytes = bytes;
                *ret_nearest = nearest > 0 ? nearest : 1;
                *ret_nearest_unit = ranks[i].iec;
                return 0;
        }
        return -EINVAL;
}

char *format_duration(char *buf, size_t size, usec_t usec) {
        static const struct unit largest_first[] = {
                { "h", 3600 * USEC_PER_SEC },
                { "m", 60 * USEC_PER_SEC },
                { "s", USEC_PER_SEC },
                { "ms", USEC_PER_MSEC },
                { "us", 1 },
        };

        assert(buf);

        if (usec == 0)
                snprintf(buf, size, "0");
        else if (usec == USEC_INFINITY)
                snprintf(buf, size, "infinity");
        else
                for (size_t i = 0; i < ELEMENTSOF(largest_first); i++)
                        if (usec % largest_first[i].factor == 0) {
                                snprintf(buf, size, "%" PRIu64 "%s", usec / largest_first[i].factor,
                                         largest_first[i].suffix);
                                break;
                        }
        return buf;
}

char *format_size(char *buf, size_t size, uint64_t bytes) {
        static const struct unit largest_first[] = {
                { "GiB", 1ULL << 30 },
                { "MiB", 1ULL << 20 },
                { "KiB", 1ULL << 10 },
                { "B", 1 },
        };

        assert(buf);

        if (bytes == 0)
                snprintf(buf, size, "0");
        else
                for (size_t i = 0; i < ELEMENTSOF(largest_first); i++)
                        if (bytes % largest_first[i].factor == 0) {
                                snprintf(buf, size, "%" PRIu64 "%s", bytes / largest_first[i].factor,
                                         largest_first[i].suffix);
                                break;
                        }
        return buf;
}

static usec_t now_clock(clockid_t clock) {
        struct timespec ts;

        /* clock_gettime() cannot fail for these clocks with a valid pointer; should it
         * anyway, 0 is an obviously wrong time rather than uninitialised stack. */
        if (clock_gettime(clock, &ts) < 0)
                return 0;

        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / NSEC_PER_USEC;
}

usec_t now_monotonic(void) {
        return now_clock(CLOCK_MONOTONIC);
}

usec_t now_realtime(void) {
        return now_clock(CLOCK_REALTIME);
}
