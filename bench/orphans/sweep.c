/* bench/orphans/sweep.c — what an orphan sweep costs memward (bench/orphans/README.md).
 *
 * For N = 0, 10, 100, 1000, 4000 children of this process (each in a session of its
 * own, paused), times:
 *   list      proc_list_children(): one read of /proc/self/task/PID/children
 *   scan      what a kernel without that file costs: every /proc/N/stat read
 *   classify  a sweep that keeps them all: the list plus a getpgid() per child (a tick
 *             with N orphans in a live worker's process group)
 *             (those three: median of ROUNDS)
 *   kill      a sweep that kills them all (median of KILL_ROUNDS, each with N new
 *             children)
 * and prints one table row per N. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memward/base/units.h"
#include "memward/linux/proc.h"
#include "memward/supervisor/orphans.h"

#define ROUNDS 21
#define KILL_ROUNDS 5

static int compare_usec(const void *a, const void *b) {
        usec_t x = *(const usec_t *) a, y = *(const usec_t *) b;
        return x < y ? -1 : x > y;
}

static usec_t median(usec_t *v, size_t n) {
        qsort(v, n, sizeof *v, compare_usec);
        return v[n / 2];
}

static int fork_children(unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                pid_t pid = fork();
                if (pid < 0)
                        return -errno;
                if (pid == 0) {
                        (void) setsid();
                        for (;;)
                                pause();
                }
        }
        return 0;
}

static unsigned count_processes(void) {
        DIR *d = opendir("/proc");
        unsigned n = 0;
        for (struct dirent *de; d && (de = readdir(d));)
                n += de->d_name[0] >= '0' && de->d_name[0] <= '9';
        if (d)
                closedir(d);
        return n;
}

static unsigned scan_proc(pid_t self) {
        DIR *d = opendir("/proc");
        unsigned n = 0;
        for (struct dirent *de; d && (de = readdir(d));) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                pid_t ppid;
                if (!*end && pid > 0 && proc_get_ppid("/proc", (pid_t) pid, &ppid) == 0 && ppid == self)
                        n++;
        }
        if (d)
                closedir(d);
        return n;
}

static enum orphan_verdict keep(void *userdata, pid_t pid) {
        (void) userdata;
        (void) getpgid(pid);
        return ORPHAN_KEEP;
}

static enum orphan_verdict kill_all(void *userdata, pid_t pid) {
        (void) userdata;
        (void) getpgid(pid);
        return ORPHAN_KILL;
}

/* The list, scan and classify timings with n children, ROUNDS times. */
static int time_reads(pid_t self, unsigned n, usec_t *list, usec_t *scan, usec_t *classify) {
        for (int r = 0; r < ROUNDS; r++) {
                pid_t *pids = NULL;
                struct orphan_set set = {};
                struct orphan_sweep sw;
                usec_t t0 = now_monotonic();
                int got = proc_list_children("/proc", self, &pids);
                usec_t t1 = now_monotonic();
                free(pids);
                unsigned scanned = scan_proc(self);
                usec_t t2 = now_monotonic();
                (void) orphans_sweep("/proc", self, keep, NULL, UINT_MAX, &set, &sw);
                usec_t t3 = now_monotonic();
                orphan_set_free(&set);
                if (got != (int) n || scanned != n) {
                        fprintf(stderr, "listed %d, scanned %u, want %u\n", got, scanned, n);
                        return -1;
                }
                list[r] = t1 - t0;
                scan[r] = t2 - t1;
                classify[r] = t3 - t2;
        }
        return 0;
}

int main(void) {
        static const unsigned counts[] = { 0, 10, 100, 1000, 4000 };
        pid_t self = getpid();

        printf("processes on this machine before the bench: %u\n\n", count_processes());
        printf("| children | list (us) | scan /proc (us) | classify (us) | kill (us) | kill per child (us) |\n");
        printf("|---:|---:|---:|---:|---:|---:|\n");
        for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
                unsigned n = counts[c];
                usec_t list[ROUNDS], scan[ROUNDS], classify[ROUNDS], kill[KILL_ROUNDS];
                for (int k = 0; k < KILL_ROUNDS; k++) {
                        struct orphan_set set = {};
                        struct orphan_sweep sw;
                        if (fork_children(n) < 0) {
                                perror("fork");
                                return 1;
                        }
                        if (k == 0 && time_reads(self, n, list, scan, classify) < 0)
                                return 1;
                        (void) orphans_sweep("/proc", self, kill_all, NULL, UINT_MAX, &set, &sw);
                        kill[k] = sw.took;
                        for (unsigned i = 0; i < n; i++)
                                (void) wait(NULL);
                        orphan_set_free(&set);
                }
                usec_t k = median(kill, KILL_ROUNDS);
                printf("| %u | %llu | %llu | %llu | %llu | %.1f |\n", n, (unsigned long long) median(list, ROUNDS),
                       (unsigned long long) median(scan, ROUNDS), (unsigned long long) median(classify, ROUNDS),
                       (unsigned long long) k, n ? (double) k / n : 0.0);
                fflush(stdout);
        }
        return 0;
}
