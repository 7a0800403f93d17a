/* The renderers behind /metrics, /healthz and /status, on a hand-built supervisor:
 * no loop, no sockets, no /proc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memward/cli/status.h"
#include "memward/endpoint/metrics.h"
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
static int setup(void **state) {
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
        serving->mem.has_baseline = true;
        serving->mem.baseline = MiB;
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

static int teardown(void **state) {
        struct fixture *f = *state;
        config_free(f->s.config);
        free(f);
        return 0;
}

static char *render_prometheus(const struct supervisor *s, const struct process_self *self) {
        struct text_buffer b;
        char *text;
        size_t n;

        text_buffer_init(&b, METRICS_RENDER_MAX);
        metrics_render_prometheus(s, self, NOW, REALTIME, &b);
        assert_int_equal(text_buffer_finish(&b, &text, &n), 0);
        assert_int_equal(strlen(text), n);
        return text;
}

static bool has_line(const char *text, const char *line) {
        size_t n = strlen(line);
        for (const char *p = text; (p = strstr(p, line)); p++)
                if ((p == text || p[-1] == '\n') && p[n] == '\n')
                        return true;
        return false;
}

#define assert_line(text, line)                                                 \
        do {                                                                    \
                if (!has_line((text), (line)))                                  \
                        fail_msg("missing line: %s\n--- in:\n%s", (line), (text)); \
        } while (0)

#define assert_no_line_prefix(text, prefix) assert_null(strstr((text), "\n" prefix))

/* The exposition's grammar: every family has exactly one HELP then one TYPE, its samples
 * follow directly, no family appears twice, every line ends in '\n'. */
static void assert_well_formed(const char *text) {
        char families[64][64];
        size_t n_families = 0;
        char current[64] = "";
        bool typed = false;

        assert_true(text[0] != '\0' && text[strlen(text) - 1] == '\n');
        assert_null(strchr(text, '\r'));
        for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
                char name[64];
                if (sscanf(line, "# HELP %63s ", name) == 1) {
                        for (size_t i = 0; i < n_families; i++)
                                if (streq(families[i], name))
                                        fail_msg("family %s appears twice", name);
                        assert_true(n_families < 64);
                        snprintf(families[n_families++], 64, "%s", name);
                        snprintf(current, sizeof current, "%s", name);
                        typed = false;
                        continue;
                }
                if (sscanf(line, "# TYPE %63s ", name) == 1) {
                        assert_string_equal(name, current);
                        assert_false(typed);
                        typed = true;
                        assert_true(strncmp(line + 7 + strlen(name), " gauge\n", 7) == 0 ||
                                    strncmp(line + 7 + strlen(name), " counter\n", 9) == 0);
                        continue;
                }
                assert_true(line[0] != '#');
                size_t len = strcspn(line, "{ ");
                assert_true(len < sizeof name);
                memcpy(name, line, len);
                name[len] = '\0';
                if (!streq(name, current) || !typed)
                        fail_msg("sample of %s outside its family (current %s): %.80s", name, current, line);
        }
}

static void test_exposition(void **state) {
        struct fixture *f = *state;
        struct process_self self = { .resident = 700 * 1024, .cpu_seconds = 1.5, .start_time = 1699990000.25 };
        char *text = render_prometheus(&f->s, &self);

        assert_well_formed(text);
        assert_line(text, "memward_build_info{version=\"" MEMWARD_VERSION "\"} 1");
        assert_line(text, "memward_mode_info{accounting=\"procfs\"} 1");
        assert_line(text, "memward_workers_target 2");
        assert_line(text, "memward_workers{state=\"starting\"} 1");
        assert_line(text, "memward_workers{state=\"ready\"} 1");
        assert_line(text, "memward_workers{state=\"stopping\"} 1");

        /* Memory of every sampled worker, by slot and pid; retained is the figure memward
         * judged it by (here its request-end floor), not a window floor of the renderer's. */
        assert_line(text, "memward_worker_memory_bytes{slot=\"0\",pid=\"101\",kind=\"current\"} 5242880");
        assert_line(text, "memward_worker_memory_bytes{slot=\"0\",pid=\"101\",kind=\"anon\"} 3145728");
        assert_line(text, "memward_worker_memory_bytes{slot=\"0\",pid=\"101\",kind=\"file\"} 2097152");
        assert_line(text, "memward_worker_memory_bytes{slot=\"0\",pid=\"101\",kind=\"kernel\"} 4096");
        assert_line(text, "memward_worker_memory_bytes{slot=\"0\",pid=\"101\",kind=\"retained\"} 6291456");
        assert_line(text, "memward_worker_memory_bytes{slot=\"0\",pid=\"101\",kind=\"baseline\"} 1048576");
        assert_line(text, "memward_worker_memory_bytes{slot=\"0\",pid=\"101\",kind=\"peak\"} 9437184");
        assert_line(text, "memward_worker_memory_bytes{slot=\"0\",pid=\"99\",kind=\"anon\"} 7340032");
        /* No floor, no baseline yet: those kinds are left out, not reported as 0. */
        assert_null(strstr(text, "pid=\"99\",kind=\"retained\""));
        assert_null(strstr(text, "pid=\"99\",kind=\"baseline\""));
        /* Never sampled: no memory series at all. */
        assert_null(strstr(text, "pid=\"102\""));
        /* Ordered by slot, then generation. */
        assert_true(strstr(text, "pid=\"99\"") < strstr(text, "pid=\"101\""));

        /* Counters carry the slot, not the pid. */
        assert_line(text, "memward_worker_requests_total{slot=\"0\"} 42");
        assert_line(text, "memward_worker_requests_total{slot=\"1\"} 0");
        assert_line(text, "memward_worker_start_time_seconds{slot=\"0\"} 1699999990.000");
        assert_line(text, "memward_worker_start_time_seconds{slot=\"1\"} 1699999999.000");
        assert_line(text, "memward_worker_generation{slot=\"0\"} 3");

        assert_line(text, "memward_recycles_total{reason=\"max_requests\"} 5");
        assert_line(text, "memward_recycles_total{reason=\"oom\"} 1");
        assert_line(text, "memward_recycles_total{reason=\"pressure\"} 0");
        assert_null(strstr(text, "reason=\"none\""));
        assert_line(text, "memward_worker_exits_total{how=\"exit\"} 4");
        assert_line(text, "memward_worker_exits_total{how=\"signal\"} 0");
        assert_line(text, "memward_worker_exits_total{how=\"oom\"} 1");
        assert_line(text, "memward_spawn_failures_total 2");
        assert_line(text, "memward_pressure_avg10{kind=\"some\"} 12.50");
        assert_line(text, "memward_pressure_avg10{kind=\"full\"} 0.25");
        assert_line(text, "memward_pressure_stall_seconds_total{kind=\"some\"} 1.500000");
        assert_line(text, "memward_pressure_stall_seconds_total{kind=\"full\"} 0.000250");
        assert_line(text, "memward_pressure_events_total 3");
        assert_line(text, "memward_group_memory_bytes 536870912");
        assert_line(text, "memward_group_memory_limit_bytes 1073741824");
        assert_line(text, "memward_notify_rejected_total{why=\"foreign\"} 7");
        assert_line(text, "memward_notify_rejected_total{why=\"malformed\"} 0");
        assert_line(text, "process_resident_memory_bytes 716800");
        assert_line(text, "process_cpu_seconds_total 1.50");
        assert_line(text, "process_start_time_seconds 1699990000.25");
        assert_line(text, "# TYPE memward_recycles_total counter");
        assert_line(text, "# TYPE memward_worker_memory_bytes gauge");
        free(text);

        /* Without PSI, group numbers or our own process numbers, those families are absent. */
        f->s.monitor.has_psi = false;
        f->s.monitor.group_usage = f->s.monitor.group_limit = 0;
        text = render_prometheus(&f->s, NULL);
        assert_well_formed(text);
        assert_null(strstr(text, "memward_pressure_avg10"));
        assert_null(strstr(text, "memward_group_memory"));
        assert_null(strstr(text, "process_"));
        assert_line(text, "memward_pressure_events_total 3");
        free(text);
}

/* Every TYPE counter ends in _total, every _total is a counter (Prometheus naming). */
static void test_counter_names(void **state) {
        struct fixture *f = *state;
        char *text = render_prometheus(&f->s, &(struct process_self) {});

        for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
                char name[64], type[16];
                if (sscanf(line, "# TYPE %63s %15s", name, type) != 2)
                        continue;
                size_t n = strlen(name);
                bool total = n > 6 && streq(name + n - 6, "_total");
                if (total != streq(type, "counter"))
                        fail_msg("%s is a %s", name, type);
        }
        free(text);
}

/* The renderer allocates what it needs, and no more than its limit. */
static void test_render_limit(void **state) {
        struct fixture *f = *state;
        struct text_buffer b;
        char *text;
        size_t n;

        text_buffer_init(&b, 512);
        metrics_render_prometheus(&f->s, NULL, NOW, REALTIME, &b);
        assert_int_equal(b.error, -E2BIG);
        assert_true(b.allocated <= 512);
        assert_int_equal(text_buffer_finish(&b, &text, &n), -E2BIG);
        assert_null(b.data);

        text_buffer_init(&b, 16);
        text_buffer_printf(&b, "%s", "0123456789");
        text_buffer_append(&b, "abcd", 4);
        assert_int_equal(b.error, 0);
        text_buffer_append(&b, "x", 1); /* 15 + NUL = 16 */
        assert_int_equal(b.error, 0);
        text_buffer_append(&b, "y", 1);
        assert_int_equal(b.error, -E2BIG);
        text_buffer_printf(&b, "more");
        assert_int_equal(text_buffer_finish(&b, &text, &n), -E2BIG);

        /* An empty rendering is an empty string, not NULL. */
        text_buffer_init(&b, 16);
        assert_int_equal(text_buffer_finish(&b, &text, &n), 0);
        assert_string_equal(text, "");
        assert_int_equal(n, 0);
        free(text);

        /* Growing past the first allocation keeps what was written. */
        text_buffer_init(&b, 1 << 20);
        for (int i = 0; i < 10000; i++)
                text_buffer_printf(&b, "%05d\n", i);
        assert_int_equal(text_buffer_finish(&b, &text, &n), 0);
        assert_int_equal(n, 60000);
        assert_true(strncmp(text + 59994, "09999\n", 6) == 0);
        free(text);
}

static void test_json_string(void **state) {
        (void) state;
        struct text_buffer b;
        char *text;
        size_t n;

        text_buffer_init(&b, 1024);
        text_buffer_json_string(&b, "plain");
        text_buffer_json_string(&b, "q\"b\\s/\n\t\x01\x1f\x7f");
        text_buffer_json_string(&b, "é € 😀");
        text_buffer_json_string(&b, "bad \xff \xc3( \xed\xa0\x80 \xf0\x9f\x98");
        text_buffer_json_string(&b, NULL);
        assert_int_equal(text_buffer_finish(&b, &text, &n), 0);
        assert_string_equal(text, "\"plain\""
                                  "\"q\\\"b\\\\s/\\n\\u0009\\u0001\\u001f\x7f\""
                                  "\"é € 😀\""
                                  "\"bad \\ufffd \\ufffd( \\ufffd\\ufffd\\ufffd \\ufffd\\ufffd\\ufffd\""
                                  "\"\"");
        free(text);
}

static void test_recycle_history(void **state) {
        (void) state;
        struct recycle_history h = {};

        assert_null(recycle_history_get(&h, 0));
        for (unsigned i = 0; i < 25; i++)
                recycle_history_push(&h, &(struct recycle_record) { .slot = i, .reason = RECYCLE_RETAINED });
        assert_true(h.total == 25);
        for (unsigned i = 0; i < RECYCLE_HISTORY_MAX; i++)
                assert_int_equal(recycle_history_get(&h, i)->slot, 24 - i);
        assert_null(recycle_history_get(&h, RECYCLE_HISTORY_MAX));
}

static void test_healthy(void **state) {
        struct fixture *f = *state;
        char reason[96];

        assert_false(metrics_healthy(&f->s, reason, sizeof reason));
        assert_string_equal(reason, "1/2 workers ready");
        f->w[1].state = WORKER_READY;
        assert_true(metrics_healthy(&f->s, reason, sizeof reason));
        assert_string_equal(reason, "2/2 workers ready");
        /* A ready replacement that has not taken over the slot does not count twice. */
        f->s.slots[1].active = NULL;
        f->s.slots[1].replacement = &f->w[1];
        assert_false(metrics_healthy(&f->s, reason, sizeof reason));
        f->s.slots[1].active = &f->w[1];
        f->s.slots[1].replacement = NULL;
        f->s.shutting_down = true;
        assert_false(metrics_healthy(&f->s, reason, sizeof reason));
        assert_string_equal(reason, "shutting down, 2/2 workers ready");
}

static void test_status_document(void **state) {
        struct fixture *f = *state;
        struct text_buffer b;
        struct json_value *doc;
        char *text;
        size_t n;

        text_buffer_init(&b, METRICS_RENDER_MAX);
        metrics_render_status(&f->s, NOW, REALTIME, &b);
        assert_int_equal(text_buffer_finish(&b, &text, &n), 0);
        assert_true(n > 0 && text[n - 1] == '\n');
        assert_int_equal(json_parse(text, n, &doc), 0);

        assert_string_equal(json_get_string(doc, "version", NULL), MEMWARD_VERSION);
        assert_string_equal(json_get_string(doc, "accounting", NULL), "procfs");
        assert_string_equal(json_get_string(doc, "metric", NULL), "anon");
        assert_true(json_get_number(doc, "target", 0) == 2);
        assert_true(json_get_number(doc, "ready", 0) == 1);
        assert_false(json_get(doc, "healthy")->boolean);
        assert_string_equal(json_get_string(doc, "health", NULL), "1/2 workers ready");
        assert_string_equal(json_get_string(doc, "time", NULL), "2023-11-14T22:13:20.000Z");

        const struct json_value *w = json_get(doc, "workers");
        assert_int_equal(w->type, JSON_ARRAY);
        assert_int_equal(w->n_items, 3);
        /* By slot, then generation: the retiring gen 2, the serving gen 3, then slot 1. */
        assert_true(json_get_number(&w->items[0], "pid", 0) == 99);
        assert_string_equal(json_get_string(&w->items[0], "state", NULL), "stopping");
        assert_string_equal(json_get_string(&w->items[0], "role", NULL), "retiring");
        const struct json_value *a = &w->items[1];
        assert_true(json_get_number(a, "slot", -1) == 0);
        assert_true(json_get_number(a, "pid", 0) == 101);
        assert_true(json_get_number(a, "generation", 0) == 3);
        assert_string_equal(json_get_string(a, "state", NULL), "ready");
        assert_string_equal(json_get_string(a, "role", NULL), "active");
        assert_true(json_get_number(a, "age_seconds", 0) == 10);
        assert_true(json_get_number(a, "requests", 0) == 42);
        assert_true(json_get_number(a, "request_limit", 0) == 55);
        assert_int_equal(json_get(a, "recycle")->type, JSON_NULL);
        assert_string_equal(json_get_string(a, "last_recycle", NULL), "max_requests");
        /* The worker's STATUS= text survives the trip, escaped on the way. */
        assert_string_equal(json_get_string(a, "status", NULL), "a \"quoted\"\n\x01 é \xef\xbf\xbd");
        const struct json_value *m = json_get(a, "memory");
        assert_true(json_get(m, "sampled")->boolean);
        assert_true(json_get_number(m, "anon", 0) == 3 * MiB);
        assert_true(json_get_number(m, "retained", 0) == 6 * MiB);
        assert_string_equal(json_get_string(m, "retained_source", NULL), "request_end");
        assert_true(json_get_number(m, "baseline", 0) == MiB);
        const struct json_value *m2 = json_get(&w->items[2], "memory");
        assert_false(json_get(m2, "sampled")->boolean);
        assert_int_equal(json_get(m2, "retained")->type, JSON_NULL);
        assert_int_equal(json_get(m2, "retained_source")->type, JSON_NULL);
        /* The stopping worker was never judged: no figure, whatever its window holds. */
        assert_int_equal(json_get(json_get(&w->items[0], "memory"), "retained")->type, JSON_NULL);
        assert_int_equal(json_get(&w->items[2], "last_recycle")->type, JSON_NULL);

        const struct json_value *r = json_get(doc, "recycles");
        assert_int_equal(r->n_items, 1);
        assert_true(json_get_number(&r->items[0], "pid", 0) == 99);
        assert_string_equal(json_get_string(&r->items[0], "reason", NULL), "max_requests");
        assert_true(json_get_number(&r->items[0], "requests", 0) == 60);
        assert_true(json_get_number(&r->items[0], "retained", 0) == 5 * MiB);
        assert_string_equal(json_get_string(&r->items[0], "retained_source", NULL), "window");
        assert_true(json_get_number(json_get(doc, "recycles_total"), "max_requests", 0) == 5);
        json_free(doc);
        free(text);
}

static void test_handler(void **state) {
        struct fixture *f = *state;
        struct http_reply r;

        assert_int_equal(metrics_handle_request(&f->s, "GET", "/healthz", &r), 0);
        assert_int_equal(r.status, 503);
        assert_string_equal(r.body, "unavailable: 1/2 workers ready\n");
        assert_int_equal(r.length, strlen(r.body));
        free(r.body);

        f->w[1].state = WORKER_READY;
        assert_int_equal(metrics_handle_request(&f->s, "HEAD", "/healthz", &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "ok: 2/2 workers ready\n");
        free(r.body);

        assert_int_equal(metrics_handle_request(&f->s, "GET", "/metrics", &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert_non_null(strstr(r.body, "\nprocess_resident_memory_bytes "));
        free(r.body);

        assert_int_equal(metrics_handle_request(&f->s, "GET", "/status", &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "application/json");
        free(r.body);

        assert_int_equal(metrics_handle_request(&f->s, "POST", "/metrics", &r), 0);
        assert_int_equal(r.status, 405);
        assert_string_equal(r.allow, "GET, HEAD");
        free(r.body);

        static const char *const not_found[] = { "/", "/metrics/", "/Metrics", "/healthz/x", "", "/status?x" };
        for (size_t i = 0; i < ELEMENTSOF(not_found); i++) {
                assert_int_equal(metrics_handle_request(&f->s, "GET", not_found[i], &r), 0);
                assert_int_equal(r.status, 404);
                free(r.body);
        }
}

static void test_proc_parsers(void **state) {
        (void) state;
        uint64_t cpu, start, btime;
        /* comm with spaces and a ')' of its own. */
        static const char stat[] = "4242 (mem ward) x) S 1 4242 4242 0 -1 4194560 180 0 0 0 "
                                   "150 25 0 0 20 0 1 0 8765 3600000 200 18446744073709551615\n";

        assert_int_equal(proc_stat_times_parse(stat, strlen(stat), &cpu, &start), 0);
        assert_true(cpu == 175);
        assert_true(start == 8765);
        assert_int_equal(proc_stat_times_parse("4242 (x S 1", 11, &cpu, &start), -EBADMSG);
        assert_int_equal(proc_stat_times_parse("", 0, &cpu, &start), -EBADMSG);

        static const char pstat[] = "cpu  1 2 3\ncpu0 1 2 3\nintr 5\nctxt 9\nbtime 1699990000\nprocesses 7\n";
        assert_int_equal(proc_stat_btime_parse(pstat, strlen(pstat), &btime), 0);
        assert_true(btime == 1699990000);
        assert_int_equal(proc_stat_btime_parse("cpu 1\nbtime x\n", 14, &btime), -EBADMSG);
        assert_int_equal(proc_stat_btime_parse("cpu 1\n", 6, &btime), -EBADMSG);

        /* And our own, for real. */
        struct process_self self;
        assert_int_equal(process_self_read("/proc", &self), 0);
        assert_true(self.resident > 0);
        assert_true(self.start_time > 1e9);
        assert_int_equal(process_self_read("/nonexistent", &self), -ENOENT);
}

static void test_exit_how_names(void **state) {
        (void) state;
        assert_string_equal(worker_exit_how_to_string(WORKER_EXIT_EXIT), "exit");
        assert_string_equal(worker_exit_how_to_string(WORKER_EXIT_SIGNAL), "signal");
        assert_string_equal(worker_exit_how_to_string(WORKER_EXIT_OOM), "oom");
        assert_string_equal(worker_exit_how_to_string(_WORKER_EXIT_MAX), "unknown");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_exposition, setup, teardown),
                cmocka_unit_test_setup_teardown(test_counter_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_render_limit, setup, teardown),
                cmocka_unit_test(test_json_string),
                cmocka_unit_test(test_recycle_history),
                cmocka_unit_test_setup_teardown(test_healthy, setup, teardown),
                cmocka_unit_test_setup_teardown(test_status_document, setup, teardown),
                cmocka_unit_test_setup_teardown(test_handler, setup, teardown),
                cmocka_unit_test(test_proc_parsers),
                cmocka_unit_test(test_exit_how_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
