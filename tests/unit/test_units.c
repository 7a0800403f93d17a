/* Units of the configuration language: durations and sizes, every suffix, the strict
 * grammar (no spaces, signs, fractions), overflow, and formatting back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "memward/base/macro.h"
#include "memward/base/units.h"

static usec_t duration_ok(const char *s) {
        usec_t u = 4242;
        assert_int_equal(parse_duration(s, &u), 0);
        return u;
}

static int duration_err(const char *s) {
        usec_t u = 4242;
        int r = parse_duration(s, &u);
        assert_true(r < 0);
        assert_true(u == 4242); /* untouched on failure */
        return r;
}

static uint64_t size_ok(const char *s) {
        uint64_t n = 4242;
        assert_int_equal(parse_size(s, &n), 0);
        return n;
}

static int size_err(const char *s) {
        uint64_t n = 4242;
        int r = parse_size(s, &n);
        assert_true(r < 0);
        assert_true(n == 4242);
        return r;
}

static void test_duration_suffixes(void **state) {
        (void) state;
        assert_true(duration_ok("7us") == 7);
        assert_true(duration_ok("250ms") == 250 * USEC_PER_MSEC);
        assert_true(duration_ok("30s") == 30 * USEC_PER_SEC);
        assert_true(duration_ok("5m") == 300 * USEC_PER_SEC);
        assert_true(duration_ok("2h") == 7200 * USEC_PER_SEC);
        assert_true(duration_ok("0") == 0);
        assert_true(duration_ok("0s") == 0);
        assert_true(duration_ok("0ms") == 0);
        assert_true(duration_ok("010s") == 10 * USEC_PER_SEC);
}

static void test_duration_rejects(void **state) {
        (void) state;
        /* A bare non-zero number has no unit: is "30" seconds or milliseconds? */
        assert_int_equal(duration_err("30"), -EINVAL);
        assert_int_equal(duration_err(""), -EINVAL);
        assert_int_equal(duration_err("s"), -EINVAL);
        assert_int_equal(duration_err("ms"), -EINVAL);
        assert_int_equal(duration_err("1.5s"), -EINVAL);
        assert_int_equal(duration_err("10 s"), -EINVAL); /* decided: no space before the unit */
        assert_int_equal(duration_err(" 10s"), -EINVAL);
        assert_int_equal(duration_err("10s "), -EINVAL);
        assert_int_equal(duration_err("-1s"), -EINVAL);
        assert_int_equal(duration_err("+1s"), -EINVAL);
        assert_int_equal(duration_err("10S"), -EINVAL);
        assert_int_equal(duration_err("10sec"), -EINVAL);
        assert_int_equal(duration_err("1m30s"), -EINVAL);
        assert_int_equal(duration_err("10d"), -EINVAL);
        assert_int_equal(duration_err("0x10s"), -EINVAL);
        assert_int_equal(duration_err("garbage"), -EINVAL);
        /* Bad unit wins over overflow: the number is not the problem. */
        assert_int_equal(duration_err("99999999999999999999999xs"), -EINVAL);
}

static void test_duration_overflow(void **state) {
        (void) state;
        assert_int_equal(duration_err("18446744073709551616us"), -ERANGE); /* 2^64 */
        assert_int_equal(duration_err("18446744073709551615us"), -ERANGE); /* USEC_INFINITY */
        assert_true(duration_ok("18446744073709551614us") == UINT64_MAX - 1);
        assert_int_equal(duration_err("5124095576030432h"), -ERANGE);
        assert_int_equal(duration_err("99999999999999999999999999s"), -ERANGE);
        assert_int_equal(duration_err("99999999999999999999999999"), -EINVAL); /* no unit */
        assert_true(duration_ok("5124095576h") == 5124095576ULL * 3600 * USEC_PER_SEC);
}

static void test_size_suffixes(void **state) {
        (void) state;
        assert_true(size_ok("0") == 0);
        assert_true(size_ok("4096") == 4096);
        assert_true(size_ok("100B") == 100);
        assert_true(size_ok("1K") == 1024);
        assert_true(size_ok("1KiB") == 1024);
        assert_true(size_ok("3M") == 3ULL << 20);
        assert_true(size_ok("512MiB") == 512ULL << 20);
        assert_true(size_ok("2G") == 2ULL << 30);
        assert_true(size_ok("2GiB") == 2ULL << 30);
        assert_true(size_ok("17179869183G") == 17179869183ULL << 30);
        assert_true(size_ok("18446744073709551615") == UINT64_MAX);
}

static void test_size_rejects(void **state) {
        (void) state;
        assert_int_equal(size_err(""), -EINVAL);
        assert_int_equal(size_err("M"), -EINVAL);
        assert_int_equal(size_err("1.5M"), -EINVAL);
        assert_int_equal(size_err("1 M"), -EINVAL);
        assert_int_equal(size_err("-1"), -EINVAL);
        assert_int_equal(size_err("+1K"), -EINVAL);
        assert_int_equal(size_err("1MB"), -EINVAL); /* decimal or binary? neither */
        assert_int_equal(size_err("1k"), -EINVAL);
        assert_int_equal(size_err("1T"), -EINVAL);
        assert_int_equal(size_err("1Mi"), -EINVAL);
        assert_int_equal(size_err("80%"), -EINVAL);
        assert_int_equal(size_err("lots"), -EINVAL);
        assert_int_equal(size_err("17179869184G"), -ERANGE); /* 2^64 */
        assert_int_equal(size_err("18446744073709551616"), -ERANGE);
        assert_int_equal(size_err("18014398509481984K"), -ERANGE);
}

static void test_size_si(void **state) {
        uint64_t bytes, nearest;
        const char *unit;
        (void) state;

        /* Refused by parse_size(): the SI reading and the binary one differ by 5 %. */
        uint64_t n;
        assert_int_equal(parse_size("96MB", &n), -EINVAL);

        assert_int_equal(parse_size_si("96MB", &bytes, &nearest, &unit), 0);
        assert_true(bytes == 96000000);
        assert_true(nearest == 93750);
        assert_string_equal(unit, "KiB");
        assert_int_equal(parse_size_si("2GB", &bytes, &nearest, &unit), 0);
        assert_true(bytes == 2000000000ULL);
        assert_true(nearest == 1907); /* 1907.3486 */
        assert_string_equal(unit, "MiB");
        assert_int_equal(parse_size_si("1kB", &bytes, &nearest, &unit), 0);
        assert_true(nearest == 1000);
        assert_string_equal(unit, "B");
        assert_int_equal(parse_size_si("9999999999GB", &bytes, &nearest, &unit), 0);
        assert_int_equal(parse_size_si("99999999999999999999GB", &bytes, &nearest, &unit), -ERANGE);
        assert_int_equal(parse_size_si("18446744073709551GB", &bytes, &nearest, &unit), -ERANGE);
        assert_int_equal(parse_size_si("96MiB", &bytes, &nearest, &unit), -EINVAL);
        assert_int_equal(parse_size_si("96mb", &bytes, &nearest, &unit), -EINVAL);
        assert_int_equal(parse_size_si("MB", &bytes, &nearest, &unit), -EINVAL);
        assert_int_equal(parse_size_si("96MB ", &bytes, &nearest, &unit), -EINVAL);
}

static void test_format_duration(void **state) {
        (void) state;
        char buf[FORMAT_DURATION_MAX];
        assert_string_equal(format_duration(buf, sizeof buf, 0), "0");
        assert_string_equal(format_duration(buf, sizeof buf, 1), "1us");
        assert_string_equal(format_duration(buf, sizeof buf, 1500), "1500us");
        assert_string_equal(format_duration(buf, sizeof buf, 100 * USEC_PER_MSEC), "100ms");
        assert_string_equal(format_duration(buf, sizeof buf, 1500 * USEC_PER_MSEC), "1500ms");
        assert_string_equal(format_duration(buf, sizeof buf, 90 * USEC_PER_SEC), "90s");
        assert_string_equal(format_duration(buf, sizeof buf, 120 * USEC_PER_SEC), "2m");
        assert_string_equal(format_duration(buf, sizeof buf, 7200 * USEC_PER_SEC), "2h");
        assert_string_equal(format_duration(buf, sizeof buf, USEC_INFINITY), "infinity");
}

static void test_format_size(void **state) {
        (void) state;
        char buf[FORMAT_SIZE_MAX];
        assert_string_equal(format_size(buf, sizeof buf, 0), "0");
        assert_string_equal(format_size(buf, sizeof buf, 1), "1B");
        assert_string_equal(format_size(buf, sizeof buf, 1536), "1536B");
        assert_string_equal(format_size(buf, sizeof buf, 2048), "2KiB");
        assert_string_equal(format_size(buf, sizeof buf, 1536ULL << 10), "1536KiB");
        assert_string_equal(format_size(buf, sizeof buf, 512ULL << 20), "512MiB");
        assert_string_equal(format_size(buf, sizeof buf, 3ULL << 30), "3GiB");
        assert_string_equal(format_size(buf, sizeof buf, UINT64_MAX), "18446744073709551615B");
}

/* Whatever format_*() writes parses back to the same value. */
static void test_format_round_trip(void **state) {
        (void) state;
        static const uint64_t values[] = {
                0, 1, 999, 1000, 1001, 60000000, 59999999, 3600000000, 86400000000, 123456789012,
                UINT64_MAX - 1, UINT64_MAX / 2,
        };
        char buf[FORMAT_SIZE_MAX > FORMAT_DURATION_MAX ? FORMAT_SIZE_MAX : FORMAT_DURATION_MAX];

        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                usec_t u;
                uint64_t n;

                assert_int_equal(parse_duration(format_duration(buf, sizeof buf, values[i]), &u), 0);
                assert_true(u == values[i]);
                assert_int_equal(parse_size(format_size(buf, sizeof buf, values[i]), &n), 0);
                assert_true(n == values[i]);
        }
        for (unsigned shift = 0; shift < 64; shift++) {
                uint64_t n;
                assert_int_equal(parse_size(format_size(buf, sizeof buf, 1ULL << shift), &n), 0);
                assert_true(n == 1ULL << shift);
        }
}

static void test_clocks(void **state) {
        (void) state;
        usec_t a = now_monotonic(), b = now_monotonic();
        assert_true(a > 0);
        assert_true(b >= a);
        /* Later than 2020-01-01. */
        assert_true(now_realtime() > 1577836800ULL * USEC_PER_SEC);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_duration_suffixes),
                cmocka_unit_test(test_duration_rejects),
                cmocka_unit_test(test_duration_overflow),
                cmocka_unit_test(test_size_suffixes),
                cmocka_unit_test(test_size_rejects),
                cmocka_unit_test(test_size_si),
                cmocka_unit_test(test_format_duration),
                cmocka_unit_test(test_format_size),
                cmocka_unit_test(test_format_round_trip),
                cmocka_unit_test(test_clocks),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
