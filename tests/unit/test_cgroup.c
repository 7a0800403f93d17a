/* procfs mode's process-tree sums against a fake /proc: which processes count as a
 * worker's, and what a vanished worker returns. No root: the proc root is a temporary
 * directory with <pid>/smaps_rollup, <pid>/statm and <pid>/task/<tid>/children.
 * And the group limit over a fake cgroup2 tree in the same kind of directory. */
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

#include "memward/linux/cgroup.h"

#define KiB 1024ULL

struct fixture {
        char root[64];
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        snprintf(f->root, sizeof f->root, "/tmp/memward-test-cgroup-XXXXXX");
        assert_non_null(mkdtemp(f->root));
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static void write_file(const char *path, const char *text) {
        FILE *fp = fopen(path, "we");
        assert_non_null(fp);
        assert_true(fputs(text, fp) >= 0);
        assert_int_equal(fclose(fp), 0);
}

/* A process with anonymous memory anon_kib (its Rss and Pss the same), statm private
 * pages private_pages, and threads tids[] whose children lists are children[]. */
static void add_process(const struct fixture *f, int pid, unsigned anon_kib, unsigned private_pages,
                        const int *tids, const char *const *children, size_t n_threads) {
        char path[256], text[256];

        snprintf(path, sizeof path, "%s/%d", f->root, pid);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/%d/task", f->root, pid);
        assert_int_equal(mkdir(path, 0755), 0);

        snprintf(path, sizeof path, "%s/%d/smaps_rollup", f->root, pid);
        snprintf(text, sizeof text,
                 "00400000-7fff00000000 ---p 00000000 00:00 0                          [rollup]\n"
                 "Rss:             %u kB\nPss:             %u kB\nAnonymous:       %u kB\n",
                 anon_kib, anon_kib, anon_kib);
        write_file(path, text);

        /* size resident shared text lib data dt: 100 shared pages on top of the private. */
        snprintf(path, sizeof path, "%s/%d/statm", f->root, pid);
        snprintf(text, sizeof text, "9999 %u 100 10 0 500 0\n", private_pages + 100);
        write_file(path, text);

        for (size_t i = 0; i < n_threads; i++) {
                snprintf(path, sizeof path, "%s/%d/task/%d", f->root, pid, tids[i]);
                assert_int_equal(mkdir(path, 0755), 0);
                snprintf(path, sizeof path, "%s/%d/task/%d/children", f->root, pid, tids[i]);
                write_file(path, children[i]);
        }
}

/* A threaded worker (gthread, puma) whose request thread started a subprocess: the
 * kernel lists that child under the thread, not under the main thread. */
static void test_tree_counts_children_of_every_thread(void **state) {
        const struct fixture *f = *state;
        const int tids[] = { 100, 101, 102 };
        const char *const children[] = { "", "200 ", "" };
        const int child_tids[] = { 200 };
        const char *const grandchildren[] = { "300 " };
        const int leaf_tids[] = { 300 };
        const char *const none[] = { "" };

        add_process(f, 100, 10240, 2560, tids, children, 3);
        add_process(f, 200, 204800, 51200, child_tids, grandchildren, 1);
        add_process(f, 300, 1024, 256, leaf_tids, none, 1);

        struct smaps_rollup sum;
        assert_int_equal(procfs_tree_memory(f->root, 100, &sum), 0);
        assert_int_equal(sum.anonymous, (10240 + 204800 + 1024) * KiB);
        assert_int_equal(sum.rss, (10240 + 204800 + 1024) * KiB);
        assert_false(sum.has_private); /* no Private_* lines here: no USS, not a made-up one */

        uint64_t private_bytes;
        long page = sysconf(_SC_PAGESIZE);
        assert_int_equal(procfs_private_memory(f->root, 100, &private_bytes, NULL), 0);
        assert_int_equal(private_bytes, (2560ULL + 51200 + 256) * (uint64_t) page);

        /* A subtree on its own: the child's memory without its parent's. */
        assert_int_equal(procfs_private_memory(f->root, 200, &private_bytes, NULL), 0);
        assert_int_equal(private_bytes, (51200ULL + 256) * (uint64_t) page);
}

/* A gunicorn arbiter as the worker: the request-end reading must include the child
 * that holds the app, or retained_requests never sees a retained request. */
static void test_request_end_reading_includes_children(void **state) {
        const struct fixture *f = *state;
        const int arbiter_tids[] = { 10 };
        const char *const arbiter_children[] = { "11" };
        const int worker_tids[] = { 11 };
        const char *const none[] = { "" };

        add_process(f, 10, 20480, 5120, arbiter_tids, arbiter_children, 1);
        add_process(f, 11, 153600, 38400, worker_tids, none, 1);

        uint64_t private_bytes;
        unsigned processes;
        long page = sysconf(_SC_PAGESIZE);
        assert_int_equal(procfs_private_memory(f->root, 10, &private_bytes, &processes), 0);
        assert_int_equal(private_bytes, (5120ULL + 38400) * (uint64_t) page);
        /* Two processes: the caller knows their copy-on-write pages may be in both. */
        assert_int_equal(processes, 2);
}

/* The worker itself gone: -ESRCH, whatever is left of its children. A child that
 * vanished between the children list and its own files is skipped. */
static void test_vanished_processes(void **state) {
        const struct fixture *f = *state;
        const int tids[] = { 50 };
        const char *const children[] = { "51 52" };
        const char *const none[] = { "" };
        const int child_tids[] = { 52 };

        struct smaps_rollup sum;
        uint64_t private_bytes;
        assert_int_equal(procfs_tree_memory(f->root, 40, &sum), -ESRCH);
        assert_int_equal(procfs_private_memory(f->root, 40, &private_bytes, NULL), -ESRCH);

        add_process(f, 50, 4096, 1024, tids, children, 1);
        add_process(f, 52, 2048, 512, child_tids, none, 1);     /* 51 is gone */
        assert_int_equal(procfs_tree_memory(f->root, 50, &sum), 0);
        assert_int_equal(sum.anonymous, (4096 + 2048) * KiB);
        assert_int_equal(procfs_private_memory(f->root, 50, &private_bytes, NULL), 0);
        assert_int_equal(private_bytes, (1024ULL + 512) * (uint64_t) sysconf(_SC_PAGESIZE));
}

/* A host with thousands of mounts (a busy Kubernetes node): the cgroup2 line comes
 * after the first 64 kB of mountinfo and must still be found. The fake mount point has
 * "memory" in its cgroup.controllers but no cgroup.subtree_control, so the set-up gets
 * as far as "not writable" -- past "cgroup2 is not mounted". */
static void test_long_mountinfo(void **state) {
        const struct fixture *f = *state;
        char path[256], mount[200], line[512];

        snprintf(path, sizeof path, "%s/self", f->root);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/self/cgroup", f->root);
        write_file(path, "0::/app.service\n");
        snprintf(mount, sizeof mount, "%s/cg2", f->root);
        assert_int_equal(mkdir(mount, 0755), 0);
        snprintf(path, sizeof path, "%s/app.service", mount);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/app.service/cgroup.controllers", mount);
        write_file(path, "cpu io memory pids\n");

        snprintf(path, sizeof path, "%s/self/mountinfo", f->root);
        FILE *fp = fopen(path, "we");
        assert_non_null(fp);
        for (int i = 0; i < 3000; i++)
                assert_true(fprintf(fp, "%d 30 0:%d / /var/lib/kubelet/pods/%08d-pod/volumes/kubernetes.io~projected/"
                                        "kube-api-access rw,relatime shared:%d - tmpfs tmpfs rw,size=1024k\n",
                                    100 + i, 60 + i, i, 200 + i) > 0);
        snprintf(line, sizeof line, "9999 30 0:27 / %s rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw\n",
                 mount);
        assert_true(fputs(line, fp) >= 0);
        assert_true(ftell(fp) > 64 * 1024);
        assert_int_equal(fclose(fp), 0);

        struct cgroup_setup s;
        cgroup_setup_init(&s, f->root);
        assert_int_equal(s.mode, ACCOUNTING_PROCFS);
        assert_null(strstr(s.reason, "not mounted"));
        assert_non_null(strstr(s.reason, "not writable"));
        cgroup_setup_done(&s);
}

/* A kernel before 4.14 has no smaps_rollup: the worker is there, its file is not. That
 * must not read as "the worker is gone", or no memory rule ever judges it, silently. */
static void test_missing_file_is_not_a_vanished_process(void **state) {
        const struct fixture *f = *state;
        const int tids[] = { 60 };
        const char *const none[] = { "" };
        char path[256];

        add_process(f, 60, 4096, 1024, tids, none, 1);
        snprintf(path, sizeof path, "%s/60/smaps_rollup", f->root);
        assert_int_equal(unlink(path), 0);

        struct smaps_rollup sum;
        assert_int_equal(procfs_tree_memory(f->root, 60, &sum), -ENOENT);
        /* statm, which every kernel has, still works. */
        uint64_t private_bytes;
        assert_int_equal(procfs_private_memory(f->root, 60, &private_bytes, NULL), 0);
}

/* A cgroup directory below the fixture root with memory.max max_text ("max", a number,
 * or NULL for none, as the root has). Parents first. */
static void add_cgroup(const struct fixture *f, const char *dir, const char *max_text) {
        char path[256];

        snprintf(path, sizeof path, "%s%s", f->root, dir);
        assert_int_equal(mkdir(path, 0755), 0);
        if (!max_text)
                return;
        snprintf(path, sizeof path, "%s%s/memory.max", f->root, dir);
        write_file(path, max_text);
}

/* MemoryMax=2G on the service but 1G on its slice: the slice's limit is what the kernel
 * enforces, so percentages are of 1G, whichever limit is nearer. */
static void test_group_limit_is_the_smallest_above(void **state) {
        const struct fixture *f = *state;
        struct cgroup_setup s = { .mode = ACCOUNTING_CGROUP, .group_fd = -1 };
        char source[512], expected[512];
        uint64_t limit = 0;

        add_cgroup(f, "/app.slice", "1073741824\n");
        add_cgroup(f, "/app.slice/sub.slice", "max\n");
        add_cgroup(f, "/app.slice/sub.slice/app.service", "2147483648\n");
        snprintf(s.group_path, sizeof s.group_path, "%s/app.slice/sub.slice/app.service", f->root);

        assert_int_equal(cgroup_group_limit(&s, f->root, &limit, source, sizeof source), 0);
        assert_int_equal(limit, 1073741824ULL);
        snprintf(expected, sizeof expected, "%s/app.slice/memory.max", f->root);
        assert_string_equal(source, expected);

        /* The nearest one, when it is the tightest. */
        snprintf(expected, sizeof expected, "%s/app.slice/sub.slice/app.service/memory.max", f->root);
        write_file(expected, "536870912\n");
        assert_int_equal(cgroup_group_limit(&s, f->root, &limit, source, sizeof source), 0);
        assert_int_equal(limit, 536870912ULL);
        assert_string_equal(source, expected);
}

/* Whether an orphan is in one of memward's leaves (cgroup mode: the leaf's kill takes it). */
static void test_process_in_leaf(void **state) {
        (void) state;
        assert_true(cgroup_path_is_leaf("/app/worker-0-1"));
        assert_true(cgroup_path_is_leaf("/system.slice/app.service/template-3"));
        assert_false(cgroup_path_is_leaf("/app/init"));
        assert_false(cgroup_path_is_leaf("/app/worker"));
        assert_false(cgroup_path_is_leaf("/worker-0-1/init"));
        assert_false(cgroup_path_is_leaf("/"));
        assert_int_equal(cgroup_process_in_leaf(FIXTURES_DIR "/proc", 4242), 1);
        assert_int_equal(cgroup_process_in_leaf(FIXTURES_DIR "/proc", 4200), 0);
        assert_int_equal(cgroup_process_in_leaf(FIXTURES_DIR "/proc", 999999), -ESRCH);
        assert_int_equal(cgroup_process_in_leaf(FIXTURES_DIR "/proc-scan", 4242), -ESRCH);
}

/* A template's worker after SPAWNED: in its leaf directly under memward's group, or not. */
static void test_text_in_leaf(void **state) {
        (void) state;
        static const struct {
                const char *text, *group;
                int want;
        } cases[] = {
                { "0::/system.slice/app.service/worker-1-2\n", NULL, 1 },
                /* Still in the template's leaf: the template did not place it. */
                { "0::/system.slice/app.service/template-1\n", NULL, 0 },
                /* Another slot's leaf, a leaf of that name elsewhere, a name that only ends alike. */
                { "0::/system.slice/app.service/worker-0-2\n", NULL, 0 },
                { "0::/system.slice/other.service/worker-1-2\n", NULL, 0 },
                { "0::/system.slice/xapp.service/worker-1-2\n", "/sys/fs/cgroup/app.service", 0 },
                { "0::/system.slice/app.service/xworker-1-2\n", NULL, 0 },
                /* Below its leaf is not in it (nothing accounts a sub-cgroup's limit for it). */
                { "0::/system.slice/app.service/worker-1-2/sub\n", NULL, 0 },
                /* memward's group at the root of the hierarchy (a container's namespace). */
                { "0::/worker-1-2\n", "/sys/fs/cgroup", 1 },
                /* v1 lines first, as on a hybrid system; no v2 line at all. */
                { "4:memory:/x\n0::/system.slice/app.service/worker-1-2", NULL, 1 },
                { "4:memory:/x", NULL, -ENOENT },
        };
        char where[256];

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                const char *group = cases[i].group ?: "/sys/fs/cgroup/system.slice/app.service";
                int r = cgroup_text_in_leaf(cases[i].text, strlen(cases[i].text), group, "worker-1-2", where,
                                            sizeof where);
                if (r != cases[i].want)
                        fail_msg("case %zu (%s): %d, want %d", i, cases[i].text, r, cases[i].want);
        }
        assert_int_equal(cgroup_text_in_leaf("0::/a/template-1\n", 17, "/sys/fs/cgroup/a", "worker-1-2", where,
                                             sizeof where),
                         0);
        assert_string_equal(where, "/a/template-1");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_process_in_leaf),
                cmocka_unit_test_setup_teardown(test_tree_counts_children_of_every_thread, setup, teardown),
                cmocka_unit_test_setup_teardown(test_request_end_reading_includes_children, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vanished_processes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_long_mountinfo, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_file_is_not_a_vanished_process, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_limit_is_the_smallest_above, setup, teardown),
                cmocka_unit_test(test_text_in_leaf),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
