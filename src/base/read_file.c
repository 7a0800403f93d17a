/* See read_file.h. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/base/read_file.h"
#include "memward/base/text_buffer.h"

/* What read_full_file_at() reads at a time: large enough that a config or a mountinfo
 * takes a few reads, small enough for the stack. */
#define FULL_FILE_CHUNK 16384

int pread_small_file(int fd, char *buf, size_t size, size_t *ret_length) {
        assert(buf && size > 0);

        ssize_t n = pread(fd, buf, size - 1, 0);
        if (n < 0)
                return negative_errno();
        buf[n] = '\0';
        if (ret_length)
                *ret_length = (size_t) n;
        return (size_t) n == size - 1 ? 1 : 0;
}

int read_small_file_at(int dir_fd, const char *path, char *buf, size_t size, size_t *ret_length) {
        _cleanup_close_ int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return pread_small_file(fd, buf, size, ret_length);
}

int read_full_file_at(int dir_fd, const char *path, size_t max, char **ret, size_t *ret_length) {
        char chunk[FULL_FILE_CHUNK];
        struct text_buffer b;
        int r;

        assert(max < (size_t) -2);
        /* O_NONBLOCK: opening a FIFO for reading would wait for a writer, forever, with
         * the supervisor's loop stopped. It changes nothing for a regular file. */
        _cleanup_close_ int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        /* A device, FIFO or socket can block a read or never end. */
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        /* Room for max bytes, one more to tell a longer file by, and the NUL. */
        text_buffer_init(&b, max + 2);
        while (!b.error && b.length <= max) {
                ssize_t n = read(fd, chunk, sizeof chunk);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        text_buffer_fail(&b, negative_errno());
                        break;
                }
                if (n == 0)
                        break;
                text_buffer_append(&b, chunk, (size_t) n);
        }
        if (b.length > max)
                text_buffer_fail(&b, -EFBIG);
        r = text_buffer_finish(&b, ret, ret_length);
        return r == -E2BIG ? -EFBIG : r;
}
