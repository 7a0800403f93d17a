/* Reading small kernel-style files and whole files, in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/base/read_file.h"

struct fixture {
        char dir[64];
        int dir_fd;
};

static void write_file(const struct fixture *f, const char *name, const char *text, size_t n) {
        int fd = openat(f->dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, n), (ssize_t) n);
        close(fd);
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        snprintf(f->dir, sizeof f->dir, "/tmp/memward-test-read-file-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->dir_fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->dir_fd >= 0);
        assert_int_equal(mkdirat(f->dir_fd, "sub", 0755), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        static const char *const names[] = { "short", "exact", "long", "empty", "big", "counter" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                (void) unlinkat(f->dir_fd, names[i], 0);
        (void) unlinkat(f->dir_fd, "sub", AT_REMOVEDIR);
        close(f->dir_fd);
        (void) rmdir(f->dir);
        free(f);
        return 0;
}

/* 0: the text ended within the buffer; 1: it filled the buffer and may go on. */
static void test_small(void **state) {
        struct fixture *f = *state;
        char buf[8], path[128];
        size_t n = 99;

        write_file(f, "short", "12345\n", 6);
        write_file(f, "exact", "1234567", 7);
        write_file(f, "long", "1234567890", 10);
        write_file(f, "empty", "", 0);

        assert_int_equal(read_small_file_at(f->dir_fd, "short", buf, sizeof buf, &n), 0);
        assert_string_equal(buf, "12345\n");
        assert_int_equal(n, 6);
        assert_int_equal(read_small_file_at(f->dir_fd, "exact", buf, sizeof buf, &n), 1);
        assert_string_equal(buf, "1234567");
        assert_int_equal(n, 7);
        assert_int_equal(read_small_file_at(f->dir_fd, "long", buf, sizeof buf, NULL), 1);
        assert_string_equal(buf, "1234567");
        assert_int_equal(read_small_file_at(f->dir_fd, "empty", buf, sizeof buf, &n), 0);
        assert_string_equal(buf, "");
        assert_int_equal(n, 0);

        /* An absolute path with AT_FDCWD. */
        snprintf(path, sizeof path, "%s/short", f->dir);
        assert_int_equal(read_small_file_at(AT_FDCWD, path, buf, sizeof buf, &n), 0);
        assert_int_equal(n, 6);

        /* Errors come back as the kernel gave them, and nothing is written. */
        memcpy(buf, "xxxxxxx", 8);
        n = 99;
        assert_int_equal(read_small_file_at(f->dir_fd, "missing", buf, sizeof buf, &n), -ENOENT);
        assert_int_equal(read_small_file_at(f->dir_fd, "short/x", buf, sizeof buf, &n), -ENOTDIR);
        assert_int_equal(read_small_file_at(f->dir_fd, "sub", buf, sizeof buf, &n), -EISDIR);
        assert_int_equal(read_small_file_at(-1, "short", buf, sizeof buf, &n), -EBADF);
        assert_string_equal(buf, "xxxxxxx");
        assert_int_equal(n, 99);
}

/* A kept-open fd reads the file from its start every time, as it is now. */
static void test_pread(void **state) {
        struct fixture *f = *state;
        char buf[16];
        size_t n;

        write_file(f, "counter", "1\n", 2);
        int fd = openat(f->dir_fd, "counter", O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pread_small_file(fd, buf, sizeof buf, &n), 0);
        assert_string_equal(buf, "1\n");
        assert_int_equal(pwrite(fd, "23\n", 3, 0), 3);
        assert_int_equal(pread_small_file(fd, buf, sizeof buf, &n), 0);
        assert_string_equal(buf, "23\n");
        assert_int_equal(n, 3);
        close(fd);
        assert_int_equal(pread_small_file(fd, buf, sizeof buf, &n), -EBADF);
}

static void test_full(void **state) {
        struct fixture *f = *state;
        char *text = NULL;
        size_t n = 0;

        /* Several reads' worth. */
        size_t big = 100000;
        char *data = malloc(big);
        assert_non_null(data);
        for (size_t i = 0; i < big; i++)
                data[i] = (char) ('a' + i % 26);
        write_file(f, "big", data, big);
        assert_int_equal(read_full_file_at(f->dir_fd, "big", big, &text, &n), 0);
        assert_int_equal(n, big);
        assert_memory_equal(text, data, big);
        assert_int_equal(text[big], '\0');
        free(text);
        free(data);

        /* One byte more than max is too much, and nothing is handed out. */
        text = NULL;
        n = 7;
        assert_int_equal(read_full_file_at(f->dir_fd, "big", big - 1, &text, &n), -EFBIG);
        assert_int_equal(read_full_file_at(f->dir_fd, "big", 10, &text, &n), -EFBIG);
        assert_null(text);
        assert_int_equal(n, 7);
        /* What is not a regular file is refused before any read: a device that never
         * ends, and a FIFO nobody writes to, which would block open() and read(). */
        assert_int_equal(read_full_file_at(AT_FDCWD, "/dev/zero", 1 << 20, &text, &n), -EBADFD);
        assert_int_equal(mkfifoat(f->dir_fd, "fifo", 0600), 0);
        assert_int_equal(read_full_file_at(f->dir_fd, "fifo", 1 << 20, &text, &n), -EBADFD);
        assert_int_equal(unlinkat(f->dir_fd, "fifo", 0), 0);
        assert_null(text);

        /* Empty is "", not NULL. */
        write_file(f, "empty", "", 0);
        assert_int_equal(read_full_file_at(f->dir_fd, "empty", 10, &text, &n), 0);
        assert_string_equal(text, "");
        assert_int_equal(n, 0);
        free(text);

        text = NULL;
        assert_int_equal(read_full_file_at(f->dir_fd, "sub", 10, &text, &n), -EISDIR);
        assert_int_equal(read_full_file_at(f->dir_fd, "missing", 10, &text, &n), -ENOENT);
        assert_null(text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_small, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pread, setup, teardown),
                cmocka_unit_test_setup_teardown(test_full, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
