/* See proc.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/base/read_file.h"
#include "memward/linux/memstat.h"
#include "memward/linux/proc.h"

/* The largest pid Linux hands out (PID_MAX_LIMIT on 64-bit). */
#define PID_MAX 4194304

/* s[0..n) as a whole unsigned decimal number; *ret is written only on success. */
static int parse_u64_field(const char *s, size_t n, uint64_t *ret) {
        uint64_t v;
        size_t used;

        if (parse_u64_prefix(s, n, &v, &used) < 0 || used != n)
                return -EBADMSG;
        *ret = v;
        return 0;
}

int proc_stat_parse(const char *text, size_t length, struct proc_stat *ret) {
        const char *p = memrchr(text, ')', length), *end = text + length;
        uint64_t v[23] = {}; /* the numbers read, by field number */

        if (!p)
                return -EBADMSG;
        /* After ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
         * utime(14) stime(15) cutime cstime priority nice num_threads itrealvalue starttime(22).
         * Fields we skip may be negative (tty_nr, tpgid, priority, nice). */
        p++;
        for (unsigned field = 3; field <= 22; field++) {
                if (p >= end || *p != ' ')
                        return -EBADMSG;
                const char *value = ++p;
                while (p < end && *p != ' ' && *p != '\n')
                        p++;
                size_t n = (size_t) (p - value);
                if (n == 0 || (field == 3 && n != 1))
                        return -EBADMSG;
                bool wanted = field == 4 || field == 14 || field == 15 || field == 22;
                if (wanted && parse_u64_field(value, n, &v[field]) < 0)
                        return -EBADMSG;
        }
        if (v[4] > PID_MAX || v[14] > UINT64_MAX - v[15])
                return -EBADMSG;
        *ret = (struct proc_stat) {
                .ppid = (pid_t) v[4],
                .cpu_ticks = v[14] + v[15],
                .start_ticks = v[22],
        };
        return 0;
}

int proc_stat_btime_parse(const char *text, size_t length, uint64_t *ret_btime) {
        for (const char *p = text, *end = text + length; p < end;) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);
                if (n > 6 && memcmp(p, "btime ", 6) == 0)
                        return parse_u64_field(p + 6, n - 6, ret_btime);
                p += n + 1;
        }
        return -EBADMSG;
}

int proc_get_ppid(const char *proc_root, pid_t pid, pid_t *ret) {
        char path[64], buf[512];
        struct proc_stat st;
        size_t n;

        snprintf(path, sizeof path, "%s/%d/stat", proc_root, (int) pid);
        int r = read_small_file_at(AT_FDCWD, path, buf, sizeof buf, &n);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        r = proc_stat_parse(buf, n, &st);
        if (r < 0)
                return r;
        *ret = st.ppid;
        return 0;
}

/* The blank-separated unsigned decimals of s[0..n) into v[0..want); exactly want of them. */
static int parse_u64_list(const char *s, size_t n, uint64_t *v, unsigned want) {
        const char *p = s, *end = s + n;
        unsigned got = 0;

        for (;;) {
                while (p < end && (*p == ' ' || *p == '\t'))
                        p++;
                if (p == end)
                        break;
                const char *value = p;
                while (p < end && *p != ' ' && *p != '\t')
                        p++;
                if (got == want || parse_u64_field(value, (size_t) (p - value), &v[got]) < 0)
                        return -EBADMSG;
                got++;
        }
        return got == want ? 0 : -EBADMSG;
}

int proc_status_parse(const char *text, size_t length, struct proc_status *ret) {
        uint64_t ppid = 0, uid[4] = {};
        bool have_ppid = false, have_uid = false;

        for (const char *p = text, *end = text + length; p < end && !(have_ppid && have_uid);) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);
                if (!have_ppid && n >= 5 && memcmp(p, "PPid:", 5) == 0) {
                        if (parse_u64_list(p + 5, n - 5, &ppid, 1) < 0 || ppid > PID_MAX)
                                return -EBADMSG;
                        have_ppid = true;
                } else if (!have_uid && n >= 4 && memcmp(p, "Uid:", 4) == 0) {
                        if (parse_u64_list(p + 4, n - 4, uid, 4) < 0)
                                return -EBADMSG;
                        for (unsigned i = 0; i < 4; i++)
                                if (uid[i] > (uid_t) -1)
                                        return -EBADMSG;
                        have_uid = true;
                }
                p += n + 1;
        }
        if (!have_ppid || !have_uid)
                return -EBADMSG;
        ret->ppid = (pid_t) ppid;
        for (unsigned i = 0; i < 4; i++)
                ret->uid[i] = (uid_t) uid[i];
        return 0;
}

int proc_get_status(const char *proc_root, pid_t pid, struct proc_status *ret) {
        char path[64], buf[4096];
        size_t n;

        snprintf(path, sizeof path, "%s/%d/status", proc_root, (int) pid);
        int r = read_small_file_at(AT_FDCWD, path, buf, sizeof buf, &n);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        return proc_status_parse(buf, n, ret);
}

int proc_children_parse(const char *text, size_t length, pid_t **ret) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0, allocated = 0;

        for (const char *p = text, *end = text + length; p < end;) {
                const char *space = memchr(p, ' ', (size_t) (end - p));
                size_t len = space ? (size_t) (space - p) : (size_t) (end - p);
                uint64_t v;
                if (len == 1 && *p == '\n' && p + 1 == end)
                        break; /* a newline after the last space, as some kernels write */
                if (parse_u64_field(p, len, &v) < 0 || v == 0 || v > PID_MAX)
                        return -EBADMSG;
                if (n == allocated) {
                        allocated = allocated ? 2 * allocated : 64;
                        pid_t *grown = reallocarray(pids, allocated, sizeof *pids);
                        if (!grown)
                                return -ENOMEM;
                        pids = grown;
                }
                pids[n++] = (pid_t) v;
                p += len + (space ? 1 : 0);
        }
        *ret = TAKE_PTR(pids);
        return (int) n;
}

/* The fallback of proc_list_children(): every process's stat, a few microseconds each. */
static int proc_scan_children(const char *proc_root, pid_t parent, pid_t **ret) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0, allocated = 0;
        DIR *d = opendir(proc_root);

        if (!d)
                return negative_errno();
        for (struct dirent *de; (de = readdir(d));) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                pid_t ppid;
                if (*end || pid <= 0 || pid > PID_MAX || proc_get_ppid(proc_root, (pid_t) pid, &ppid) < 0 ||
                    ppid != parent)
                        continue;
                if (n == allocated) {
                        allocated = allocated ? 2 * allocated : 64;
                        pid_t *grown = reallocarray(pids, allocated, sizeof *pids);
                        if (!grown) {
                                closedir(d);
                                return -ENOMEM;
                        }
                        pids = grown;
                }
                pids[n++] = (pid_t) pid;
        }
        closedir(d);
        *ret = TAKE_PTR(pids);
        return (int) n;
}

int proc_list_children(const char *proc_root, pid_t pid, pid_t **ret) {
        _cleanup_free_ char *text = NULL;
        char path[128];
        size_t n;

        snprintf(path, sizeof path, "%s/%d/task/%d/children", proc_root, (int) pid, (int) pid);
        /* At most PID_MAX pids of 7 digits and a space. */
        int r = read_full_file_at(AT_FDCWD, path, (size_t) PID_MAX * 8, &text, &n);
        if (r == -ENOENT)
                return proc_scan_children(proc_root, pid, ret);
        if (r < 0)
                return r;
        return proc_children_parse(text, n, ret);
}

bool proc_status_same(const struct proc_status *a, const struct proc_status *b) {
        return a->ppid == b->ppid && memcmp(a->uid, b->uid, sizeof a->uid) == 0;
}

int proc_pidfd_open(pid_t pid) {
        if (pid <= 0)
                return -ESRCH;
        /* pidfd_open(2) always returns a close-on-exec fd. */
        long fd = syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
                return errno == EINVAL ? -ESRCH : -errno;
        return (int) fd;
}

int proc_pidfd_exited(int pidfd) {
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        int n = poll(&p, 1, 0);
        if (n < 0)
                return -errno;
        if (p.revents & (POLLERR | POLLNVAL))
                return -EBADF;
        return n > 0 && (p.revents & POLLIN) ? 1 : 0;
}

int proc_child_exited(pid_t pid) {
        siginfo_t info = {};

        if (pid <= 0)
                return -EINVAL;
        if (waitid(P_PID, (id_t) pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
                return negative_errno();
        /* With WNOHANG, a child that has not exited leaves info as it was (si_pid 0). */
        return info.si_pid == pid ? 1 : 0;
}

int proc_self_read(const char *proc_root, struct proc_self *ret) {
        /* Boot time does not change: /proc/stat, which grows with the number of CPUs and
         * interrupts, is read once. */
        static uint64_t btime;
        char buf[1024], path[256];
        struct proc_stat st;
        uint64_t resident, shared;
        long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
        size_t n;
        int r;

        if (ticks <= 0 || page <= 0)
                return -EINVAL;

        snprintf(path, sizeof path, "%s/self/stat", proc_root);
        r = read_small_file_at(AT_FDCWD, path, buf, sizeof buf, &n);
        if (r < 0)
                return r;
        r = proc_stat_parse(buf, n, &st);
        if (r < 0)
                return r;

        snprintf(path, sizeof path, "%s/self/statm", proc_root);
        r = read_small_file_at(AT_FDCWD, path, buf, sizeof buf, &n);
        if (r < 0)
                return r;
        r = statm_parse(buf, n, (uint64_t) page, &resident, &shared);
        if (r < 0)
                return r;

        if (btime == 0) {
                _cleanup_free_ char *line = NULL;
                size_t size = 0;
                ssize_t len;

                snprintf(path, sizeof path, "%s/stat", proc_root);
                _cleanup_fclose_ FILE *f = fopen(path, "re");
                if (!f)
                        return negative_errno();
                /* Line by line: the "intr" line before btime can be longer than any fixed buffer
                 * on a machine with many interrupts. */
                r = -EBADMSG;
                while (r < 0 && (len = getline(&line, &size, f)) > 0)
                        if (startswith_lit(line, "btime "))
                                r = proc_stat_btime_parse(line, (size_t) len, &btime);
                if (r < 0)
                        return r;
        }

        *ret = (struct proc_self) {
                .resident = resident,
                .cpu_seconds = (double) st.cpu_ticks / (double) ticks,
                .start_time = (double) btime + (double) st.start_ticks / (double) ticks,
        };
        return 0;
}
