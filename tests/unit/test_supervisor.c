/* The supervisor's choice of a victim for a group-level recycle (group_high, pressure),
 * on a hand-built supervisor with more workers than any fixed-size scratch array
 * would hold: no loop, no processes, no /proc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memward/supervisor/supervisor.h"
#include "memward/supervisor/template.h"

#define S USEC_PER_SEC
#define MiB (1024ULL * 1024ULL)
#define NOW (10000 * S)
#define SLOTS 70

struct fixture {
        struct supervisor s;
        struct slot slots[SLOTS];
        struct worker active[SLOTS];
        struct worker replacement[SLOTS];
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        assert_int_equal(config_new_default(&f->s.config), 0);
        f->s.slots = f->slots;
        f->s.n_slots = f->s.target = SLOTS;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        config_free(f->s.config);
        free(f);
        return 0;
}

/* w in its slot, ready since spawned_at, with a whole retained_window of samples at
 * floor; pushed to the head of the worker list, which is newest first. */
static void add_worker(struct fixture *f, struct worker *w, unsigned slot, usec_t spawned_at, uint64_t floor) {
        usec_t window = f->s.config->memory.retained_window;

        *w = (struct worker) { .slot = slot, .pid = (pid_t) (1000 + slot), .state = WORKER_READY,
                               .spawned_at = spawned_at };
        floor_window_init(&w->mem.floor, window);
        for (usec_t t = NOW - window; t <= NOW; t += window / 8)
                floor_window_add(&w->mem.floor, t, floor);
        w->next = f->s.workers;
        f->s.workers = w;
        f->s.n_workers++;
}

/* Workers spawned in slot order, so slot 0 is the oldest and the last in the list. */
static void add_actives(struct fixture *f, uint64_t (*floor_of)(unsigned slot)) {
        for (unsigned i = 0; i < SLOTS; i++) {
                add_worker(f, &f->active[i], i, (i + 1) * S, floor_of(i));
                f->slots[i].active = &f->active[i];
        }
}

static uint64_t oldest_is_largest(unsigned slot) {
        return slot == 0 ? 900 * MiB : 100 * MiB + slot * MiB;
}

static uint64_t all_equal(unsigned slot) {
        (void) slot;
        return 300 * MiB;
}

static void assert_only_victim(const struct fixture *f, unsigned slot, enum recycle_reason reason) {
        for (unsigned i = 0; i < SLOTS; i++)
                assert_int_equal(f->active[i].recycle_reason, i == slot ? reason : RECYCLE_NONE);
}

/* The oldest worker, typically the largest, is at the end of a list longer than 64. */
static void test_victim_is_the_largest_of_all_workers(void **state) {
        struct fixture *f = *state;

        add_actives(f, oldest_is_largest);
        assert_true(supervisor_group_recycle(&f->s, RECYCLE_GROUP_HIGH, NOW, false));
        assert_only_victim(f, 0, RECYCLE_GROUP_HIGH);
        assert_true(f->s.last_group_recycle == NOW);
        /* What chose it is kept with it, for the log line, /status and /metrics. */
        assert_int_equal(f->active[0].figure.source, POLICY_FLOOR_WINDOW);
        assert_true(f->active[0].figure.floor == 900 * MiB);
        assert_true(f->active[0].recycle_due_at == NOW);

        /* Within the cooldown nothing more is marked. */
        assert_false(supervisor_group_recycle(&f->s, RECYCLE_GROUP_HIGH, NOW + S, false));
        assert_only_victim(f, 0, RECYCLE_GROUP_HIGH);
}

static void test_victim_ties_go_to_the_oldest_of_all(void **state) {
        struct fixture *f = *state;

        add_actives(f, all_equal);
        assert_true(supervisor_group_recycle(&f->s, RECYCLE_PRESSURE, NOW, false));
        assert_only_victim(f, 0, RECYCLE_PRESSURE);
}

/* 64 recycles in flight: their replacements, still starting, head the list. The six
 * workers that can still be recycled come after them, and the largest must be found. */
static void test_victim_behind_replacements(void **state) {
        struct fixture *f = *state;

        add_actives(f, oldest_is_largest);
        for (unsigned i = 0; i < 64; i++) {
                f->active[i].recycle_reason = RECYCLE_MAX_REQUESTS;
                f->active[i].recycle_started = true;
                add_worker(f, &f->replacement[i], i, NOW - S, 50 * MiB);
                f->replacement[i].state = WORKER_STARTING;
                f->slots[i].replacement = &f->replacement[i];
        }
        assert_true(supervisor_group_recycle(&f->s, RECYCLE_GROUP_HIGH, NOW, false));
        for (unsigned i = 0; i < SLOTS; i++)
                assert_int_equal(f->active[i].recycle_reason,
                                 i < 64 ? RECYCLE_MAX_REQUESTS : i == SLOTS - 1 ? RECYCLE_GROUP_HIGH : RECYCLE_NONE);
        for (unsigned i = 0; i < 64; i++)
                assert_int_equal(f->replacement[i].recycle_reason, RECYCLE_NONE);
}

/* Ready workers are counted by slot, up to the target: a ready replacement, a slot
 * beyond the target (after SIGTTOU) and an empty slot do not count. */
static void test_ready_workers(void **state) {
        struct fixture *f = *state;

        assert_int_equal(supervisor_ready_workers(&f->s), 0);
        add_actives(f, all_equal);
        assert_int_equal(supervisor_ready_workers(&f->s), SLOTS);
        f->active[0].state = WORKER_STARTING;
        add_worker(f, &f->replacement[0], 0, NOW - S, 50 * MiB);
        f->slots[0].replacement = &f->replacement[0];
        f->active[1].state = WORKER_STOPPING;
        f->slots[2].active = NULL;
        assert_int_equal(supervisor_ready_workers(&f->s), SLOTS - 3);
        f->s.target = 10;
        assert_int_equal(supervisor_ready_workers(&f->s), 7);
}

/* n ready workers in slots 0..n-1 (floor 100 MiB), each holding latest against
 * group_high, under a budget of group_high. */
static void add_group(struct fixture *f, unsigned n, uint64_t latest, uint64_t group_high) {
        f->s.n_slots = f->s.target = n;
        for (unsigned i = 0; i < n; i++) {
                add_worker(f, &f->active[i], i, (i + 1) * S, 100 * MiB);
                f->active[i].mem.latest = latest;
                f->slots[i].active = &f->active[i];
        }
        f->s.monitor.group_high = group_high;
}

/* group_high judges what the group costs: in template mode the workers' figures are
 * their private memory, and the template's share (the pages they all map) is added.
 * Three workers at 100 MiB under a 400 MiB budget: not over in exec mode; over with a
 * 150 MiB template, whose figure follows memory.metric. */
static void test_group_high_counts_the_template(void **state) {
        struct fixture *f = *state;
        struct template_process t = { .pid = 4242, .generation = 1 };

        add_group(f, 3, 100 * MiB, 400 * MiB);

        assert_false(supervisor_check_group_high(&f->s, NOW, true));
        assert_true(f->s.monitor.workers_total == 300 * MiB);
        assert_true(f->s.monitor.templates_total == 0);

        /* A template not sampled yet counts nothing; a sampled one its metric's figure. */
        f->s.template = &t;
        assert_false(supervisor_check_group_high(&f->s, NOW, true));
        t.mem = (struct template_memory) { .sampled = true, .current = 160 * MiB, .anon = 150 * MiB,
                                           .rss = 90 * MiB, .pss = 60 * MiB };
        f->s.config->memory.metric = MEMORY_METRIC_PSS;
        assert_false(supervisor_check_group_high(&f->s, NOW, true));     /* 300 + 60 */
        assert_true(f->s.monitor.templates_total == 60 * MiB);
        f->s.config->memory.metric = MEMORY_METRIC_ANON;
        assert_true(supervisor_check_group_high(&f->s, NOW, true));      /* 300 + 150 */
        assert_true(f->s.monitor.templates_total == 150 * MiB);
        assert_true(f->s.monitor.workers_total == 300 * MiB);
        assert_int_equal(f->active[0].recycle_reason, RECYCLE_GROUP_HIGH);
        assert_int_equal(f->active[1].recycle_reason, RECYCLE_NONE);

        /* A worker's Rss counts every template page it maps: the template adds only the
         * pages it alone maps (its USS), or the 3 workers' sum would count the shared
         * ones a fourth time. The same for current in procfs mode, which is the Rss. */
        t.mem.uss = 4 * MiB;
        f->active[0].recycle_reason = RECYCLE_NONE;
        f->s.last_group_recycle = 0;
        f->s.config->memory.metric = MEMORY_METRIC_RSS;
        assert_false(supervisor_check_group_high(&f->s, NOW, true));     /* 300 + 4, not 300 + 90 */
        assert_true(f->s.monitor.templates_total == 4 * MiB);
        f->s.config->memory.metric = MEMORY_METRIC_CURRENT;
        assert_true(supervisor_check_group_high(&f->s, NOW, true));      /* cgroup: 300 + its leaf's 160 */
        assert_true(f->s.monitor.templates_total == 160 * MiB);
        f->active[0].recycle_reason = RECYCLE_NONE;
        f->s.last_group_recycle = 0;
        f->s.monitor.cgroup.mode = ACCOUNTING_PROCFS;
        assert_false(supervisor_check_group_high(&f->s, NOW, true));     /* procfs: 300 + 4 */
        assert_true(f->s.monitor.templates_total == 4 * MiB);
        f->s.config->memory.metric = MEMORY_METRIC_ANON;
        assert_true(supervisor_check_group_high(&f->s, NOW, true));      /* procfs anon: the workers' USS + 150 */
        assert_true(f->s.monitor.templates_total == 150 * MiB);

        /* A template that is gone counts nothing. */
        f->active[0].recycle_reason = RECYCLE_NONE;
        f->s.last_group_recycle = 0;
        t.pid = 0;
        assert_false(supervisor_check_group_high(&f->s, NOW, true));
        assert_true(f->s.monitor.templates_total == 0);
        f->s.template = NULL;
}

/* After a reload the old template is retired, and its workers still map its pages until
 * they are rolled: it counts while its process lives. */
static void test_group_high_counts_a_retired_template(void **state) {
        struct fixture *f = *state;
        struct template_process t = { .pid = 4242, .generation = 2 }, old = { .pid = 4141, .generation = 1 };

        add_group(f, 2, 10 * MiB, 400 * MiB);
        f->s.config->memory.metric = MEMORY_METRIC_ANON;
        t.mem = (struct template_memory) { .sampled = true, .anon = 150 * MiB };
        old.mem = (struct template_memory) { .sampled = true, .anon = 250 * MiB };
        old.retired = true;
        f->s.template = &t;
        f->s.templates_retired = &old;

        assert_true(supervisor_check_group_high(&f->s, NOW, true));      /* 20 + 150 + 250 */
        assert_true(f->s.monitor.templates_total == 400 * MiB);
        assert_true(f->s.monitor.workers_total == 20 * MiB);

        /* Reaped: nothing of it is counted any more. */
        f->active[0].recycle_reason = f->active[1].recycle_reason = RECYCLE_NONE;
        f->s.last_group_recycle = 0;
        old.pid = 0;
        assert_false(supervisor_check_group_high(&f->s, NOW, true));
        assert_true(f->s.monitor.templates_total == 150 * MiB);
        f->s.template = f->s.templates_retired = NULL;
}

/* While a reload's template starts, or workers still wait to be rolled onto the new one,
 * group_high picks no victim: its replacement would come from the old template and be
 * rolled again, and the roll replaces every worker anyway. Once the roll is done, it
 * does. */
static void test_group_high_waits_for_a_reload_roll(void **state) {
        struct fixture *f = *state;
        struct template_process t = { .pid = 4242, .generation = 1 }, next = { .pid = 4343, .generation = 2 };

        add_group(f, 2, 100 * MiB, 250 * MiB);
        f->s.config->memory.metric = MEMORY_METRIC_ANON;
        t.mem = next.mem = (struct template_memory) { .sampled = true, .anon = 60 * MiB };
        f->s.template = &t;
        f->s.template_next = &next;

        assert_false(supervisor_check_group_high(&f->s, NOW, true));
        assert_true(f->s.monitor.templates_total == 120 * MiB);         /* both count */
        assert_int_equal(f->active[0].recycle_reason, RECYCLE_NONE);
        assert_int_equal(f->active[1].recycle_reason, RECYCLE_NONE);

        /* Promoted: the old template is gone, one worker still waits for its roll (its
         * memory about to be given back, it no longer counts): 100 + 60 > 150. */
        f->s.template = &next;
        f->s.template_next = NULL;
        f->active[1].recycle_reason = RECYCLE_RELOAD;
        f->s.monitor.group_high = 150 * MiB;
        assert_false(supervisor_check_group_high(&f->s, NOW, false));
        assert_int_equal(f->active[0].recycle_reason, RECYCLE_NONE);
        assert_true(f->s.group_high_roll_noted);

        /* Rolled: 100 + 100 (its replacement's) + 60 > 250. */
        add_worker(f, &f->replacement[1], 1, 50 * S, 100 * MiB);
        f->replacement[1].mem.latest = 100 * MiB;
        f->active[1].state = WORKER_STOPPING;
        f->slots[1].active = &f->replacement[1];
        f->s.monitor.group_high = 250 * MiB;
        assert_true(supervisor_check_group_high(&f->s, NOW, true));
        assert_false(f->s.group_high_roll_noted);
        assert_int_equal(f->active[0].recycle_reason, RECYCLE_GROUP_HIGH);
        f->s.template = NULL;
}

static void write_file(const char *path, const char *text) {
        FILE *fp = fopen(path, "we");
        assert_non_null(fp);
        assert_true(fputs(text, fp) >= 0);
        assert_int_equal(fclose(fp), 0);
}

/* A template reaped while its workers live (replaced by a reload, or crashed and not yet
 * restarted) leaves the pages they share charged to its leaf: the leaf is kept and read,
 * and counts until the last of them is gone, then it is removed. The leaf here is an
 * empty directory in a temporary "group", its memory files beside it. */
static void test_group_high_counts_a_reaped_templates_leaf(void **state) {
        struct fixture *f = *state;
        char root[] = "/tmp/memward-test-held-XXXXXX", path[128];
        struct template_process t = { .pid = 4242, .generation = 1, .leaf = CGROUP_LEAF_INIT };

        assert_non_null(mkdtemp(root));
        snprintf(path, sizeof path, "%s/template-1", root);
        assert_int_equal(mkdir(path, 0755), 0);
        f->s.monitor.cgroup = (struct cgroup_setup) { .mode = ACCOUNTING_CGROUP };
        f->s.monitor.cgroup.group_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->s.monitor.cgroup.group_fd >= 0);
        t.cgroup = &f->s.monitor.cgroup;
        snprintf(t.leaf.name, sizeof t.leaf.name, "template-1");
        t.leaf.dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        snprintf(path, sizeof path, "%s/memory.current", root);
        write_file(path, "52428800\n");
        t.leaf.current_fd = open(path, O_RDONLY | O_CLOEXEC);
        snprintf(path, sizeof path, "%s/memory.stat", root);
        write_file(path, "anon 41943040\nfile 10485760\n");
        t.leaf.stat_fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(t.leaf.dir_fd >= 0 && t.leaf.current_fd >= 0 && t.leaf.stat_fd >= 0);
        t.mem = (struct template_memory) { .sampled = true, .current = 60 * MiB, .anon = 50 * MiB };

        add_group(f, 2, 10 * MiB, 65 * MiB);
        for (unsigned i = 0; i < 2; i++)
                f->active[i].template_generation = 1;
        f->s.config->memory.metric = MEMORY_METRIC_ANON;

        /* Reaped: its leaf moves to the held list, with its last sample. */
        assert_int_equal(template_process_hold_leaf(&t, &f->s.template_leaves_held), 0);
        assert_int_equal(t.leaf.dir_fd, -1);
        t.pid = 0;
        assert_true(supervisor_check_group_high(&f->s, NOW, true));      /* 20 + 50 */
        assert_true(f->s.monitor.templates_total == 50 * MiB);

        /* The tick reads the leaf: 40 MiB anon are still charged to it. */
        f->active[0].recycle_reason = RECYCLE_NONE;
        f->s.last_group_recycle = 0;
        supervisor_template_leaves_upkeep(&f->s);
        assert_non_null(f->s.template_leaves_held);
        assert_false(supervisor_check_group_high(&f->s, NOW, true));     /* 20 + 40 */
        assert_true(f->s.monitor.templates_total == 40 * MiB);
        f->s.config->memory.metric = MEMORY_METRIC_CURRENT;
        assert_true(supervisor_check_group_high(&f->s, NOW, true));      /* 20 + 50 */
        assert_true(f->s.monitor.templates_total == 50 * MiB);
        /* With rss or pss the workers' own figures hold those pages now. */
        f->s.config->memory.metric = MEMORY_METRIC_PSS;
        assert_false(supervisor_check_group_high(&f->s, NOW, true));
        assert_true(f->s.monitor.templates_total == 0);

        /* One of its workers is left: still held. None: removed. */
        f->active[0].pid = 0;
        supervisor_template_leaves_upkeep(&f->s);
        assert_non_null(f->s.template_leaves_held);
        f->active[1].template_generation = 2;
        supervisor_template_leaves_upkeep(&f->s);
        assert_null(f->s.template_leaves_held);
        snprintf(path, sizeof path, "%s/template-1", root);
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(errno, ENOENT);

        snprintf(path, sizeof path, "%s/memory.current", root);
        assert_int_equal(unlink(path), 0);
        snprintf(path, sizeof path, "%s/memory.stat", root);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(root), 0);
        close(f->s.monitor.cgroup.group_fd);
}

/* 40 orphans killed by a sweep are reaped right after a worker a template forked died
 * before its SPAWNED was read: its exit is still remembered for the SPAWNED. */
static void test_killed_orphans_leave_the_reaped_ring_alone(void **state) {
        struct fixture *f = *state;
        struct template_process t = {};
        f->s.template = &t;
        reaped_ring_push(&f->s.reaped, 77, 9);
        for (pid_t pid = 5000; pid < 5040; pid++)
                assert_int_equal(orphan_set_add(&f->s.orphans_dying, pid), 0);
        assert_int_equal(orphan_set_add(&f->s.inherited, 6000), 0);
        for (pid_t pid = 5000; pid < 5040; pid++)
                supervisor_reaped_unknown(&f->s, pid, 9);
        supervisor_reaped_unknown(&f->s, 6000, 0);
        assert_int_equal(f->s.orphans_dying.n, 0);
        assert_int_equal(f->s.inherited.n, 0);
        int status = -1;
        assert_true(reaped_ring_take(&f->s.reaped, 77, &status));
        assert_int_equal(status, 9);
        assert_false(reaped_ring_take(&f->s.reaped, 5039, NULL));
        /* One no sweep killed may be a worker whose SPAWNED is unread: remembered while a
         * SPAWN is in flight, not otherwise (a recycled worker's pool, reaped later, must
         * not evict such an exit either). */
        supervisor_reaped_unknown(&f->s, 87, 0);
        assert_false(reaped_ring_take(&f->s.reaped, 87, NULL));
        t.state.phase = TEMPLATE_PHASE_SPAWNING;
        supervisor_reaped_unknown(&f->s, 88, 0);
        assert_true(reaped_ring_take(&f->s.reaped, 88, NULL));
        orphan_set_free(&f->s.orphans_dying);
        orphan_set_free(&f->s.inherited);
        f->s.template = NULL;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_ready_workers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_victim_is_the_largest_of_all_workers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_victim_ties_go_to_the_oldest_of_all, setup, teardown),
                cmocka_unit_test_setup_teardown(test_victim_behind_replacements, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_high_counts_the_template, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_high_counts_a_retired_template, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_high_waits_for_a_reload_roll, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_high_counts_a_reaped_templates_leaf, setup, teardown),
                cmocka_unit_test_setup_teardown(test_killed_orphans_leave_the_reaped_ring_alone, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
