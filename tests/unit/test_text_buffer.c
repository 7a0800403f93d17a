/* The growing, bounded text buffer: its limit, its one error, growth, JSON strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "memward/base/text_buffer.h"

/* The limit counts the NUL; once passed, the buffer stays failed and finish says so. */
static void test_limit(void **state) {
        struct text_buffer b;
        char *text = NULL;
        size_t n = 7;
        (void) state;

        text_buffer_init(&b, 16);
        text_buffer_printf(&b, "%s", "0123456789");
        text_buffer_append(&b, "abcd", 4);
        assert_int_equal(b.error, 0);
        text_buffer_append(&b, "x", 1); /* 15 + NUL = 16 */
        assert_int_equal(b.error, 0);
        assert_string_equal(b.data, "0123456789abcdx");
        text_buffer_append(&b, "y", 1);
        assert_int_equal(b.error, -E2BIG);
        text_buffer_printf(&b, "more");
        assert_int_equal(b.length, 15);
        assert_int_equal(text_buffer_finish(&b, &text, &n), -E2BIG);
        assert_null(text);
        assert_int_equal(n, 7);
        assert_null(b.data);

        /* A printf that does not fit fails the same way, and allocates no more than the limit. */
        text_buffer_init(&b, 8);
        text_buffer_printf(&b, "%s", "0123456789");
        assert_int_equal(b.error, -E2BIG);
        assert_true(b.allocated <= 8);
        text_buffer_done(&b);
}

/* A failure from outside (a helper's malloc) fails the buffer like its own; the first stays. */
static void test_fail(void **state) {
        struct text_buffer b;
        char *text = NULL;
        size_t n;
        (void) state;

        text_buffer_init(&b, 64);
        text_buffer_append(&b, "ok", 2);
        text_buffer_fail(&b, -ENOMEM);
        text_buffer_append(&b, "more", 4);
        text_buffer_fail(&b, -E2BIG);
        assert_int_equal(b.length, 2);
        assert_int_equal(text_buffer_finish(&b, &text, &n), -ENOMEM);
        assert_null(text);
}

static void test_empty_and_growth(void **state) {
        struct text_buffer b;
        char *text;
        size_t n;
        (void) state;

        /* Nothing appended is an empty string, not NULL. */
        text_buffer_init(&b, 16);
        assert_int_equal(text_buffer_finish(&b, &text, &n), 0);
        assert_string_equal(text, "");
        assert_int_equal(n, 0);
        free(text);

        /* Growing past the first allocation keeps what was written. */
        text_buffer_init(&b, 1 << 20);
        for (int i = 0; i < 10000; i++)
                text_buffer_printf(&b, "%05d\n", i);
        assert_int_equal(text_buffer_finish(&b, &text, &n), 0);
        assert_int_equal(n, 60000);
        assert_int_equal(strlen(text), n);
        assert_true(strncmp(text + 59994, "09999\n", 6) == 0);
        free(text);
}

static void test_json_string(void **state) {
        struct text_buffer b;
        char *text;
        size_t n;
        (void) state;

        text_buffer_init(&b, 1024);
        text_buffer_json_string(&b, "plain");
        text_buffer_json_string(&b, "q\"b\\s/\n\t\x01\x1f\x7f");
        text_buffer_json_string(&b, "é € 😀");
        text_buffer_json_string(&b, "bad \xff \xc3( \xed\xa0\x80 \xf0\x9f\x98");
        text_buffer_json_string(&b, NULL);
        assert_int_equal(text_buffer_finish(&b, &text, &n), 0);
        assert_string_equal(text, "\"plain\""
                                  "\"q\\\"b\\\\s/\\n\\u0009\\u0001\\u001f\x7f\""
                                  "\"é € 😀\""
                                  "\"bad \\ufffd \\ufffd( \\ufffd\\ufffd\\ufffd \\ufffd\\ufffd\\ufffd\""
                                  "\"\"");
        free(text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_limit),
                cmocka_unit_test(test_fail),
                cmocka_unit_test(test_empty_and_growth),
                cmocka_unit_test(test_json_string),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
