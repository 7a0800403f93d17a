/* The hand-built supervisor the endpoint's tests render (test_exposition.c,
 * test_status_json.c, test_metrics.c): no loop, no sockets, no /proc. Included by
 * each of them after cmocka.h. */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#include "memward/supervisor/supervisor.h"

#define S USEC_PER_SEC
#define MiB (1024ULL * 1024ULL)
#define NOW (1000 * S)                  /* CLOCK_MONOTONIC of the "scrape" */
#define REALTIME (1700000000ULL * S)    /* its CLOCK_REALTIME */

struct fixture {
        struct supervisor s;
        struct slot slots[2];
        struct worker w[3];
};

/* Slot 0: an old worker (gen 2) stopping and its replacement (gen 3) serving, sampled,
 * with a window floor (2 MiB), a baseline and a judged figure from its request ends
 * (6 MiB). Slot 1: gen 1 still starting, never sampled. */
static inline int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        struct supervisor *s = &f->s;

        assert_int_equal(config_new_default(&s->config), 0);
        s->target = 2;
        s->n_slots = 2;
        s->slots = f->slots;
        s->monitor.cgroup.mode = ACCOUNTING_PROCFS;

        struct worker *serving = &f->w[0], *starting = &f->w[1], *old = &f->w[2];
        *serving = (struct worker) {
                .slot = 0, .generation = 3, .pid = 101, .state = WORKER_READY, .spawned_at = NOW - 10 * S,
                .requests = 42, .request_limit = 55,
        };
        floor_window_init(&serving->mem.floor, 4 * S);
        for (usec_t t = NOW - 8 * S; t <= NOW; t += S)
                floor_window_add(&serving->mem.floor, t, t == NOW - 2 * S ? 2 * MiB : 3 * MiB);
        serving->mem.sampled = true;
        serving->mem.current = 5 * MiB;
        serving->mem.anon = 3 * MiB;
        serving->mem.file = 2 * MiB;
        serving->mem.kernel = 4096;
        serving->mem.peak = 9 * MiB;
        serving->mem.baseline = (struct baseline) { .known = true, .value = MiB };
        serving->figure = (struct policy_memory_figure) { .source = POLICY_FLOOR_REQUEST_END, .floor = 6 * MiB,
                                                          .has_baseline = true, .baseline = MiB, .ratio = 6.0 };
        snprintf(serving->status, sizeof serving->status, "a \"quoted\"\n\x01 é \xff");

        *starting = (struct worker) { .slot = 1, .generation = 1, .pid = 102, .state = WORKER_STARTING,
                                      .spawned_at = NOW - S };
        floor_window_init(&starting->mem.floor, 4 * S);

        *old = (struct worker) { .slot = 0, .generation = 2, .pid = 99, .state = WORKER_STOPPING,
                                 .spawned_at = NOW - 100 * S, .requests = 60 };
        floor_window_init(&old->mem.floor, 4 * S);
        old->mem.sampled = true;
        old->mem.anon = 7 * MiB;

        /* The list is newest first, as the supervisor keeps it. */
        s->workers = starting;
        starting->next = serving;
        serving->next = old;
        s->n_workers = 3;
        f->slots[0] = (struct slot) { .active = serving, .generation = 3, .last_recycle = RECYCLE_MAX_REQUESTS };
        f->slots[1] = (struct slot) { .active = starting, .generation = 1 };

        s->recycles[RECYCLE_MAX_REQUESTS] = 5;
        s->recycles[RECYCLE_OOM] = 1;
        s->exits[WORKER_EXIT_EXIT] = 4;
        s->exits[WORKER_EXIT_OOM] = 1;
        s->spawn_failures = 2;
        s->orphans_killed = 1000;
        s->reload = (struct reload_record) { .last_successful = false, .last_success = 1700000000 * S,
                                             .last_attempt = 1700000100 * S, .successes = 1, .failures = 2 };
        snprintf(s->reload.last_error, sizeof s->reload.last_error, "config");
        s->notify_rejected[NOTIFY_REJECT_FOREIGN] = 7;
        s->pressure_events = 3;
        s->monitor.has_psi = true;
        s->monitor.psi.has_full = true;
        s->monitor.psi.some = (struct psi_line) { .avg10 = 12.5, .total = 1500000 };
        s->monitor.psi.full = (struct psi_line) { .avg10 = 0.25, .total = 250 };
        s->monitor.group_usage = 512 * MiB;
        s->monitor.group_limit = 1024 * MiB;

        recycle_history_push(&s->recycle_history, &(struct recycle_record) {
                .at = 1700000000 * S, .slot = old->slot, .pid = old->pid, .generation = old->generation,
                .reason = RECYCLE_MAX_REQUESTS, .requests = old->requests, .age = 90 * S, .anon = old->mem.anon,
                .figure = { .source = POLICY_FLOOR_WINDOW, .floor = 5 * MiB } });
        *state = f;
        return 0;
}

/* The serving worker's retained recycle was decided before its baseline was known, which
 * a later sample found while it waits its turn: its figure has no baseline, its memory
 * has one. Its event=recycle line says baseline=0 (the figure's). */
static inline void decided_before_the_baseline(struct fixture *f) {
        struct worker *serving = &f->w[0];

        serving->recycle_reason = RECYCLE_RETAINED;
        serving->figure = (struct policy_memory_figure) { .source = POLICY_FLOOR_REQUEST_END, .floor = 6 * MiB };
        assert_true(serving->mem.baseline.known);
}

static inline int teardown(void **state) {
        struct fixture *f = *state;
        config_free(f->s.config);
        free(f);
        return 0;
}
