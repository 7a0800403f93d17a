/* UTF-8: encoding code points, and decoding them back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "memward/base/macro.h"
#include "memward/base/utf8.h"

static void test_encode(void **state) {
        static const struct {
                uint32_t cp;
                const char *utf8;
        } cases[] = {
                { 0x41, "A" },           { 0x7F, "\x7f" },         { 0x80, "\xc2\x80" },
                { 0xE9, "é" },           { 0x7FF, "\xdf\xbf" },    { 0x800, "\xe0\xa0\x80" },
                { 0x20AC, "€" },         { 0xFFFD, "\xef\xbf\xbd" }, { 0xFFFF, "\xef\xbf\xbf" },
                { 0x10000, "\xf0\x90\x80\x80" }, { 0x1F600, "😀" }, { 0x10FFFF, "\xf4\x8f\xbf\xbf" },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char out[5] = "";
                uint32_t back = 0;
                size_t n = utf8_encode(cases[i].cp, out);

                assert_int_equal(n, strlen(cases[i].utf8));
                assert_memory_equal(out, cases[i].utf8, n);
                /* What is encoded decodes to the same code point, in as many bytes. */
                assert_int_equal(utf8_decode((const unsigned char *) out, &back), n);
                assert_int_equal(back, cases[i].cp);
        }
}

static void test_decode_rejects(void **state) {
        (void) state;
        /* Overlong, surrogate, beyond U+10FFFF, a lone continuation, cut short by NUL. */
        static const char *const bad[] = { "\xc0\x80", "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                           "\x80", "\xe2\x82" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(utf8_decode((const unsigned char *) bad[i], NULL), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_encode),
                cmocka_unit_test(test_decode_rejects),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
