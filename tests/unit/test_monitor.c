/* monitor_init()/monitor_resolve_limits() against a fake /proc: what a group limit that
 * cannot be read (systemd's ProcSubset=pid without MemoryMax=: no meminfo, no cgroup
 * limit) does to absolute and percentage sizes, and that a refused resolve leaves the
 * running values alone. No root: the proc root is a temporary directory.
 * And the re-registration of a lost PSI trigger: due at once, then one sample interval
 * later, doubling up to PSI_RETRY_MAX_USEC, while the pressure file is missing.
 * And what sampling a worker whose /proc files cannot be read returns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/config/config.h"
#include "memward/supervisor/monitor.h"

#define MiB (1024ULL * 1024)
#define MEMINFO "MemTotal:        4194304 kB\nMemFree:         1048576 kB\nMemAvailable:    2097152 kB\n"

struct fixture {
        char proc[64];
        char meminfo[128];
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        snprintf(f->proc, sizeof f->proc, "/tmp/memward-test-monitor-XXXXXX");
        assert_non_null(mkdtemp(f->proc));
        snprintf(f->meminfo, sizeof f->meminfo, "%s/meminfo", f->proc);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        (void) unlink(f->meminfo);
        (void) rmdir(f->proc);
        free(f);
        return 0;
}

static void write_meminfo(const struct fixture *f) {
        FILE *m = fopen(f->meminfo, "we");
        assert_non_null(m);
        assert_true(fputs(MEMINFO, m) >= 0);
        assert_int_equal(fclose(m), 0);
}

static struct memward_config *load(const char *yaml) {
        struct config_diagnostics d = {};
        struct memward_config *c = NULL;

        int r = config_load_string(yaml, strlen(yaml), "t.yaml", "/srv", &c, &d);
        if (r < 0)
                config_diagnostics_print(&d, stderr);
        assert_int_equal(r, 0);
        config_diagnostics_clear(&d);
        return c;
}

static void test_unknown_limit_absolute_sizes(void **state) {
        struct fixture *f = *state;
        struct memward_config *c = load("memory:\n  worker_high: 256MiB\n  worker_max: 512MiB\n");
        const char *key = NULL;
        struct monitor m;

        /* No meminfo, no cgroup: the limit is unknown, which alone is no error. */
        assert_int_equal(monitor_init(&m, c, f->proc, &key), 0);
        assert_null(key);
        assert_int_equal(m.cgroup.mode, ACCOUNTING_PROCFS);
        assert_int_equal(m.group_limit, 0);
        assert_int_equal(m.group_limit_error, -ENOENT);
        assert_string_equal(m.group_limit_source, f->meminfo);
        assert_int_equal(m.worker_high, 256 * MiB);
        assert_int_equal(m.worker_max, 512 * MiB);
        assert_int_equal(m.group_high, 0);

        monitor_done(&m);
        config_free(c);
}

static void test_unknown_limit_percentages(void **state) {
        struct fixture *f = *state;
        struct memward_config *c = load("memory:\n  worker_high: 256MiB\n  worker_max: 50%\n  group_high: 80%\n");
        const char *key = NULL;
        struct monitor m;

        /* The first percentage is named; nothing is resolved to a silent 0. */
        assert_int_equal(monitor_init(&m, c, f->proc, &key), -ENODATA);
        assert_string_equal(key, "memory.worker_max");
        assert_int_equal(m.group_limit_error, -ENOENT);
        assert_string_equal(m.group_limit_source, f->meminfo);
        assert_int_equal(m.worker_high, 0);
        assert_int_equal(m.worker_max, 0);

        monitor_done(&m);
        config_free(c);
}

static void test_limit_lost_on_reload(void **state) {
        struct fixture *f = *state;
        struct memward_config *c = load("memory:\n  worker_max: 50%\n  group_high: 80%\n");
        struct memward_config *next = load("memory:\n  worker_max: 25%\n");
        const char *key = NULL;
        struct monitor m;

        write_meminfo(f);
        assert_int_equal(monitor_init(&m, c, f->proc, &key), 0);
        assert_int_equal(m.group_limit_error, 0);
        assert_string_equal(m.group_limit_source, f->meminfo);
        assert_int_equal(m.group_limit, 4096 * MiB);
        assert_int_equal(m.worker_max, 2048 * MiB);
        assert_int_equal(m.group_high, (uint64_t) (4096 * MiB * 0.8));

        /* meminfo gone by the reload: refused, and the running values stay. */
        assert_int_equal(unlink(f->meminfo), 0);
        assert_int_equal(monitor_resolve_limits(&m, next, &key), -ENODATA);
        assert_string_equal(key, "memory.worker_max");
        assert_int_equal(m.group_limit_error, -ENOENT);
        assert_int_equal(m.group_limit, 4096 * MiB);
        assert_int_equal(m.worker_max, 2048 * MiB);
        assert_int_equal(m.group_high, (uint64_t) (4096 * MiB * 0.8));

        /* Back again: resolved against it. */
        write_meminfo(f);
        assert_int_equal(monitor_resolve_limits(&m, next, NULL), 0);
        assert_int_equal(m.group_limit_error, 0);
        assert_int_equal(m.worker_max, 1024 * MiB);
        assert_int_equal(m.group_high, 0);

        monitor_done(&m);
        config_free(c);
        config_free(next);
}

static void test_pressure_retry_backoff(void **state) {
        struct memward_config *c = NULL;
        struct monitor m = { .psi_fd = -1 };
        usec_t now = 1000 * USEC_PER_SEC;
        (void) state;

        assert_int_equal(config_new_default(&c), 0);
        c->pressure.enabled = true;
        c->memory.sample_interval = USEC_PER_SEC;
        snprintf(m.cgroup.pressure_path, sizeof m.cgroup.pressure_path, "/nonexistent/memory.pressure");

        /* Nothing lost, nothing to do. */
        assert_int_equal(monitor_pressure_retry(&m, c, now), -EAGAIN);

        monitor_pressure_lost(&m, now);
        assert_true(m.psi_lost);
        assert_int_equal(m.psi_fd, -1);
        assert_int_equal(monitor_pressure_retry(&m, c, now), -ENOENT);
        assert_true(m.psi_retry_at == now + USEC_PER_SEC);
        assert_int_equal(monitor_pressure_retry(&m, c, now + USEC_PER_SEC - 1), -EAGAIN);

        usec_t steps[] = { 2, 4, 8, 10, 10 };
        for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
                now = m.psi_retry_at;
                assert_int_equal(monitor_pressure_retry(&m, c, now), -ENOENT);
                assert_true(m.psi_retry_at - now == steps[i] * USEC_PER_SEC);
        }
        assert_true(m.psi_lost);
        /* Until a trigger is back, the tick compares avg10 — but only one it could read. */
        assert_true(m.psi_polling);
        assert_true(monitor_read_pressure(&m) < 0);
        assert_false(m.has_psi);
        config_free(c);
}

/* A worker that is there but whose smaps_rollup is not (before 4.14): not "gone", and
 * the path that failed is named for the warning. Once its directory is gone, it is. */
static void test_sample_unreadable_worker(void **state) {
        struct fixture *f = *state;
        struct memward_config *c = NULL;
        struct monitor m = { .proc_root = f->proc, .psi_fd = -1 };
        struct worker w = { .pid = 77, .spawned_at = USEC_PER_SEC };
        char dir[128], expected[192];

        assert_int_equal(config_new_default(&c), 0);
        m.cgroup = (struct cgroup_setup) { .mode = ACCOUNTING_PROCFS, .group_fd = -1 };
        assert_int_equal(monitor_worker_prepare(&m, &w, c), -1);
        snprintf(dir, sizeof dir, "%s/77", f->proc);
        assert_int_equal(mkdir(dir, 0755), 0);

        assert_int_equal(monitor_worker_sample(&m, &w, c, 2 * USEC_PER_SEC), -ENOENT);
        snprintf(expected, sizeof expected, "%s/smaps_rollup", dir);
        assert_string_equal(m.sample_error_path, expected);
        assert_false(w.mem.sampled);

        assert_int_equal(rmdir(dir), 0);
        assert_int_equal(monitor_worker_sample(&m, &w, c, 3 * USEC_PER_SEC), -ESRCH);
        config_free(c);
}

/* A gunicorn slot as this host's kernel (6.18) showed it, arbiter 6943 and its sync
 * worker 6948 (tests/fixtures/proc): they share 16,752 kB of copy-on-write pages, which
 * each one's Anonymous and statm count again. */
#define FIXTURE_PROC FIXTURES_DIR "/proc"
#define KIB 1024ULL
#define SLOT_PSS_ANON ((11954 + 11994) * KIB)
#define SLOT_ANONYMOUS ((20328 + 20368) * KIB)
#define SLOT_USS ((3580 + 3624) * KIB)

static void sample_fixture(pid_t pid, unsigned long long template_generation, struct worker_memory *ret) {
        struct memward_config *c = NULL;
        struct monitor m = { .proc_root = FIXTURE_PROC, .psi_fd = -1 };
        struct worker w = { .pid = pid, .spawned_at = USEC_PER_SEC, .template_generation = template_generation };

        assert_int_equal(config_new_default(&c), 0);
        m.cgroup = (struct cgroup_setup) { .mode = ACCOUNTING_PROCFS, .group_fd = -1 };
        assert_int_equal(monitor_worker_prepare(&m, &w, c), -1);
        assert_int_equal(monitor_worker_sample(&m, &w, c, 2 * USEC_PER_SEC), 0);
        assert_true(w.mem.sampled);
        /* The figure the policies judge is the one reported as anon. */
        assert_true(w.mem.metric == w.mem.anon);
        *ret = w.mem;
        config_free(c);
}

/* Exec'd: what the slot costs, each shared page once (Pss_Anon summed), not each
 * process's Anonymous added up (the figure before), nor the USS, which leaves the
 * shared pages out altogether. */
static void test_sample_exec_slot_counts_shared_pages_once(void **state) {
        struct worker_memory mem;
        (void) state;

        sample_fixture(6943, 0, &mem);
        assert_int_equal(mem.anon_from, MEMORY_READING_PSS_ANON);
        assert_true(mem.anon == SLOT_PSS_ANON);
        assert_true(mem.anon < SLOT_ANONYMOUS * 6 / 10);
        assert_true(mem.anon > SLOT_USS + 16000 * KIB);
        assert_true(mem.current == (30120 + 26064) * KIB);
        assert_string_equal(memory_reading_to_string(mem.anon_from), "pss_anon");
}

/* Forked from a template: still its USS (docs/fork-server.md §6). */
static void test_sample_forked_worker_keeps_uss(void **state) {
        struct worker_memory mem;
        (void) state;

        sample_fixture(6943, 1, &mem);
        assert_int_equal(mem.anon_from, MEMORY_READING_USS);
        assert_true(mem.anon == SLOT_USS);
}

/* A kernel before 5.3 (the same slot, its Pss_* lines taken out): Anonymous, named. */
static void test_sample_without_pss_anon(void **state) {
        struct worker_memory mem;
        (void) state;

        sample_fixture(16943, 0, &mem);
        assert_int_equal(mem.anon_from, MEMORY_READING_ANONYMOUS);
        assert_true(mem.anon == SLOT_ANONYMOUS);
        assert_string_equal(memory_reading_to_string(mem.anon_from), "anonymous");
}

/* Request ends read the figure the tick reads: statm for one process (no page walk, and
 * the same number), Pss_Anon summed for a tree of several, the USS when forked. */
static void test_boundary_reading_matches_sample(void **state) {
        struct memward_config *c = NULL;
        struct monitor m = { .proc_root = FIXTURE_PROC, .psi_fd = -1 };
        struct worker w = { .pid = 6943 };
        enum memory_reading from;
        uint64_t value, metric;
        (void) state;

        assert_int_equal(config_new_default(&c), 0);
        m.cgroup = (struct cgroup_setup) { .mode = ACCOUNTING_PROCFS, .group_fd = -1 };
        assert_int_equal(monitor_worker_prepare(&m, &w, c), -1);

        assert_int_equal(monitor_worker_boundary_read(&m, &w, c, &value, &from, &metric), 1);
        assert_int_equal(from, MEMORY_READING_PSS_ANON);
        assert_true(value == SLOT_PSS_ANON);

        /* The worker process alone: its statm's resident - shared, its Anonymous. */
        w.pid = 6948;
        assert_int_equal(monitor_worker_boundary_read(&m, &w, c, &value, &from, &metric), 1);
        assert_int_equal(from, MEMORY_READING_STATM);
        assert_true(value == 20368 * KIB);

        w.pid = 6943;
        w.template_generation = 1;
        assert_int_equal(monitor_worker_boundary_read(&m, &w, c, &value, &from, &metric), 1);
        assert_int_equal(from, MEMORY_READING_USS);
        assert_true(value == SLOT_USS);

        /* No Pss_Anon: statm's sum, which the tick's Anonymous equals. */
        w.pid = 16943;
        w.template_generation = 0;
        assert_int_equal(monitor_worker_boundary_read(&m, &w, c, &value, &from, &metric), 1);
        assert_int_equal(from, MEMORY_READING_STATM);
        assert_true(value == SLOT_ANONYMOUS);
        config_free(c);
}

static void write_text(const char *path, const char *text) {
        FILE *fp = fopen(path, "we");
        assert_non_null(fp);
        assert_true(fputs(text, fp) >= 0);
        assert_int_equal(fclose(fp), 0);
}

/* A worker's figure against group_high must be in memory.metric's unit whether the tick
 * or a request end read it last, or the group's sum mixes units. A worker forked from a
 * template (procfs mode): 60 MiB resident, 58 of it anonymous and most of that the
 * template's, 25 MiB Pss, 2 MiB its own (USS). The request end's reading for
 * retained_requests is the USS in every metric; the figure it gives for group_high is
 * the tick's. An exec'd worker's statm reading has the tick's figure for anon only. */
static void test_boundary_read_gives_the_ticks_figure(void **state) {
        struct fixture *f = *state;
        struct memward_config *c = NULL;
        struct monitor m = { .proc_root = f->proc, .psi_fd = -1 };
        struct worker w = { .pid = 78, .spawned_at = USEC_PER_SEC, .template_generation = 1 };
        char path[192];
        const enum memory_metric metrics[] = { MEMORY_METRIC_ANON, MEMORY_METRIC_CURRENT, MEMORY_METRIC_RSS,
                                                MEMORY_METRIC_PSS };

        assert_int_equal(config_new_default(&c), 0);
        m.cgroup = (struct cgroup_setup) { .mode = ACCOUNTING_PROCFS, .group_fd = -1 };
        assert_int_equal(monitor_worker_prepare(&m, &w, c), -1);
        snprintf(path, sizeof path, "%s/78", f->proc);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/78/smaps_rollup", f->proc);
        write_text(path, "00400000-7fff00000000 ---p 00000000 00:00 0                          [rollup]\n"
                         "Rss:               61440 kB\nPss:               25600 kB\nShared_Clean:       2048 kB\n"
                         "Shared_Dirty:      57344 kB\nPrivate_Clean:         0 kB\nPrivate_Dirty:      2048 kB\n"
                         "Anonymous:         59392 kB\n");
        /* resident 15360 pages (60 MiB), shared (file) 512 */
        snprintf(path, sizeof path, "%s/78/statm", f->proc);
        write_text(path, "99999 15360 512 10 0 5000 0\n");

        for (size_t i = 0; i < ELEMENTSOF(metrics); i++) {
                enum memory_reading from;
                uint64_t value = 0, metric = 0;
                c->memory.metric = metrics[i];
                w.template_generation = 1;
                assert_int_equal(monitor_worker_sample(&m, &w, c, (2 + i) * USEC_PER_SEC), 0);
                assert_int_equal(monitor_worker_boundary_read(&m, &w, c, &value, &from, &metric), 1);
                assert_true(value == 2 * MiB);
                assert_true(metric == w.mem.metric);
                assert_true(metric == (metrics[i] == MEMORY_METRIC_PSS    ? 25 * MiB
                                       : metrics[i] == MEMORY_METRIC_ANON ? 2 * MiB
                                                                          : 60 * MiB));

                /* Exec'd: statm's resident minus shared, no page walk. */
                w.template_generation = 0;
                assert_int_equal(monitor_worker_sample(&m, &w, c, (2 + i) * USEC_PER_SEC), 0);
                metric = 12345;
                int r = monitor_worker_boundary_read(&m, &w, c, &value, &from, &metric);
                assert_true(value == 58 * MiB);
                if (metrics[i] == MEMORY_METRIC_ANON) {
                        assert_int_equal(r, 1);
                        assert_true(metric == 58 * MiB && w.mem.metric == 58 * MiB);
                } else {
                        assert_int_equal(r, 0);
                        assert_true(metric == 12345);
                }
        }
        snprintf(path, sizeof path, "%s/78/smaps_rollup", f->proc);
        assert_int_equal(unlink(path), 0);
        snprintf(path, sizeof path, "%s/78/statm", f->proc);
        assert_int_equal(unlink(path), 0);
        snprintf(path, sizeof path, "%s/78", f->proc);
        assert_int_equal(rmdir(path), 0);
        config_free(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_unknown_limit_absolute_sizes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_limit_percentages, setup, teardown),
                cmocka_unit_test_setup_teardown(test_limit_lost_on_reload, setup, teardown),
                cmocka_unit_test(test_pressure_retry_backoff),
                cmocka_unit_test_setup_teardown(test_sample_unreadable_worker, setup, teardown),
                cmocka_unit_test_setup_teardown(test_boundary_read_gives_the_ticks_figure, setup, teardown),
                cmocka_unit_test(test_sample_exec_slot_counts_shared_pages_once),
                cmocka_unit_test(test_sample_forked_worker_keeps_uss),
                cmocka_unit_test(test_sample_without_pss_anon),
                cmocka_unit_test(test_boundary_reading_matches_sample),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
