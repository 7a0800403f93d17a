/* Time and size units of the configuration language: "30s", "512MiB". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t usec_t;

#define USEC_INFINITY ((usec_t) UINT64_MAX)
#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_PER_SEC ((usec_t) 1000000ULL)
#define NSEC_PER_USEC ((uint64_t) 1000ULL)

/* Parses a duration: an unsigned integer followed by one of "us", "ms", "s", "m", "h"
 * ("0" alone is accepted without a unit). Returns 0, -EINVAL for bad syntax or unit,
 * -ERANGE on overflow. */
int parse_duration(const char *s, usec_t *ret);

/* Parses a size: an unsigned integer followed by an optional unit out of
 * "B", "K", "KiB", "M", "MiB", "G", "GiB" (binary multiples). Returns 0, -EINVAL, -ERANGE. */
int parse_size(const char *s, uint64_t *ret);

/* Formats a duration in the largest unit that represents it exactly ("90s", "1500ms").
 * buf must hold at least FORMAT_DURATION_MAX bytes. Returns buf. */
#define FORMAT_DURATION_MAX 32
char *format_duration(char *buf, size_t size, usec_t usec);

/* Formats a size in the largest binary unit that represents it exactly ("512MiB"). */
#define FORMAT_SIZE_MAX 32
char *format_size(char *buf, size_t size, uint64_t bytes);

/* CLOCK_MONOTONIC / CLOCK_REALTIME in microseconds. */
usec_t now_monotonic(void);
usec_t now_realtime(void);
