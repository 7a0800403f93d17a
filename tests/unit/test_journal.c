/* journald's native protocol, byte for byte: what journal_entry_add() writes is what
 * journald parses (systemd's journald-native.c): NAME=value\n, or, for a value holding a
 * newline, NAME\n + le64 length + value + \n. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "memward/base/journal.h"
#include "memward/base/macro.h"

static void assert_bytes(const struct journal_entry *e, const void *want, size_t n) {
        if (e->length != n || memcmp(e->buf, want, n) != 0) {
                print_error("want %zu bytes, got %zu:\n", n, e->length);
                for (size_t i = 0; i < e->length; i++)
                        print_error("%02x%s", (unsigned char) e->buf[i], i % 16 == 15 ? "\n" : " ");
                fail();
        }
}

static void test_text_fields(void **state) {
        (void) state;
        char buf[256];
        struct journal_entry e = journal_entry_init(buf, sizeof buf);

        assert_int_equal(journal_entry_add_string(&e, "MESSAGE", "event=ready worker=0"), 0);
        assert_int_equal(journal_entry_add_string(&e, "PRIORITY", "6"), 0);
        assert_int_equal(journal_entry_add_string(&e, "MEMWARD_EMPTY", ""), 0);
        /* '=' inside a value needs nothing: journald splits at the first one. */
        assert_int_equal(journal_entry_add_string(&e, "MEMWARD_X", "a=b"), 0);
        static const char want[] = "MESSAGE=event=ready worker=0\nPRIORITY=6\nMEMWARD_EMPTY=\nMEMWARD_X=a=b\n";
        assert_bytes(&e, want, sizeof want - 1);
}

static void test_binary_field(void **state) {
        (void) state;
        char buf[256];
        struct journal_entry e = journal_entry_init(buf, sizeof buf);

        assert_int_equal(journal_entry_add_string(&e, "A", "x"), 0);
        /* A newline in the value: the length-prefixed form, which also carries a NUL. */
        assert_int_equal(journal_entry_add(&e, "MEMWARD_STATUS", "two\nlines\0!", 11), 0);
        assert_int_equal(journal_entry_add_string(&e, "B", "y"), 0);
        static const char want[] = "A=x\n"
                                   "MEMWARD_STATUS\n"
                                   "\x0b\x00\x00\x00\x00\x00\x00\x00"
                                   "two\nlines\0!\n"
                                   "B=y\n";
        assert_bytes(&e, want, sizeof want - 1);
}

static void test_field_names(void **state) {
        (void) state;
        char buf[256], name[JOURNAL_FIELD_NAME_MAX + 2];
        struct journal_entry e = journal_entry_init(buf, sizeof buf);

        /* journald drops '_'-prefixed names (its trusted fields), lower case, and more
         * than 64 characters; refused before anything is written. */
        assert_int_equal(journal_entry_add_string(&e, "_PID", "1"), -EINVAL);
        assert_int_equal(journal_entry_add_string(&e, "message", "x"), -EINVAL);
        assert_int_equal(journal_entry_add_string(&e, "1ST", "x"), -EINVAL);
        assert_int_equal(journal_entry_add_string(&e, "A-B", "x"), -EINVAL);
        assert_int_equal(journal_entry_add_string(&e, "", "x"), -EINVAL);
        memset(name, 'A', sizeof name - 1);
        name[sizeof name - 1] = '\0';
        assert_int_equal(journal_entry_add_string(&e, name, "x"), -EINVAL);
        assert_int_equal(e.length, 0);
        name[JOURNAL_FIELD_NAME_MAX] = '\0';
        assert_int_equal(journal_entry_add_string(&e, name, "x"), 0);
        assert_int_equal(e.length, JOURNAL_FIELD_NAME_MAX + 3);
}

static void test_full_buffer(void **state) {
        (void) state;
        char buf[16];
        struct journal_entry e = journal_entry_init(buf, sizeof buf);

        assert_int_equal(journal_entry_add_string(&e, "A", "1234567890"), 0); /* 13 bytes */
        /* Exactly the 3 bytes left fit; then nothing, and a refused field leaves the
         * entry as it was. */
        assert_int_equal(journal_entry_add_string(&e, "BB", "x"), -ENOBUFS);
        assert_int_equal(journal_entry_add(&e, "B", "\n", 1), -ENOBUFS);
        assert_int_equal(e.length, 13);
        assert_int_equal(journal_entry_add_string(&e, "B", ""), 0);
        assert_int_equal(journal_entry_add_string(&e, "C", ""), -ENOBUFS);
        assert_bytes(&e, "A=1234567890\nB=\n", 16);
}

static void test_huge_length(void **state) {
        (void) state;
        char buf[64];
        struct journal_entry e = journal_entry_init(buf, sizeof buf);

        assert_int_equal(journal_entry_add_string(&e, "A", "x"), 0);
        /* A length the sum of name, separators and value wraps round with: refused
         * before a byte of the value is read (the value is shorter than it claims: the
         * memchr() and memcpy() of the old check ran off its end, which ASan reports). */
        assert_int_equal(journal_entry_add(&e, "B", "y", SIZE_MAX), -ENOBUFS);
        assert_int_equal(journal_entry_add(&e, "B", "y", SIZE_MAX - 2), -ENOBUFS);
        assert_int_equal(journal_entry_add(&e, "B", "y", SIZE_MAX - sizeof(uint64_t) - 2), -ENOBUFS);
        assert_int_equal(journal_entry_add(&e, "B", "y", sizeof buf), -ENOBUFS);
        assert_int_equal(e.length, 4);
        assert_bytes(&e, "A=x\n", 4);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_text_fields),
                cmocka_unit_test(test_binary_field),
                cmocka_unit_test(test_field_names),
                cmocka_unit_test(test_full_buffer),
                cmocka_unit_test(test_huge_length),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
