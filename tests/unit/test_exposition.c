/* The Prometheus exposition of /metrics, on a hand-built supervisor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "endpoint_fixture.h"
#include "memward/base/macro.h"
#include "memward/endpoint/exposition.h"
#include "memward/endpoint/metrics.h"
#include "memward/linux/proc.h"

static char *render_prometheus(const struct supervisor *s, const struct proc_self *self) {
        struct text_buffer b;
        char *text;
        size_t n;

        text_buffer_init(&b, METRICS_RENDER_MAX);
        exposition_render(s, self, NOW, REALTIME, &b);
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
        struct proc_self self = { .resident = 700 * 1024, .cpu_seconds = 1.5, .start_time = 1699990000.25 };
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
        assert_line(text, "memward_orphans_killed_total 1000");
        assert_line(text, "memward_config_last_reload_successful 0");
        assert_line(text, "memward_config_last_reload_success_timestamp_seconds 1700000000.000");
        assert_line(text, "memward_config_reloads_total{result=\"success\"} 1");
        assert_line(text, "memward_config_reloads_total{result=\"failure\"} 2");
        assert_line(text, "memward_pressure_avg10{kind=\"some\"} 12.50");
        assert_line(text, "memward_pressure_avg10{kind=\"full\"} 0.25");
        assert_line(text, "memward_pressure_stall_seconds_total{kind=\"some\"} 1.500000");
        assert_line(text, "memward_pressure_stall_seconds_total{kind=\"full\"} 0.000250");
        assert_line(text, "memward_pressure_events_total 3");
        assert_line(text, "memward_group_memory_bytes 536870912");
        assert_line(text, "memward_group_memory_limit_bytes 1073741824");
        assert_line(text, "memward_notify_rejected_total{why=\"foreign\"} 7");
        assert_line(text, "memward_notify_rejected_total{why=\"malformed\"} 0");
        assert_line(text, "# TYPE memward_log_dropped_total counter");
        assert_line(text, "memward_log_dropped_total{sink=\"journal\"} 0");
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

/* The baseline series is the figure's, like retained: for a decided recycle, the one it
 * was decided with (none here), not one found after. */
static void test_baseline_is_the_figures(void **state) {
        struct fixture *f = *state;

        decided_before_the_baseline(f);
        char *text = render_prometheus(&f->s, NULL);
        assert_line(text, "memward_worker_memory_bytes{slot=\"0\",pid=\"101\",kind=\"retained\"} 6291456");
        assert_null(strstr(text, "pid=\"101\",kind=\"baseline\""));
        free(text);
}

/* Every TYPE counter ends in _total, every _total is a counter (Prometheus naming). */
static void test_counter_names(void **state) {
        struct fixture *f = *state;
        char *text = render_prometheus(&f->s, &(struct proc_self) {});

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
        exposition_render(&f->s, NULL, NOW, REALTIME, &b);
        assert_int_equal(b.error, -E2BIG);
        assert_true(b.allocated <= 512);
        assert_int_equal(text_buffer_finish(&b, &text, &n), -E2BIG);
        assert_null(b.data);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_exposition, setup, teardown),
                cmocka_unit_test_setup_teardown(test_baseline_is_the_figures, setup, teardown),
                cmocka_unit_test_setup_teardown(test_counter_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_render_limit, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
