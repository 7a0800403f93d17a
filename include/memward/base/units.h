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

/* memward's sizes are binary (IEC) only. Someone who writes "96MB" may mean 96 × 10^6
 * (SI, as Kubernetes reads "96M") or 96 × 2^20 (as many tools do), so parse_size()
 * refuses it rather than guess. This tells that case apart for the error message:
 * for an integer followed by "kB", "MB" or "GB" (powers of 1000) it returns 0 with
 * *ret_bytes the SI value, and that value in the IEC unit one rank below ("B", "KiB",
 * "MiB"), rounded to the nearest whole one, in *ret_nearest and *ret_nearest_unit: a
 * size memward accepts that is within 0.05 % of what the SI reading meant. -EINVAL for
 * anything else, -ERANGE on overflow. */
int parse_size_si(const char *s, uint64_t *ret_bytes, uint64_t *ret_nearest, const char **ret_nearest_unit);

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
