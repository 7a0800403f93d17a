/* See proc.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/linux/proc.h"

int proc_stat_parse_ppid(const char *text, size_t length, pid_t *ret) {
        const char *close_paren = NULL;

        for (size_t i = 0; i < length; i++)
                if (text[i] == ')')
                        close_paren = text + i;
        if (!close_paren)
                return -EBADMSG;

        /* ") S 1234 ..." : state, then ppid. */
        const char *p = close_paren + 1, *end = text + length;
        if (end - p < 4 || p[0] != ' ' || p[2] != ' ')
                return -EBADMSG;
        p += 3;
        long v = 0;
        const char *digits = p;
        while (p < end && *p >= '0' && *p <= '9' && v <= 4194304L)
                v = v * 10 + (*p++ - '0');
        if (p == digits || p >= end || *p != ' ' || v > 4194304L)
                return -EBADMSG;
        *ret = (pid_t) v;
        return 0;
}

int proc_get_ppid(const char *proc_root, pid_t pid, pid_t *ret) {
        char path[64], buf[512];
        _cleanup_close_ int fd = -1;

        snprintf(path, sizeof path, "%s/%d/stat", proc_root, (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : negative_errno();
        ssize_t n = pread(fd, buf, sizeof buf, 0);
        if (n < 0)
                return errno == ESRCH ? -ESRCH : negative_errno();
        return proc_stat_parse_ppid(buf, (size_t) n, ret);
}
