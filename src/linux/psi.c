/* See psi.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/linux/psi.h"

/* "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" */
static int parse_line(const char *line, size_t n, struct psi_line *ret) {
        char buf[160];
        struct psi_line l;
        int consumed = 0;

        if (n >= sizeof buf)
                return -EBADMSG;
        memcpy(buf, line, n);
        buf[n] = '\0';
        if (sscanf(buf, "avg10=%lf avg60=%lf avg300=%lf total=%" SCNu64 "%n", &l.avg10, &l.avg60, &l.avg300, &l.total,
                   &consumed) != 4 ||
            (size_t) consumed != n)
                return -EBADMSG;
        if (!(l.avg10 >= 0 && l.avg10 <= 100 && l.avg60 >= 0 && l.avg60 <= 100 && l.avg300 >= 0 && l.avg300 <= 100))
                return -EBADMSG;
        *ret = l;
        return 0;
}

int psi_parse(const char *text, size_t length, struct psi_stats *ret) {
        struct psi_stats s = {};
        bool has_some = false;

        for (size_t pos = 0; pos < length;) {
                const char *line = text + pos;
                const char *nl = memchr(line, '\n', length - pos);
                size_t n = nl ? (size_t) (nl - line) : length - pos;
                pos += n + 1;

                if (n > 5 && memcmp(line, "some ", 5) == 0) {
                        if (parse_line(line + 5, n - 5, &s.some) < 0)
                                return -EBADMSG;
                        has_some = true;
                } else if (n > 5 && memcmp(line, "full ", 5) == 0) {
                        if (parse_line(line + 5, n - 5, &s.full) < 0)
                                return -EBADMSG;
                        s.has_full = true;
                } else if (n > 0)
                        return -EBADMSG;
        }
        if (!has_some)
                return -EBADMSG;
        *ret = s;
        return 0;
}

usec_t psi_round_window_unprivileged(usec_t window) {
        const usec_t step = 2 * USEC_PER_SEC;

        if (window < step)
                return step;
        if (window >= PSI_WINDOW_MAX)
                return PSI_WINDOW_MAX;
        return (window + step - 1) / step * step;
}

int psi_trigger_format(enum psi_kind kind, usec_t stall, usec_t window, char *buf, size_t size) {
        int n = snprintf(buf, size, "%s %" PRIu64 " %" PRIu64, kind == PSI_FULL ? "full" : "some", stall, window);
        if (n < 0 || (size_t) n >= size)
                return -ENOBUFS;
        return n;
}

static int write_trigger(const char *path, enum psi_kind kind, usec_t stall, usec_t window) {
        char text[64];
        _cleanup_close_ int fd = -1;
        int n;

        n = psi_trigger_format(kind, stall, window, text, sizeof text);
        if (n < 0)
                return n;
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        /* The trigger text includes its NUL, as psi.rst's example does. */
        if (write(fd, text, (size_t) n + 1) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

usec_t psi_scale_stall(usec_t stall, usec_t window, usec_t rounded) {
        if (window == 0 || rounded == window)
                return stall;
        /* Both are at most PSI_WINDOW_MAX (10^7 us): the product fits in 64 bits. */
        usec_t scaled = (stall * rounded + window - 1) / window;
        return scaled > rounded ? rounded : scaled;
}

int psi_trigger_open(const char *path, enum psi_kind kind, usec_t stall, usec_t window, usec_t *ret_stall,
                     usec_t *ret_window) {
        int fd = write_trigger(path, kind, stall, window);
        if (fd == -EINVAL) {
                usec_t rounded = psi_round_window_unprivileged(window);
                if (rounded != window) {
                        /* "150ms in 1s" means 15 % of the time: a 2 s window keeps the
                         * share (300ms), or the trigger would fire at half the pressure. */
                        stall = psi_scale_stall(stall, window, rounded);
                        fd = write_trigger(path, kind, stall, rounded);
                        window = rounded;
                }
        }
        if (fd >= 0) {
                if (ret_stall)
                        *ret_stall = stall;
                if (ret_window)
                        *ret_window = window;
        }
        return fd;
}
