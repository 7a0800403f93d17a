/* The configuration parser: defaults, every key, every error class with its exact
 * LINE:COL and message, several errors at once, aliases, syntax errors, printing with a
 * caret, validation, command-line overrides, signals, and dump → load round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "skip_because.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/config/config.h"

#ifndef FIXTURES_DIR
#error "FIXTURES_DIR must point at tests/fixtures"
#endif

#define BASE "/srv/base"
/* 120 characters: too long for sun_path once made absolute. */
#define A10 "aaaaaaaaaa"
#define LONG_RELATIVE A10 A10 A10 A10 A10 A10 A10 A10 A10 A10 A10 A10
#define NAME "t.yaml"

/* ---- helpers ----------------------------------------------------------------------- */

static int load(const char *yaml, struct memward_config **ret, struct config_diagnostics *d) {
        return config_load_string(yaml, strlen(yaml), NAME, BASE, ret, d);
}

static struct memward_config *load_ok(const char *yaml) {
        struct config_diagnostics d = {};
        struct memward_config *c = NULL;
        int r = load(yaml, &c, &d);

        if (r != 0)
                config_diagnostics_print(&d, stderr);
        assert_int_equal(r, 0);
        assert_non_null(c);
        assert_int_equal(d.n_items, 0);
        config_diagnostics_clear(&d);
        return c;
}

static void dump_items(const struct config_diagnostics *d) {
        for (size_t i = 0; i < d->n_items; i++)
                print_message("  got %u:%u: %s\n", d->items[i].line, d->items[i].column, d->items[i].message);
}

/* Every item as "L:C: message" (or just the message without position), in order. */
static void assert_items(const struct config_diagnostics *d, const char *const *expected, size_t n) {
        if (d->n_items != n)
                dump_items(d);
        assert_int_equal(d->n_items, n);
        for (size_t i = 0; i < n; i++) {
                char *s;

                if (d->items[i].line > 0)
                        assert_true(asprintf(&s, "%u:%u: %s", d->items[i].line, d->items[i].column,
                                             d->items[i].message) > 0);
                else
                        s = strdup(d->items[i].message);
                assert_non_null(s);
                if (!streq(s, expected[i]))
                        dump_items(d);
                assert_string_equal(s, expected[i]);
                free(s);
        }
}

static void assert_errors_(const char *yaml, const char *const *expected, size_t n) {
        struct config_diagnostics d = {};
        struct memward_config *c = NULL;

        assert_int_equal(load(yaml, &c, &d), -EINVAL);
        assert_null(c);
        assert_items(&d, expected, n);
        config_diagnostics_clear(&d);
}

#define assert_errors(yaml, ...)                                        \
        do {                                                            \
                const char *const e_[] = { __VA_ARGS__ };               \
                assert_errors_((yaml), e_, ELEMENTSOF(e_));             \
        } while (0)

static bool strv_equal(char **a, char **b) {
        if (!a || !b)
                return a == b;
        for (; *a && *b; a++, b++)
                if (!streq(*a, *b))
                        return false;
        return !*a && !*b;
}

static bool str_equal(const char *a, const char *b) {
        return (!a && !b) || (a && b && streq(a, b));
}

/* Field by field, so that a failure names the field. */
static void assert_config_equal(const struct memward_config *a, const struct memward_config *b) {
        assert_int_equal(a->workers.count, b->workers.count);
        assert_int_equal(a->workers.mode, b->workers.mode);
        assert_true(a->workers.fork_timeout == b->workers.fork_timeout);
        assert_true(strv_equal(a->workers.command, b->workers.command));
        assert_true(str_equal(a->workers.directory, b->workers.directory));
        assert_true(strv_equal(a->workers.env, b->workers.env));
        assert_int_equal(a->workers.ready, b->workers.ready);
        assert_true(a->workers.ready_delay == b->workers.ready_delay);
        assert_true(a->workers.ready_timeout == b->workers.ready_timeout);
        assert_int_equal(a->workers.stop_signal, b->workers.stop_signal);
        assert_true(a->workers.graceful_timeout == b->workers.graceful_timeout);
        assert_true(a->workers.watchdog == b->workers.watchdog);
        assert_true(a->workers.backoff_initial == b->workers.backoff_initial);
        assert_true(a->workers.backoff_max == b->workers.backoff_max);
        assert_int_equal(a->workers.start_limit_burst, b->workers.start_limit_burst);
        assert_true(a->workers.start_limit_interval == b->workers.start_limit_interval);

        assert_int_equal(a->n_listen, b->n_listen);
        for (size_t i = 0; i < a->n_listen; i++) {
                assert_string_equal(a->listen[i].address, b->listen[i].address);
                assert_true(str_equal(a->listen[i].name, b->listen[i].name));
                assert_int_equal(a->listen[i].backlog, b->listen[i].backlog);
        }

        assert_true(a->recycle.max_requests == b->recycle.max_requests);
        assert_true(a->recycle.max_requests_jitter == b->recycle.max_requests_jitter);
        assert_true(a->recycle.max_lifetime == b->recycle.max_lifetime);
        assert_true(a->recycle.max_lifetime_jitter == b->recycle.max_lifetime_jitter);
        assert_int_equal(a->recycle.max_concurrent, b->recycle.max_concurrent);

        assert_int_equal(a->memory.metric, b->memory.metric);
        assert_true(a->memory.sample_interval == b->memory.sample_interval);
        assert_true(a->memory.worker_high.bytes == b->memory.worker_high.bytes);
        assert_true(a->memory.worker_high.percent == b->memory.worker_high.percent);
        assert_true(a->memory.worker_max.bytes == b->memory.worker_max.bytes);
        assert_true(a->memory.worker_max.percent == b->memory.worker_max.percent);
        assert_true(a->memory.group_high.bytes == b->memory.group_high.bytes);
        assert_true(a->memory.group_high.percent == b->memory.group_high.percent);
        assert_true(a->memory.retained_max == b->memory.retained_max);
        assert_true(a->memory.retained_window == b->memory.retained_window);
        assert_true(a->memory.growth_max == b->memory.growth_max);
        assert_true(a->memory.warmup == b->memory.warmup);
        assert_int_equal(a->memory.runtime_hints, b->memory.runtime_hints);

        assert_int_equal(a->pressure.enabled, b->pressure.enabled);
        assert_int_equal(a->pressure.kind, b->pressure.kind);
        assert_true(a->pressure.stall == b->pressure.stall);
        assert_true(a->pressure.window == b->pressure.window);
        assert_true(a->pressure.cooldown == b->pressure.cooldown);
        assert_true(a->pressure.min_retained == b->pressure.min_retained);

        assert_int_equal(a->log.level, b->log.level);
        assert_int_equal(a->log.format, b->log.format);

        assert_true(str_equal(a->workers.user, b->workers.user));
        assert_true(str_equal(a->workers.group, b->workers.group));
        assert_memory_equal(&a->workers.credentials, &b->workers.credentials, sizeof a->workers.credentials);
        assert_int_equal(a->workers.umask, b->workers.umask);
        assert_int_equal(a->n_listen, b->n_listen);
        for (size_t i = 0; i < a->n_listen; i++) {
                assert_true(str_equal(a->listen[i].owner, b->listen[i].owner));
                assert_true(str_equal(a->listen[i].group, b->listen[i].group));
                assert_memory_equal(&a->listen[i].access, &b->listen[i].access, sizeof a->listen[i].access);
        }
        assert_true(str_equal(a->metrics.owner, b->metrics.owner));
        assert_true(str_equal(a->metrics.group, b->metrics.group));
        assert_memory_equal(&a->metrics.access, &b->metrics.access, sizeof a->metrics.access);

        assert_true(str_equal(a->metrics.listen, b->metrics.listen));
        assert_int_equal(a->metrics.max_connections, b->metrics.max_connections);
        assert_true(a->metrics.timeout == b->metrics.timeout);
}

/* dump → load gives the same config; returns the dumped text. */
static char *assert_dump_round_trip(const struct memward_config *c) {
        struct memward_config *again;
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        assert_non_null(f);
        assert_int_equal(config_dump(c, f), 0);
        assert_int_equal(fclose(f), 0);

        again = load_ok(text);
        assert_config_equal(c, again);
        config_free(again);
        return text;
}

static char *print_to_string(const struct config_diagnostics *d) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        assert_non_null(f);
        config_diagnostics_print(d, f);
        assert_int_equal(fclose(f), 0);
        return text;
}

/* ---- defaults and good files ------------------------------------------------------- */

static void assert_defaults(const struct memward_config *c) {
        assert_null(c->path);
        assert_int_equal(c->workers.count, 2);
        assert_int_equal(c->workers.mode, WORKERS_EXEC);
        assert_true(c->workers.fork_timeout == 10 * USEC_PER_SEC);
        assert_null(c->workers.command);
        assert_null(c->workers.directory);
        assert_non_null(c->workers.env);
        assert_null(c->workers.env[0]);
        assert_int_equal(c->workers.ready, READY_NOTIFY);
        assert_true(c->workers.ready_timeout == 60 * USEC_PER_SEC);
        assert_int_equal(c->workers.stop_signal, SIGTERM);
        assert_true(c->workers.graceful_timeout == 30 * USEC_PER_SEC);
        assert_true(c->workers.watchdog == 0);
        assert_true(c->workers.backoff_initial == 100 * USEC_PER_MSEC);
        assert_true(c->workers.backoff_max == 30 * USEC_PER_SEC);
        assert_int_equal(c->workers.start_limit_burst, 8);
        assert_true(c->workers.start_limit_interval == 300 * USEC_PER_SEC);
        assert_int_equal(c->n_listen, 0);
        assert_true(c->recycle.max_requests == 0);
        assert_true(c->recycle.max_requests_jitter == 0);
        assert_true(c->recycle.max_lifetime == 0);
        assert_true(c->recycle.max_lifetime_jitter == 0);
        assert_int_equal(c->recycle.max_concurrent, 1);
        assert_int_equal(c->log.level, LOG_INFO);
        assert_int_equal(c->log.format, LOG_FORMAT_LOGFMT);
        assert_int_equal(c->memory.metric, MEMORY_METRIC_ANON);
        assert_true(c->memory.sample_interval == USEC_PER_SEC);
        assert_true(c->memory.worker_high.bytes == 0 && c->memory.worker_high.percent == 0);
        assert_true(c->memory.worker_max.bytes == 0 && c->memory.worker_max.percent == 0);
        assert_true(c->memory.group_high.bytes == 0 && c->memory.group_high.percent == 0);
        assert_true(c->memory.retained_max == 0);
        assert_true(c->memory.retained_window == 60 * USEC_PER_SEC);
        assert_true(c->memory.growth_max == 0);
        assert_true(c->memory.warmup == 30 * USEC_PER_SEC);
        assert_false(c->memory.runtime_hints);
        assert_false(c->pressure.enabled);
        assert_true(c->pressure.cooldown == 30 * USEC_PER_SEC);
        assert_true(c->pressure.min_retained == 0);
        assert_null(c->metrics.listen);
        assert_int_equal(c->metrics.max_connections, 16);
        assert_true(c->metrics.timeout == 10 * USEC_PER_SEC);
        assert_null(c->workers.user);
        assert_null(c->workers.group);
        assert_false(c->workers.credentials.set_uid || c->workers.credentials.set_gid);
        assert_int_equal(c->workers.umask, -1);
        assert_int_equal(c->metrics.access.mode, 0666);
        assert_true(c->metrics.access.uid == (uid_t) -1 && c->metrics.access.gid == (gid_t) -1);
}

static void test_defaults(void **state) {
        (void) state;
        static const char *const empty[] = {
                "", "\n", "# only a comment\n", "---\n", "~\n", "null\n", "---\n...\n",
                "workers:\nlisten:\nrecycle:\nmemory:\npressure:\nlog:\nmetrics:\n", "workers: {}\nlisten: []\n",
                "metrics: {listen: \"\"}\n", "metrics: {listen: }\n",
        };
        struct memward_config *c;

        assert_int_equal(config_new_default(&c), 0);
        assert_defaults(c);
        config_free(c);

        for (size_t i = 0; i < ELEMENTSOF(empty); i++) {
                c = load_ok(empty[i]);
                assert_defaults(c);
                config_free(c);
        }

        config_free(NULL);
        config_diagnostics_clear(NULL);
}

static void test_full_file(void **state) {
        (void) state;
        struct config_diagnostics d = {};
        struct memward_config *c = NULL;
        const char *path = FIXTURES_DIR "/config/full.yaml";

        assert_int_equal(config_load_file(path, BASE, &c, &d), 0);
        assert_int_equal(d.n_items, 0);
        assert_int_equal(d.n_warnings, 0);
        assert_string_equal(d.file, path);
        config_diagnostics_clear(&d);

        assert_string_equal(c->path, path);
        assert_int_equal(c->workers.count, 8);
        assert_int_equal(c->workers.mode, WORKERS_TEMPLATE);
        assert_true(c->workers.fork_timeout == 5 * USEC_PER_SEC);
        assert_string_equal(c->workers.command[0], "/usr/bin/python3");
        assert_string_equal(c->workers.command[1], "-u");
        assert_string_equal(c->workers.command[4], "a \"quoted\" word");
        assert_null(c->workers.command[5]);
        assert_string_equal(c->workers.directory, BASE "/srv/app");
        assert_string_equal(c->workers.env[0], "APP_ENV=prod");
        assert_string_equal(c->workers.env[1], "EMPTY=");
        assert_string_equal(c->workers.env[2], "_X1=a=b");
        assert_null(c->workers.env[3]);
        assert_int_equal(c->workers.ready, READY_DELAY);
        assert_true(c->workers.ready_delay == 2 * USEC_PER_SEC);
        assert_true(c->workers.ready_timeout == 90 * USEC_PER_SEC);
        assert_int_equal(c->workers.stop_signal, SIGINT);
        assert_true(c->workers.graceful_timeout == 10 * USEC_PER_SEC);
        assert_true(c->workers.watchdog == 15 * USEC_PER_SEC);
        assert_true(c->workers.backoff_initial == 250 * USEC_PER_MSEC);
        assert_true(c->workers.backoff_max == 60 * USEC_PER_SEC);

        assert_int_equal(c->n_listen, 3);
        assert_string_equal(c->listen[0].address, "tcp://0.0.0.0:8000");
        assert_string_equal(c->listen[0].name, "http");
        assert_int_equal(c->listen[0].backlog, 512);
        assert_string_equal(c->listen[1].address, "tcp://[::1]:8443");
        assert_null(c->listen[1].name);
        assert_int_equal(c->listen[1].backlog, 1024);
        assert_true(c->listen[0].options.nodelay);      /* the default */
        assert_false(c->listen[0].options.keepalive);
        assert_true(c->listen[0].options.defer_accept == 0);
        assert_false(c->listen[1].options.nodelay);
        assert_true(c->listen[1].options.keepalive);
        assert_true(c->listen[1].options.defer_accept == 5 * USEC_PER_SEC);
        assert_string_equal(c->listen[2].address, "unix:" BASE "/run/app.sock");
        assert_string_equal(c->listen[2].name, "app.sock-1_x");

        assert_true(c->recycle.max_requests == 1000);
        assert_true(c->recycle.max_requests_jitter == 100);
        assert_true(c->recycle.max_lifetime == 3600 * USEC_PER_SEC);
        assert_true(c->recycle.max_lifetime_jitter == 300 * USEC_PER_SEC);
        assert_int_equal(c->recycle.max_concurrent, 2);

        assert_int_equal(c->log.level, LOG_DEBUG);
        assert_int_equal(c->log.format, LOG_FORMAT_JSON);

        assert_int_equal(c->memory.metric, MEMORY_METRIC_PSS);
        assert_true(c->memory.sample_interval == 500 * USEC_PER_MSEC);
        assert_true(c->memory.worker_high.bytes == 512ULL << 20 && c->memory.worker_high.percent == 0);
        assert_true(c->memory.worker_max.bytes == 1ULL << 30);
        assert_true(c->memory.group_high.bytes == 0 && c->memory.group_high.percent == 80.0);
        assert_true(c->memory.retained_max == 300ULL << 20);
        assert_true(c->memory.retained_window == 120 * USEC_PER_SEC);
        assert_true(c->memory.growth_max == 2.5);
        assert_true(c->memory.warmup == 45 * USEC_PER_SEC);
        assert_true(c->memory.runtime_hints);

        assert_true(c->pressure.enabled);
        assert_int_equal(c->pressure.kind, PSI_FULL);
        assert_true(c->pressure.stall == 150 * USEC_PER_MSEC);
        assert_true(c->pressure.window == 2 * USEC_PER_SEC);
        assert_true(c->pressure.cooldown == 60 * USEC_PER_SEC);
        assert_true(c->pressure.min_retained == 64ULL << 20);

        assert_string_equal(c->metrics.listen, "unix:" BASE "/run/metrics.sock");
        assert_int_equal(c->metrics.access.mode, 0600);
        assert_int_equal(c->metrics.access.uid, 1);
        assert_int_equal(c->metrics.access.gid, 65534);
        assert_string_equal(c->metrics.owner, "1");
        assert_string_equal(c->metrics.group, "nogroup");

        assert_string_equal(c->workers.user, "nobody");
        assert_string_equal(c->workers.group, "nogroup");
        assert_true(c->workers.credentials.set_uid && c->workers.credentials.set_gid);
        assert_int_equal(c->workers.credentials.uid, 65534);
        assert_int_equal(c->workers.credentials.gid, 65534);
        assert_int_equal(c->workers.credentials.n_groups, 1);
        assert_int_equal(c->workers.credentials.groups[0], 65534);
        assert_int_equal(c->workers.umask, 0027);
        assert_int_equal(c->listen[2].access.mode, 0660);
        assert_int_equal(c->listen[2].access.uid, 1);
        assert_int_equal(c->listen[2].access.gid, 65534);
        assert_string_equal(c->listen[2].owner, "daemon");
        assert_string_equal(c->listen[2].group, "65534");
        assert_int_equal(c->listen[0].access.mode, 0666);       /* the default, unused on TCP */
        assert_true(c->listen[0].access.uid == (uid_t) -1 && c->listen[0].access.gid == (gid_t) -1);
        assert_int_equal(c->metrics.max_connections, 4);
        assert_true(c->metrics.timeout == 30 * USEC_PER_SEC);

        assert_int_equal(config_validate(c, &d), 0);
        assert_int_equal(d.n_items, 0);
        config_diagnostics_clear(&d);
        config_free(c);
}

/* The shipped sample config loads, validates and means what its comments say. */
static void test_sample_config(void **state) {
        (void) state;
        struct config_diagnostics d = {};
        struct memward_config *c = NULL;

        assert_int_equal(config_load_file(FIXTURES_DIR "/../../config/memward.yaml", BASE, &c, &d), 0);
        assert_int_equal(d.n_warnings, 0);
        assert_int_equal(config_validate(c, &d), 0);
        config_diagnostics_clear(&d);

        assert_int_equal(c->workers.count, 4);
        assert_string_equal(c->workers.command[0], "/usr/bin/python3");
        assert_string_equal(c->workers.command[1], "examples/python/worker.py");
        assert_null(c->workers.command[2]);
        assert_string_equal(c->workers.directory, BASE);
        assert_int_equal(c->workers.ready, READY_NOTIFY);
        assert_int_equal(c->n_listen, 1);
        assert_string_equal(c->listen[0].address, "tcp://127.0.0.1:8000");
        assert_string_equal(c->listen[0].name, "http");
        assert_true(c->recycle.max_requests == 1000);
        assert_true(c->recycle.max_requests_jitter == 100);
        free(assert_dump_round_trip(c));
        config_free(c);
}

static void test_scalar_forms(void **state) {
        (void) state;
        struct memward_config *c;

        /* Booleans, quoted numbers, signals by number and short name, ready modes. */
        c = load_ok("workers: {count: \"3\", stop_signal: 15, ready: immediate}\n"
                    "memory: {runtime_hints: True, worker_max: \"12.5%\", growth_max: 3}\n"
                    "pressure: {trigger: some  1s   10s}\n");
        assert_int_equal(c->workers.count, 3);
        assert_int_equal(c->workers.stop_signal, SIGTERM);
        assert_int_equal(c->workers.ready, READY_IMMEDIATE);
        assert_true(c->memory.runtime_hints);
        assert_true(c->memory.worker_max.percent == 12.5);
        assert_true(c->memory.growth_max == 3.0);
        assert_true(c->pressure.enabled);
        assert_int_equal(c->pressure.kind, PSI_SOME);
        assert_true(c->pressure.stall == USEC_PER_SEC && c->pressure.window == 10 * USEC_PER_SEC);
        config_free(c);

        c = load_ok("workers: {stop_signal: sigquit, ready: 0}\n"
                    "memory: {runtime_hints: no, worker_high: 0, group_high: 100%}\n"
                    "pressure: {trigger: }\n");
        assert_int_equal(c->workers.stop_signal, SIGQUIT);
        assert_int_equal(c->workers.ready, READY_DELAY);
        assert_true(c->workers.ready_delay == 0);
        assert_false(c->memory.runtime_hints);
        assert_true(c->memory.worker_high.percent == 0 && c->memory.worker_high.bytes == 0);
        assert_true(c->memory.group_high.percent == 100.0);
        assert_false(c->pressure.enabled);
        config_free(c);

        /* Later keys override nothing twice: a repeated section is a duplicate, not a merge. */
        c = load_ok("listen:\n  - address: \"unix:/abs.sock\"\n  - address: \"unix:@abstract\"\n");
        assert_string_equal(c->listen[0].address, "unix:/abs.sock");
        assert_string_equal(c->listen[1].address, "unix:@abstract");
        config_free(c);
}

static void test_directory_resolution(void **state) {
        (void) state;
        static const struct {
                const char *in, *out;
        } cases[] = {
                { ".", BASE },
                { "./", BASE },
                { "app", BASE "/app" },
                { "./a/./b/", BASE "/a/b" },
                { "a//b", BASE "/a/b" },
                { "../up", BASE "/../up" },
                { "/abs/dir", "/abs/dir" },
                { "/", "/" },
                { "/.", "/" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char yaml[128];
                struct memward_config *c;

                snprintf(yaml, sizeof yaml, "workers:\n  directory: \"%s\"\n", cases[i].in);
                c = load_ok(yaml);
                assert_string_equal(c->workers.directory, cases[i].out);
                config_free(c);
        }
}

/* ---- error classes ----------------------------------------------------------------- */

static void test_errors_integers(void **state) {
        (void) state;
        assert_errors("workers:\n  count: four\n", "2:10: workers.count: expected an integer >= 1, got \"four\"");
        assert_errors("workers:\n  count: 0\n", "2:10: workers.count: expected an integer >= 1, got \"0\"");
        assert_errors("workers:\n  count: -3\n", "2:10: workers.count: expected an integer >= 1, got \"-3\"");
        assert_errors("workers:\n  count: 2.5\n", "2:10: workers.count: expected an integer >= 1, got \"2.5\"");
        assert_errors("workers:\n  count: 010\n", "2:10: workers.count: expected an integer >= 1, got \"010\"");
        assert_errors("workers:\n  count: 0x10\n", "2:10: workers.count: expected an integer >= 1, got \"0x10\"");
        assert_errors("workers:\n  count: 1025\n", "2:10: workers.count: expected an integer in 1..1024, got \"1025\"");
        assert_errors("workers:\n  count: 99999999999999999999999\n",
                      "2:10: workers.count: expected an integer in 1..1024, got \"99999999999999999999999\"");
        assert_errors("workers:\n  count:\n", "2:9: workers.count: expected an integer >= 1, got an empty value");
        assert_errors("workers:\n  count: [4]\n", "2:10: workers.count: expected an integer >= 1, got a list");
        assert_errors("workers:\n  count: {n: 4}\n", "2:10: workers.count: expected an integer >= 1, got a mapping");
        assert_errors("workers:\n  count: ~\n", "2:10: workers.count: expected an integer >= 1, got null");
        assert_errors("recycle:\n  max_requests: -1\n",
                      "2:17: recycle.max_requests: expected an integer >= 0, got \"-1\"");
        assert_errors("recycle:\n  max_requests_jitter: 4294967296\n",
                      "2:24: recycle.max_requests_jitter: expected an integer in 0..4294967295, got \"4294967296\"");
        assert_errors("recycle: {max_concurrent: 0}\n",
                      "1:27: recycle.max_concurrent: expected an integer >= 1, got \"0\"");
        assert_errors("listen:\n  - {address: \"tcp://127.0.0.1:1\", backlog: 65536}\n",
                      "2:45: listen[0].backlog: expected an integer in 1..65535, got \"65536\"");
        assert_errors("memory:\n  retained_max: 96MB\n",
                      "2:17: memory.retained_max: sizes are binary (KiB, MiB, GiB, also written K, M, G), and 96MB "
                      "is an SI size: write 96MiB for 96 x 1024^2 bytes, or 93750KiB for 96000000, got \"96MB\"");
        assert_errors("memory:\n  worker_max: 2GB\n",
                      "2:15: memory.worker_max: sizes are binary (KiB, MiB, GiB, also written K, M, G), and 2GB "
                      "is an SI size: write 2GiB for 2 x 1024^3 bytes, or 1907MiB for 2000000000, got \"2GB\"");
        assert_errors("listen:\n  - {address: \"tcp://0.0.0.0:80\"}\n  - {address: \"tcp://[::]:80\"}\n",
                      "3:15: listen[1].address: overlaps listen[0] on its port (a wildcard takes every address of "
                      "its family, and [::] IPv4 too unless net.ipv6.bindv6only=1)");
        assert_errors("listen:\n  - {address: \"unix:/run/a.sock\", nodelay: true}\n",
                      "2:44: listen[0].nodelay: a TCP option, but the address is unix:");
        assert_errors("listen:\n  - {address: \"tcp://127.0.0.1:1\", nodelay: 1}\n",
                      "2:45: listen[0].nodelay: expected a boolean (true or false), got \"1\"");
        assert_errors("listen:\n  - {address: \"tcp://127.0.0.1:1\", defer_accept: 2h}\n",
                      "2:50: listen[0].defer_accept: expected a duration in 0..1h, got \"2h\"");
        /* Long values are cut in the message; control characters are escaped. */
        assert_errors("workers: {count: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}\n",
                      "1:18: workers.count: expected an integer >= 1, got "
                      "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"");
        assert_errors("workers: {count: \"4\\n\\\"\"}\n",
                      "1:18: workers.count: expected an integer >= 1, got \"4\\n\\\"\"");
}

static void test_errors_durations(void **state) {
        (void) state;
        /* A YAML integer is not a duration. */
        assert_errors("workers:\n  graceful_timeout: 30\n",
                      "2:21: workers.graceful_timeout: expected a duration with a unit (ms, s, m, h), got \"30\"");
        assert_errors("workers:\n  ready_timeout: 1.5s\n",
                      "2:18: workers.ready_timeout: expected a duration with a unit (ms, s, m, h), got \"1.5s\"");
        assert_errors("workers:\n  mode: fork\n",
                      "2:9: workers.mode: expected exec or template, got \"fork\"");
        assert_errors("workers:\n  mode: [exec]\n",
                      "2:9: workers.mode: expected exec or template, got a list");
        assert_errors("workers:\n  fork_timeout: 0\n",
                      "2:17: workers.fork_timeout: expected a duration in 1ms..8760h, got \"0\"");
        assert_errors("workers:\n  fork_timeout: 10\n",
                      "2:17: workers.fork_timeout: expected a duration with a unit (ms, s, m, h), got \"10\"");
        assert_errors("workers:\n  watchdog: 10 s\n",
                      "2:13: workers.watchdog: expected a duration with a unit (ms, s, m, h), got \"10 s\"");
        assert_errors("workers:\n  watchdog: -1s\n",
                      "2:13: workers.watchdog: expected a duration with a unit (ms, s, m, h), got \"-1s\"");
        assert_errors("workers:\n  watchdog: 5 days\n",
                      "2:13: workers.watchdog: expected a duration with a unit (ms, s, m, h), got \"5 days\"");
        assert_errors("workers:\n  watchdog: \"\"\n",
                      "2:13: workers.watchdog: expected a duration with a unit (ms, s, m, h), got \"\"");
        assert_errors("workers:\n  ready_timeout: 0\n",
                      "2:18: workers.ready_timeout: expected a duration in 1ms..8760h, got \"0\"");
        assert_errors("recycle:\n  max_lifetime: 8761h\n",
                      "2:17: recycle.max_lifetime: expected a duration in 0..8760h, got \"8761h\"");
        assert_errors("recycle:\n  max_lifetime: 99999999999999999999h\n",
                      "2:17: recycle.max_lifetime: expected a duration in 0..8760h, got \"99999999999999999999h\"");
        assert_errors("memory:\n  sample_interval: 50ms\n",
                      "2:20: memory.sample_interval: expected a duration in 100ms..1m, got \"50ms\"");
        assert_errors("memory:\n  sample_interval: 61s\n",
                      "2:20: memory.sample_interval: expected a duration in 100ms..1m, got \"61s\"");
        assert_errors("memory:\n  retained_window: 2h\n",
                      "2:20: memory.retained_window: expected a duration in 100ms..1h, got \"2h\"");
        assert_errors("workers:\n  restart_backoff: {initial: 0}\n",
                      "2:30: workers.restart_backoff.initial: expected a duration in 1ms..8760h, got \"0\"");
        assert_errors("workers:\n  start_limit_burst: 1001\n",
                      "2:22: workers.start_limit_burst: expected an integer in 0..1000, got \"1001\"");
        assert_errors("workers:\n  start_limit_burst: -1\n",
                      "2:22: workers.start_limit_burst: expected an integer >= 0, got \"-1\"");
        assert_errors("workers:\n  start_limit_burst: 5x\n",
                      "2:22: workers.start_limit_burst: expected an integer >= 0, got \"5x\"");
        assert_errors("workers:\n  start_limit_interval: 0\n",
                      "2:25: workers.start_limit_interval: expected a duration in 1ms..8760h, got \"0\"");
        assert_errors("workers:\n  start_limit_interval: soon\n",
                      "2:25: workers.start_limit_interval: expected a duration with a unit (ms, s, m, h), got \"soon\"");
        assert_errors("workers:\n  ready: 5 s\n",
                      "2:10: workers.ready: expected notify, immediate or a duration (e.g. 5s), got \"5 s\"");
        assert_errors("workers:\n  ready: 9000h\n",
                      "2:10: workers.ready: expected a duration in 0..8760h, got \"9000h\"");
}

static void test_errors_sizes(void **state) {
        (void) state;
        assert_errors("memory:\n  retained_max: 1.5G\n",
                      "2:17: memory.retained_max: expected a size (e.g. 512MiB), got \"1.5G\"");
        assert_errors("memory:\n  retained_max: 12X\n",
                      "2:17: memory.retained_max: expected a size (e.g. 512MiB), got \"12X\"");
        assert_errors("memory:\n  retained_max: -1M\n",
                      "2:17: memory.retained_max: expected a size (e.g. 512MiB), got \"-1M\"");
        assert_errors("pressure:\n  min_retained: 17179869184G\n",
                      "2:17: pressure.min_retained: expected a size below 16EiB, got \"17179869184G\"");
        assert_errors("memory:\n  worker_high: 120%\n",
                      "2:16: memory.worker_high: expected a percentage above 0% and at most 100% (0 without % is off), "
                      "got \"120%\"");
        /* 0% would resolve to 0 bytes, which means unset: the limit would be silently off. */
        assert_errors("memory:\n  worker_max: 0%\n",
                      "2:15: memory.worker_max: expected a percentage above 0% and at most 100% (0 without % is off), "
                      "got \"0%\"");
        assert_errors("memory:\n  group_high: \"0.00%\"\n",
                      "2:15: memory.group_high: expected a percentage above 0% and at most 100% (0 without % is off), "
                      "got \"0.00%\"");
        config_free(load_ok("memory: {worker_high: 0.01%, worker_max: 100%}\n"));
        assert_errors("memory:\n  worker_max: abc%\n",
                      "2:15: memory.worker_max: expected a size (e.g. 512MiB) or a percentage of the group limit "
                      "(e.g. 80%), got \"abc%\"");
        assert_errors("memory:\n  worker_max: \"-5%\"\n",
                      "2:15: memory.worker_max: expected a size (e.g. 512MiB) or a percentage of the group limit "
                      "(e.g. 80%), got \"-5%\"");
        assert_errors("memory:\n  group_high: 80 %\n",
                      "2:15: memory.group_high: expected a size (e.g. 512MiB) or a percentage of the group limit "
                      "(e.g. 80%), got \"80 %\"");
        assert_errors("memory:\n  group_high: 5.%\n",
                      "2:15: memory.group_high: expected a size (e.g. 512MiB) or a percentage of the group limit "
                      "(e.g. 80%), got \"5.%\"");
        assert_errors("memory:\n  group_high: 99999999999G\n",
                      "2:15: memory.group_high: expected a size below 16EiB, got \"99999999999G\"");
        assert_errors("memory:\n  growth_max: 1.0\n",
                      "2:15: memory.growth_max: expected 0 (off) or a number > 1 and <= 1000 (e.g. 2.5), got \"1.0\"");
        assert_errors("memory:\n  growth_max: 0.5\n",
                      "2:15: memory.growth_max: expected 0 (off) or a number > 1 and <= 1000 (e.g. 2.5), got \"0.5\"");
        assert_errors("memory:\n  growth_max: 1e3\n",
                      "2:15: memory.growth_max: expected 0 (off) or a number > 1 and <= 1000 (e.g. 2.5), got \"1e3\"");
        assert_errors("memory:\n  growth_max: 1001\n",
                      "2:15: memory.growth_max: expected 0 (off) or a number > 1 and <= 1000 (e.g. 2.5), got \"1001\"");
        assert_errors("memory:\n  growth_max: .inf\n",
                      "2:15: memory.growth_max: expected 0 (off) or a number > 1 and <= 1000 (e.g. 2.5), got \".inf\"");
}

static void test_errors_enums(void **state) {
        (void) state;
        assert_errors("memory: {metric: rs}\n", "1:18: memory.metric: expected one of anon, current, rss, pss, got \"rs\"");
        assert_errors("log: {level: crit}\n",
                      "1:14: log.level: expected one of debug, info, notice, warning, error, got \"crit\"");
        assert_errors("log: {level: INFO}\n",
                      "1:14: log.level: expected one of debug, info, notice, warning, error, got \"INFO\"");
        assert_errors("log: {format: text}\n", "1:15: log.format: expected logfmt or json, got \"text\"");
        assert_errors("workers: {ready: later}\n",
                      "1:18: workers.ready: expected notify, immediate or a duration (e.g. 5s), got \"later\"");
        assert_errors("workers: {stop_signal: SIGFOO}\n",
                      "1:24: workers.stop_signal: expected a signal name such as SIGTERM, got \"SIGFOO\"");
        assert_errors("workers: {stop_signal: 0}\n",
                      "1:24: workers.stop_signal: expected a signal name such as SIGTERM, got \"0\"");
        assert_errors("workers: {stop_signal: STOP}\n",
                      "1:24: workers.stop_signal: expected a signal name such as SIGTERM, got \"STOP\"");
        assert_errors("memory: {runtime_hints: maybe}\n",
                      "1:25: memory.runtime_hints: expected a boolean (true or false), got \"maybe\"");
        assert_errors("memory: {runtime_hints: 1}\n",
                      "1:25: memory.runtime_hints: expected a boolean (true or false), got \"1\"");
}

static void test_errors_trigger(void **state) {
        (void) state;
#define TRIGGER_SYNTAX "pressure.trigger: expected \"\" (off) or \"some|full <stall> <window>\" (e.g. \"some 150ms 2s\"), got "
        assert_errors("pressure:\n  trigger: sometimes\n", "2:12: " TRIGGER_SYNTAX "\"sometimes\"");
        assert_errors("pressure:\n  trigger: some 150ms\n", "2:12: " TRIGGER_SYNTAX "\"some 150ms\"");
        assert_errors("pressure:\n  trigger: some 150ms 2s 3s\n", "2:12: " TRIGGER_SYNTAX "\"some 150ms 2s 3s\"");
        assert_errors("pressure:\n  trigger: half 1s 2s\n", "2:12: " TRIGGER_SYNTAX "\"half 1s 2s\"");
        assert_errors("pressure:\n  trigger: some 150 2s\n", "2:12: " TRIGGER_SYNTAX "\"some 150 2s\"");
        assert_errors("pressure:\n  trigger: [some, 1s, 2s]\n", "2:12: " TRIGGER_SYNTAX "a list");
        assert_errors("pressure:\n  trigger: some 100ms 20s\n",
                      "2:12: pressure.trigger: the window must be in 500ms..10s, got \"some 100ms 20s\"");
        assert_errors("pressure:\n  trigger: some 1ms 400ms\n",
                      "2:12: pressure.trigger: the window must be in 500ms..10s, got \"some 1ms 400ms\"");
        assert_errors("pressure:\n  trigger: some 0 2s\n",
                      "2:12: pressure.trigger: the stall must be > 0 and <= the window, got \"some 0 2s\"");
        assert_errors("pressure:\n  trigger: full 3s 2s\n",
                      "2:12: pressure.trigger: the stall must be > 0 and <= the window, got \"full 3s 2s\"");
#undef TRIGGER_SYNTAX
}

static void test_errors_unknown_keys(void **state) {
        (void) state;
        assert_errors("wrokers:\n  count: 4\n", "1:1: wrokers: unknown key (did you mean \"workers\"?)");
        assert_errors("workers:\n  cuont: 4\n", "2:3: workers.cuont: unknown key (did you mean \"count\"?)");
        assert_errors("workers:\n  restart_backoff: {initail: 1s}\n",
                      "2:21: workers.restart_backoff.initail: unknown key (did you mean \"initial\"?)");
        assert_errors("memory:\n  retained_windw: 1m\n",
                      "2:3: memory.retained_windw: unknown key (did you mean \"retained_window\"?)");
        /* Far from every key: no guess. */
        assert_errors("workers:\n  processes: 4\n", "2:3: workers.processes: unknown key");
        assert_errors("cgroup: {}\n", "1:1: cgroup: unknown key");
        assert_errors("listen:\n  - {address: \"tcp://127.0.0.1:80\", nmae: http}\n",
                      "2:37: listen[0].nmae: unknown key (did you mean \"name\"?)");
        /* Keys are compared exactly. */
        assert_errors("Workers: {}\n", "1:1: Workers: unknown key (did you mean \"workers\"?)");
        assert_errors("? [a, b]\n: 1\n", "1:3: keys must be strings, got a list");
        assert_errors("workers:\n  ? {a: 1}\n  : 2\n", "2:5: workers: keys must be strings, got a mapping");
}

static void test_errors_duplicate_keys(void **state) {
        (void) state;
        assert_errors("workers:\n  count: 4\n  count: 5\n", "3:3: workers.count: duplicate key (first at line 2)");
        assert_errors("workers: {count: 4}\nlog: {}\nworkers: {count: 5}\n",
                      "3:1: workers: duplicate key (first at line 1)");
        assert_errors("workers:\n  env:\n    A: x\n    B: y\n    A: z\n",
                      "5:5: workers.env.A: duplicate key (first at line 3)");
        assert_errors("listen:\n  - address: \"unix:/a\"\n    address: \"unix:/b\"\n",
                      "3:5: listen[0].address: duplicate key (first at line 2)");
}

static void test_errors_types(void **state) {
        (void) state;
        assert_errors("workers: [1, 2]\n", "1:10: workers: expected a mapping, got a list");
        assert_errors("workers: 4\n", "1:10: workers: expected a mapping, got \"4\"");
        assert_errors("recycle: off\n", "1:10: recycle: expected a mapping, got \"off\"");
        assert_errors("workers:\n  restart_backoff: 1s\n",
                      "2:20: workers.restart_backoff: expected a mapping, got \"1s\"");
        assert_errors("workers:\n  command: python3 app.py\n",
                      "2:12: workers.command: expected a list of strings, got \"python3 app.py\"");
        assert_errors("workers:\n  command: {a: b}\n", "2:12: workers.command: expected a list of strings, got a mapping");
        assert_errors("workers:\n  command:\n", "2:11: workers.command: expected a list of strings, got an empty value");
        assert_errors("workers:\n  command: []\n",
                      "2:12: workers.command: expected a non-empty list of strings, got an empty list");
        assert_errors("workers:\n  command: [python3, {a: b}, [c], ~]\n",
                      "2:22: workers.command[1]: expected a string, got a mapping",
                      "2:30: workers.command[2]: expected a string, got a list",
                      "2:35: workers.command[3]: expected a string, got null");
        assert_errors("workers:\n  command: [\"\", x]\n", "2:13: workers.command[0]: the program name must not be empty");
        assert_errors("workers:\n  command: [a, \"b\\0c\"]\n", "2:16: workers.command[1]: must not contain NUL bytes");
        assert_errors("workers:\n  directory: [a]\n", "2:14: workers.directory: expected a string, got a list");
        assert_errors("workers:\n  directory: \"\"\n", "2:14: workers.directory: must not be empty");
        assert_errors("workers:\n  env: [A=b]\n",
                      "2:8: workers.env: expected a mapping of variable names to strings, got a list");
        assert_errors("listen: tcp://0.0.0.0:80\n", "1:9: listen: expected a list of mappings, got \"tcp://0.0.0.0:80\"");
        assert_errors("listen:\n  - tcp://0.0.0.0:80\n",
                      "2:5: listen[0]: expected a mapping, got \"tcp://0.0.0.0:80\"");
}

static void test_errors_env(void **state) {
        (void) state;
        struct memward_config *c;

        assert_errors("workers:\n  env: {1A: x, A-B: y, \"\": z}\n",
                      "2:9: workers.env: invalid variable name \"1A\"",
                      "2:16: workers.env: invalid variable name \"A-B\"",
                      "2:24: workers.env: invalid variable name \"\"");
        assert_errors("workers:\n  env: {LISTEN_FDS: 3, NOTIFY_SOCKET: /x, MEMWARD_WORKER_ID: 1}\n",
                      "2:9: workers.env.LISTEN_FDS: reserved, memward sets it for each worker",
                      "2:24: workers.env.NOTIFY_SOCKET: reserved, memward sets it for each worker",
                      "2:43: workers.env.MEMWARD_WORKER_ID: reserved, memward sets it for each worker");
        assert_errors("workers:\n  env: {A: {b: c}, B: ~, C: \"x\\0y\"}\n",
                      "2:12: workers.env.A: expected a string, got a mapping",
                      "2:23: workers.env.B: expected a string, got null",
                      "2:29: workers.env.C: must not contain NUL bytes");
        assert_errors("workers:\n  env:\n    A:\n", "3:7: workers.env.A: expected a string, got an empty value");

        c = load_ok("workers:\n  env: {N: 3, T: true, Q: \"\", U: \"ü\"}\n");
        assert_string_equal(c->workers.env[0], "N=3");
        assert_string_equal(c->workers.env[1], "T=true");
        assert_string_equal(c->workers.env[2], "Q=");
        assert_string_equal(c->workers.env[3], "U=ü");
        assert_null(c->workers.env[4]);
        config_free(c);
}

static void test_errors_listen(void **state) {
        (void) state;
        char yaml[4096];
        size_t n = 0;
        struct memward_config *c;

        assert_errors("listen:\n  - name: http\n", "2:5: listen[0].address: required");
        assert_errors("listen:\n  - {address: \"tcp://127.0.0.1\"}\n",
                      "2:15: listen[0].address: expected tcp://HOST:PORT, tcp://[IPV6]:PORT or unix:PATH, "
                      "got \"tcp://127.0.0.1\"");
        assert_errors("listen:\n  - {address: \"http://127.0.0.1:80\"}\n",
                      "2:15: listen[0].address: expected tcp://HOST:PORT, tcp://[IPV6]:PORT or unix:PATH, "
                      "got \"http://127.0.0.1:80\"");
        assert_errors("listen:\n  - {address: \"tcp://127.0.0.1:0\"}\n",
                      "2:15: listen[0].address: the port must be in 1..65535, got \"tcp://127.0.0.1:0\"");
        assert_errors("listen:\n  - {address: \"tcp://[::]:70000\"}\n",
                      "2:15: listen[0].address: the port must be in 1..65535, got \"tcp://[::]:70000\"");
        /* The length limit applies to the path after it was made absolute. */
        assert_errors("listen:\n  - address: unix:" LONG_RELATIVE "\n",
                      "2:14: listen[0].address: the socket path is longer than 107 bytes, got "
                      "\"unix:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"");
        assert_errors("listen:\n  - {address: \"tcp://127.0.0.1:80\", name: \"a:b\"}\n",
                      "2:43: listen[0].name: expected 1..255 characters out of A-Z a-z 0-9 _ . -, got \"a:b\"");
        assert_errors("listen:\n  - {address: \"tcp://127.0.0.1:80\", name: \"\"}\n",
                      "2:43: listen[0].name: expected 1..255 characters out of A-Z a-z 0-9 _ . -, got \"\"");
        assert_errors("listen:\n  - {address: \"tcp://127.0.0.1:80\", backlog: 0}\n",
                      "2:46: listen[0].backlog: expected an integer >= 1, got \"0\"");
        assert_errors("listen:\n  - address: \"tcp://127.0.0.1:80\"\n  - address: \"tcp://localhost:80\"\n",
                      "3:14: listen[1].address: same address as listen[0]");
        assert_errors("listen:\n  - address: \"unix:x.sock\"\n  - address: \"unix:" BASE "/x.sock\"\n",
                      "3:14: listen[1].address: same address as listen[0]");

        /* 255 characters are a valid name, 256 are not. */
        n = (size_t) snprintf(yaml, sizeof yaml, "listen:\n  - address: \"tcp://127.0.0.1:80\"\n    name: ");
        memset(yaml + n, 'n', 255);
        strcpy(yaml + n + 255, "\n");
        c = load_ok(yaml);
        assert_int_equal(strlen(c->listen[0].name), 255);
        config_free(c);
        strcpy(yaml + n + 255, "n\n");
        assert_errors(yaml, "3:11: listen[0].name: expected 1..255 characters out of A-Z a-z 0-9 _ . -, got "
                            "\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...\"");

        /* CONFIG_LISTEN_MAX entries are fine, one more is not. */
        n = (size_t) snprintf(yaml, sizeof yaml, "listen:\n");
        for (unsigned i = 0; i < CONFIG_LISTEN_MAX; i++)
                n += (size_t) snprintf(yaml + n, sizeof yaml - n, "  - address: \"tcp://127.0.0.1:%u\"\n", 8000 + i);
        c = load_ok(yaml);
        assert_int_equal(c->n_listen, CONFIG_LISTEN_MAX);
        config_free(c);
        snprintf(yaml + n, sizeof yaml - n, "  - address: \"tcp://127.0.0.1:9999\"\n");
        assert_errors(yaml, "18:5: listen: at most 16 addresses are supported");
}

static void test_errors_cross_keys(void **state) {
        (void) state;
        assert_errors("workers:\n  restart_backoff: {initial: 1m}\n",
                      "2:30: workers.restart_backoff: initial (1m) must not be greater than max (30s)");
        assert_errors("workers:\n  restart_backoff:\n    max: 50ms\n",
                      "3:10: workers.restart_backoff: initial (100ms) must not be greater than max (50ms)");
        assert_errors("workers:\n  ready: 60s\n",
                      "2:10: workers.ready: the delay (1m) must be shorter than workers.ready_timeout (1m)");
        assert_errors("workers:\n  ready_timeout: 5s\n  ready: 10s\n",
                      "3:10: workers.ready: the delay (10s) must be shorter than workers.ready_timeout (5s)");
        assert_errors("memory:\n  sample_interval: 10s\n  retained_window: 5s\n",
                      "3:20: memory.retained_window (5s) must not be shorter than memory.sample_interval (10s)");
        assert_errors("memory:\n  retained_window: 500ms\n",
                      "2:20: memory.retained_window (500ms) must not be shorter than memory.sample_interval (1s)");
        /* One sample per window makes the floor a single reading: refused where a
         * rule uses floors, accepted where none does. */
        assert_errors("memory:\n  retained_max: 100M\n  sample_interval: 40s\n",
                      "3:20: memory.retained_window (1m) must be at least twice memory.sample_interval (40s): "
                      "a floor over one sample is just the latest reading");
        assert_errors("memory:\n  sample_interval: 1s\n  retained_window: 1500ms\n  group_high: 1G\n",
                      "3:20: memory.retained_window (1500ms) must be at least twice memory.sample_interval (1s): "
                      "a floor over one sample is just the latest reading");
        config_free(load_ok("memory: {sample_interval: 60s}\n"));
        config_free(load_ok("memory: {retained_max: 100M, sample_interval: 30s, retained_window: 1m}\n"));
        assert_errors("memory:\n  worker_high: 2G\n  worker_max: 1G\n",
                      "2:16: memory.worker_high (2GiB) must not be greater than memory.worker_max (1GiB)");
        assert_errors("memory:\n  worker_max: 50%\n  worker_high: 60%\n",
                      "3:16: memory.worker_high (60%) must not be greater than memory.worker_max (50%)");

        /* Mixed kinds cannot be compared without the group limit: accepted. */
        config_free(load_ok("memory: {worker_high: 2G, worker_max: 50%}\n"));
        /* A single-key error suppresses the follow-up rules. */
        assert_errors("workers:\n  count: x\n  restart_backoff: {initial: 1m}\n",
                      "2:10: workers.count: expected an integer >= 1, got \"x\"");
}

static void test_aliases_rejected(void **state) {
        (void) state;
        assert_errors("defaults: &d\n  count: 4\nworkers: *d\n", "1:11: YAML anchors are not supported",
                      "3:10: YAML aliases are not supported");
        assert_errors("workers:\n  count: &n 4\n  ready_timeout: *n\n", "2:10: YAML anchors are not supported",
                      "3:18: YAML aliases are not supported");
        assert_errors("workers:\n  <<: *base\n", "2:7: YAML aliases are not supported");
        /* A billion laughs never reaches the document walk. */
        assert_errors("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", "1:4: YAML anchors are not supported",
                      "2:4: YAML anchors are not supported", "2:8: YAML aliases are not supported",
                      "2:12: YAML aliases are not supported", "3:5: YAML aliases are not supported",
                      "3:9: YAML aliases are not supported");
}

/* Flow nesting is bounded before libyaml, whose scanner takes time that grows with the
 * square of the depth; the error points at the first bracket too many. */
static void test_nesting_bounded(void **state) {
        char yaml[4096], *text;
        struct config_diagnostics d = {};
        struct memward_config *c = NULL;
        (void) state;

        /* 64 levels are not refused for their depth (but for the unknown key). */
        int n = snprintf(yaml, sizeof yaml, "x: ");
        for (int i = 0; i < 64; i++)
                yaml[n++] = '[';
        for (int i = 0; i < 64; i++)
                yaml[n++] = ']';
        snprintf(yaml + n, sizeof yaml - (size_t) n, "\n");
        assert_errors(yaml, "1:1: x: unknown key");

        /* Brackets in comments and quoted scalars do not count. */
        assert_errors("# [[[[ a comment\nx: {a: '[[['']', b: \"[\\\"[[\"}\n", "2:1: x: unknown key");

        /* One more: refused at the 65th bracket, a mapping counting like a sequence. */
        n = snprintf(yaml, sizeof yaml, "x: ");
        for (int i = 0; i < 64; i++)
                yaml[n++] = '[';
        for (int i = 0; i < 2000; i++)
                yaml[n++] = '{';
        yaml[n] = '\0';
        assert_errors(yaml, "1:68: nested deeper than 64 levels");

        /* The 2,067-character line is shown as the 120 characters around the column. */
        assert_int_equal(config_load_string(yaml, strlen(yaml), NAME, BASE, &c, &d), -EINVAL);
        text = print_to_string(&d);
        char *shown = strstr(text, "\n    ...");
        assert_non_null(shown);
        shown += 1;
        char *caret_line = strchr(shown, '\n');
        assert_non_null(caret_line);
        assert_int_equal(caret_line - shown, 4 + 3 + 120 + 3);
        assert_memory_equal(caret_line - 3, "...", 3);
        caret_line++;
        /* Column 68; the window starts at character 8 of the line, after "    ...". */
        assert_int_equal(strchr(caret_line, '^') - caret_line, 4 + 3 + (68 - 8));
        free(text);
        config_diagnostics_clear(&d);
}

static void test_syntax_errors(void **state) {
        (void) state;
        assert_errors("workers:\n  count: 4\n   command: x\n",
                      "3:11: syntax error: mapping values are not allowed in this context");
        assert_errors("workers:\n  count: 4\n count: 5\n",
                      "3:2: syntax error: did not find expected key (while parsing a block mapping at line 1, column 1)");
        assert_errors("workers: {count: 4\n",
                      "2:1: syntax error: did not find expected ',' or '}' (while parsing a flow mapping at line 1, "
                      "column 10)");
        assert_errors("workers:\n\tcount: 4\n",
                      "2:1: syntax error: found character that cannot start any token (while scanning for the next "
                      "token), YAML indents with spaces, not tabs");
        assert_errors("workers:\n  command: 'abc\n",
                      "3:1: syntax error: found unexpected end of stream (while scanning a quoted scalar at line 2, "
                      "column 12)");
        assert_errors("a: \xff\n", "1:4: syntax error: invalid leading UTF-8 octet (#FF)");
        assert_errors("workers:\n  count: 4\n---\nlog: {}\n", "3:1: only one YAML document is supported");
        /* The first error stops libyaml; nothing after it is reported. */
        assert_errors("wrong: 1\nworkers: {count: 4\n", "3:1: syntax error: did not find expected ',' or '}' "
                                                        "(while parsing a flow mapping at line 2, column 10)");
}

static void test_top_level_not_a_mapping(void **state) {
        (void) state;
        assert_errors("- workers\n- listen\n", "1:1: expected a mapping at the top level, got a list");
        assert_errors("workers\n", "1:1: expected a mapping at the top level, got \"workers\"");
        assert_errors("\"\"\n", "1:1: expected a mapping at the top level, got \"\"");
}

/* All errors of a file, in document order, not just the first. */
static void test_multiple_errors(void **state) {
        (void) state;
        struct config_diagnostics d = {};
        struct memward_config *c = NULL;
        static const char *const expected[] = {
                "2:10: workers.count: expected an integer >= 1, got \"four\"",
                "3:3: workers.cuont: unknown key (did you mean \"count\"?)",
                "4:18: workers.ready_timeout: expected a duration with a unit (ms, s, m, h), got \"30\"",
                "6:17: recycle.max_requests: expected an integer >= 0, got \"-1\"",
                "7:14: log.level: expected one of debug, info, notice, warning, error, got \"loud\"",
                "9:20: memory.sample_interval: expected a duration in 100ms..1m, got \"10ms\"",
                "10:17: memory.retained_max: expected a size (e.g. 512MiB), got \"1.5G\"",
                "11:16: memory.worker_high: expected a percentage above 0% and at most 100% (0 without % is off), "
                "got \"120%\"",
                "13:46: listen[0].name: expected 1..255 characters out of A-Z a-z 0-9 _ . -, got \"a:b\"",
                "13:15: listen[0].address: the port must be in 1..65535, got \"tcp://127.0.0.1:99999\"",
                "15:3: metrics.enabled: unknown key",
        };

        assert_int_equal(config_load_file(FIXTURES_DIR "/config/errors.yaml", BASE, &c, &d), -EINVAL);
        assert_null(c);
        assert_items(&d, expected, ELEMENTSOF(expected));
        assert_int_equal(d.n_warnings, 0);
        config_diagnostics_clear(&d);
        assert_int_equal(d.n_items, 0);
        assert_null(d.file);
}

/* workers.user, workers.group, workers.umask: names and numbers resolved at load, the
 * primary group and supplementary groups as initgroups() gives them, errors at the
 * value's line:column. */
static void test_workers_user(void **state) {
        (void) state;
        struct memward_config *c;

        /* root's primary group is 0; getgrouplist() always lists the group itself. */
        c = load_ok("workers:\n  user: root\n");
        assert_string_equal(c->workers.user, "root");
        assert_null(c->workers.group);
        assert_true(c->workers.credentials.set_uid && c->workers.credentials.set_gid);
        assert_int_equal(c->workers.credentials.uid, 0);
        assert_int_equal(c->workers.credentials.gid, 0);
        assert_true(c->workers.credentials.n_groups >= 1);
        assert_int_equal(c->workers.credentials.groups[0], 0);
        config_free(c);

        /* A uid without a passwd entry, with its group given as a number. */
        c = load_ok("workers: {user: \"4242\", group: 4343, umask: 0}\n");
        assert_int_equal(c->workers.credentials.uid, 4242);
        assert_int_equal(c->workers.credentials.gid, 4343);
        assert_int_equal(c->workers.credentials.n_groups, 1);
        assert_int_equal(c->workers.credentials.groups[0], 4343);
        assert_int_equal(c->workers.umask, 0);
        config_free(c);

        /* A group alone: memward's uid, that group as the only one. */
        c = load_ok("workers: {group: nogroup, umask: \"0o077\"}\n");
        assert_false(c->workers.credentials.set_uid);
        assert_true(c->workers.credentials.set_gid);
        assert_int_equal(c->workers.credentials.gid, 65534);
        assert_int_equal(c->workers.umask, 0077);
        config_free(c);

        /* The umask is octal with its leading 0, quoted or not; "" and null inherit. */
        c = load_ok("workers: {umask: 0027}\n");
        assert_int_equal(c->workers.umask, 0027);
        config_free(c);
        c = load_ok("workers: {umask: \"\", user: \"\", group: ~}\n");
        assert_int_equal(c->workers.umask, -1);
        assert_null(c->workers.user);
        assert_false(c->workers.credentials.set_uid || c->workers.credentials.set_gid);
        config_free(c);

        assert_errors("workers:\n  user: nosuchuser\n",
                      "2:9: workers.user: no such user \"nosuchuser\" (a name from the passwd database, or a uid)");
        assert_errors("workers:\n  count: 2\n  group: nosuchgroup\n",
                      "3:10: workers.group: no such group \"nosuchgroup\" (a name from the group database, or a gid)");
        assert_errors("workers: {user: \"4242\"}\n",
                      "1:17: workers.user: uid 4242 has no passwd entry, so no primary group: set workers.group");
        assert_errors("workers: {user: \"4294967295\"}\n",
                      "1:17: workers.user: no such user \"4294967295\" (a name from the passwd database, or a uid)");
        assert_errors("workers: {user: [root]}\n", "1:17: workers.user: expected a string, got a list");
#define UMASK_ERROR "workers.umask: expected \"\" (inherit memward's) or an octal umask of at most 0777 with its " \
                    "leading 0 (e.g. \"0027\"), got "
        assert_errors("workers:\n  umask: 27\n", "2:10: " UMASK_ERROR "\"27\"");
        assert_errors("workers:\n  umask: \"0028\"\n", "2:10: " UMASK_ERROR "\"0028\"");
        assert_errors("workers:\n  umask: \"01777\"\n", "2:10: " UMASK_ERROR "\"01777\"");
        assert_errors("workers:\n  umask: u=rwx\n", "2:10: " UMASK_ERROR "\"u=rwx\"");
#undef UMASK_ERROR
}

/* mode, owner and group of unix socket files, for listen: entries and metrics. */
static void test_socket_access(void **state) {
        (void) state;
        struct memward_config *c;

        c = load_ok("listen:\n  - {address: unix:a.sock, mode: \"0660\", owner: nobody, group: \"4343\"}\n"
                    "  - {address: unix:b.sock}\n");
        assert_int_equal(c->listen[0].access.mode, 0660);
        assert_int_equal(c->listen[0].access.uid, 65534);
        assert_int_equal(c->listen[0].access.gid, 4343);
        assert_int_equal(c->listen[1].access.mode, 0666);
        assert_true(c->listen[1].access.uid == (uid_t) -1 && c->listen[1].access.gid == (gid_t) -1);
        config_free(c);

        c = load_ok("metrics: {listen: unix:m.sock, mode: \"0600\", group: nogroup}\n");
        assert_int_equal(c->metrics.access.mode, 0600);
        assert_true(c->metrics.access.uid == (uid_t) -1);
        assert_int_equal(c->metrics.access.gid, 65534);
        config_free(c);

        assert_errors("listen:\n  - {address: \"tcp://127.0.0.1:8000\", mode: \"0660\", group: nogroup}\n",
                      "2:45: listen[0].mode: only for a unix: socket path, and the address is TCP",
                      "2:60: listen[0].group: only for a unix: socket path, and the address is TCP");
        assert_errors("listen:\n  - {address: \"unix:@abstract\", owner: root}\n",
                      "2:40: listen[0].owner: only for a unix: socket path, and the address is an abstract "
                      "socket (no file)");
        assert_errors("listen:\n  - {address: unix:a.sock, mode: 660, owner: nosuchuser}\n",
                      "2:34: listen[0].mode: expected an octal mode of at most 0777 with its leading 0 (e.g. "
                      "\"0660\"), got \"660\"",
                      "2:46: listen[0].owner: no such user \"nosuchuser\" (a name from the passwd database, or a uid)");
        assert_errors("metrics:\n  listen: \"127.0.0.1:9181\"\n  mode: \"0600\"\n",
                      "3:9: metrics.mode: only for a unix: socket path, and metrics.listen is not unix:");
        assert_errors("metrics:\n  group: nogroup\n",
                      "2:10: metrics.group: only for a unix: socket path, and metrics.listen is off");
}

/* metrics: the endpoint's address in its three forms, its limits, and their errors. */
static void test_metrics_section(void **state) {
        (void) state;
        struct config_diagnostics d = {};
        struct memward_config *c = NULL;

        c = load_ok("metrics: {listen: \"127.0.0.1:9181\", max_connections: 1024, timeout: 1h}\n");
        assert_string_equal(c->metrics.listen, "127.0.0.1:9181");
        assert_int_equal(c->metrics.max_connections, 1024);
        assert_true(c->metrics.timeout == 3600 * USEC_PER_SEC);
        config_free(c);

        c = load_ok("metrics: {listen: \"tcp://localhost:9\"}\n");
        assert_string_equal(c->metrics.listen, "tcp://localhost:9");
        config_free(c);

        /* unix: paths are made absolute against the base directory, like listen: entries. */
        c = load_ok("metrics:\n  listen: unix:run/metrics.sock\n");
        assert_string_equal(c->metrics.listen, "unix:" BASE "/run/metrics.sock");
        config_free(c);
        c = load_ok("metrics: {listen: \"unix:@memward-metrics\"}\n");
        assert_string_equal(c->metrics.listen, "unix:@memward-metrics");
        free(assert_dump_round_trip(c));
        config_free(c);

        assert_errors("metrics: {listen: \"127.0.0.1\"}\n",
                      "1:19: metrics.listen: expected \"\" (off), HOST:PORT, [IPV6]:PORT or unix:PATH, got \"127.0.0.1\"");
        assert_errors("metrics: {listen: \"::1:9181\"}\n",
                      "1:19: metrics.listen: expected \"\" (off), HOST:PORT, [IPV6]:PORT or unix:PATH, got \"::1:9181\"");
        assert_errors("metrics: {listen: \"[::1]:0\"}\n", "1:19: metrics.listen: the port must be in 1..65535, got \"[::1]:0\"");
        assert_errors("metrics: {listen: [a]}\n", "1:19: metrics.listen: expected a string, got a list");
        assert_errors("metrics: {max_connections: 0, timeout: 500ms}\n",
                      "1:28: metrics.max_connections: expected an integer >= 1, got \"0\"",
                      "1:40: metrics.timeout: expected a duration in 1s..1h, got \"500ms\"");
        assert_errors("metrics: {max_connections: 1025}\n",
                      "1:28: metrics.max_connections: expected an integer in 1..1024, got \"1025\"");
        assert_errors("metrics: on\n", "1:10: metrics: expected a mapping, got \"on\"");
        assert_errors("metrics: {lisen: \"\"}\n", "1:11: metrics.lisen: unknown key (did you mean \"listen\"?)");

        /* Only once. */
        assert_int_equal(load("metrics: {}\nmetrics: {}\n", &c, &d), -EINVAL);
        assert_int_equal(d.n_warnings, 0);
        assert_int_equal(d.n_items, 1);
        assert_string_equal(d.items[0].message, "metrics: duplicate key (first at line 1)");
        config_diagnostics_clear(&d);
}

static void test_file_errors(void **state) {
        (void) state;
        struct config_diagnostics d = {};
        struct memward_config *c = NULL;
        char path[] = "/tmp/memward-test-config-XXXXXX";
        char *big;
        int fd;

        assert_int_equal(config_load_file(FIXTURES_DIR "/config/does-not-exist.yaml", BASE, &c, &d), -ENOENT);
        assert_null(c);
        assert_int_equal(d.n_items, 1);
        assert_int_equal(d.items[0].line, 0);
        assert_string_equal(d.items[0].message, "cannot read: No such file or directory");

        assert_int_equal(config_load_file(FIXTURES_DIR "/config", BASE, &c, &d), -EISDIR);
        assert_int_equal(d.n_items, 1);

        /* Exactly the limit loads (comments only); one byte more does not. */
        big = malloc(CONFIG_FILE_SIZE_MAX + 2);
        assert_non_null(big);
        memset(big, '#', CONFIG_FILE_SIZE_MAX + 1);
        big[CONFIG_FILE_SIZE_MAX - 1] = '\n';
        big[CONFIG_FILE_SIZE_MAX + 1] = '\0';

        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, big, CONFIG_FILE_SIZE_MAX), CONFIG_FILE_SIZE_MAX);
        assert_int_equal(config_load_file(path, BASE, &c, &d), 0);
        assert_string_equal(c->path, path);
        config_free(c);
        c = NULL;
        assert_int_equal(write(fd, "#", 1), 1);
        assert_int_equal(config_load_file(path, BASE, &c, &d), -EFBIG);
        assert_null(c);
        assert_int_equal(d.n_items, 1);
        assert_string_equal(d.items[0].message, "file is larger than 1MiB");
        close(fd);
        unlink(path);

        assert_int_equal(config_load_string(big, CONFIG_FILE_SIZE_MAX + 1, "big", BASE, &c, &d), -EFBIG);
        assert_int_equal(d.n_items, 1);
        assert_string_equal(d.items[0].message, "file is larger than 1MiB");
        free(big);

        /* A NULL diag is allowed. */
        assert_int_equal(config_load_string("workers: x\n", 11, "x", BASE, &c, NULL), -EINVAL);
        assert_null(c);
        config_diagnostics_clear(&d);
}

static void test_relative_config_path(void **state) {
        (void) state;
        struct memward_config *c = NULL;
        char *cwd = get_current_dir_name();

        assert_non_null(cwd);
        assert_int_equal(chdir(FIXTURES_DIR), 0);
        assert_int_equal(config_load_file("./config/full.yaml", NULL, &c, NULL), 0);
        assert_int_equal(chdir(cwd), 0);

        /* Paths resolve against the current directory when base_dir is NULL. */
        char *expected;
        assert_true(asprintf(&expected, "%s/config/full.yaml", FIXTURES_DIR) > 0);
        assert_string_equal(c->path, expected);
        free(expected);
        assert_true(asprintf(&expected, "%s/srv/app", FIXTURES_DIR) > 0);
        assert_string_equal(c->workers.directory, expected);
        free(expected);
        config_free(c);
        free(cwd);
}

/* ---- printing ---------------------------------------------------------------------- */

static void test_diagnostics_print(void **state) {
        (void) state;
        struct config_diagnostics d = {};
        struct memward_config *c = NULL;
        char *out;

        /* The caret line keeps the tabs of the quoted line and counts characters, not bytes. */
        assert_int_equal(load("log: {level: \"é\",\tformat: x}\r\nworkers: {count: 0}\n", &c, &d), -EINVAL);
        out = print_to_string(&d);
        assert_string_equal(out,
                            NAME ":1:14: log.level: expected one of debug, info, notice, warning, error, got \"é\"\n"
                            "    log: {level: \"é\",\tformat: x}\n"
                            "                 ^\n"
                            NAME ":1:27: log.format: expected logfmt or json, got \"x\"\n"
                            "    log: {level: \"é\",\tformat: x}\n"
                            "                     \t        ^\n"
                            NAME ":2:18: workers.count: expected an integer >= 1, got \"0\"\n"
                            "    workers: {count: 0}\n"
                            "                     ^\n");
        free(out);

        /* Validation items have no position. */
        assert_int_equal(config_new_default(&c), 0);
        assert_int_equal(config_validate(c, &d), -EINVAL);
        out = print_to_string(&d);
        assert_string_equal(out,
                            NAME ":1:14: log.level: expected one of debug, info, notice, warning, error, got \"é\"\n"
                            "    log: {level: \"é\",\tformat: x}\n"
                            "                 ^\n"
                            NAME ":1:27: log.format: expected logfmt or json, got \"x\"\n"
                            "    log: {level: \"é\",\tformat: x}\n"
                            "                     \t        ^\n"
                            NAME ":2:18: workers.count: expected an integer >= 1, got \"0\"\n"
                            "    workers: {count: 0}\n"
                            "                     ^\n"
                            NAME ": workers.command: required (in the config file or after --)\n");
        free(out);
        config_free(c);
        config_diagnostics_clear(&d);

        /* A file with a syntax error, a tab at the start of the line. */
        assert_int_equal(config_load_file(FIXTURES_DIR "/config/tab.yaml", BASE, &c, &d), -EINVAL);
        out = print_to_string(&d);
        assert_string_equal(out, FIXTURES_DIR "/config/tab.yaml:2:1: syntax error: found character that cannot start "
                                              "any token (while scanning for the next token), YAML indents with spaces, "
                                              "not tabs\n"
                                              "    \tcount: 4\n"
                                              "    ^\n");
        free(out);

        /* An error past the last line prints no quote. */
        assert_int_equal(load("workers: [1,\n", &c, &d), -EINVAL);
        out = print_to_string(&d);
        assert_string_equal(out, NAME ":2:1: syntax error: did not find expected node content (while parsing a flow "
                                      "node)\n");
        free(out);
        config_diagnostics_clear(&d);
}

/* ---- validation and overrides ------------------------------------------------------ */

static void test_validate(void **state) {
        (void) state;
        struct config_diagnostics d = {};
        struct memward_config *c = load_ok("workers: {count: 3}\n");
        char *const argv[] = { (char *) "/bin/true", (char *) "--flag", NULL };
        char *const empty_argv[] = { NULL };

        /* config_load does not require a command; validation does. */
        assert_int_equal(config_validate(c, &d), -EINVAL);
        {
                static const char *const e[] = { "workers.command: required (in the config file or after --)" };
                assert_items(&d, e, 1);
        }
        config_diagnostics_clear(&d);

        assert_int_equal(config_set_command(c, empty_argv), -EINVAL);
        assert_int_equal(config_set_command(c, NULL), -EINVAL);
        assert_int_equal(config_set_command(c, argv), 0);
        assert_string_equal(c->workers.command[0], "/bin/true");
        assert_string_equal(c->workers.command[1], "--flag");
        assert_null(c->workers.command[2]);
        assert_int_equal(config_validate(c, &d), 0);
        assert_int_equal(d.n_items, 0);

        /* Overrides from the command line can break rules the file kept. */
        c->workers.count = 0;
        c->workers.backoff_initial = 10 * USEC_PER_SEC;
        c->workers.backoff_max = USEC_PER_SEC;
        assert_int_equal(config_validate(c, &d), -EINVAL);
        {
                static const char *const e[] = {
                        "workers.count: expected an integer in 1..1024, got 0",
                        "workers.restart_backoff: initial (10s) must not be greater than max (1s)",
                };
                assert_items(&d, e, ELEMENTSOF(e));
        }
        config_diagnostics_clear(&d);

        /* Listen entries set directly, as an override would, are checked too. */
        assert_int_equal(config_add_listen(c, "tcp://127.0.0.1:80", BASE), 0);
        assert_int_equal(config_add_listen(c, "unix:/x", BASE), 0);
        free(c->listen[1].address);
        c->listen[1].address = strdup("tcp://localhost:80");
        assert_int_equal(config_add_listen(c, "unix:/y", BASE), 0);
        free(c->listen[2].address);
        c->listen[2].address = strdup("tcp://nowhere:80");
        c->workers.count = 2;
        c->workers.backoff_initial = USEC_PER_SEC;
        assert_int_equal(config_validate(c, &d), -EINVAL);
        {
                static const char *const e[] = {
                        "listen[1].address: same address as listen[0]",
                        "listen[2].address: invalid address \"tcp://nowhere:80\"",
                };
                assert_items(&d, e, ELEMENTSOF(e));
        }
        config_diagnostics_clear(&d);
        config_clear_listen(c);

        c->workers.count = CONFIG_WORKERS_MAX + 1;
        c->workers.backoff_initial = USEC_PER_SEC;
        char *const bad_argv[] = { (char *) "", NULL };
        assert_int_equal(config_set_command(c, bad_argv), 0);
        assert_int_equal(config_validate(c, &d), -EINVAL);
        {
                static const char *const e[] = {
                        "workers.command: the program name must not be empty",
                        "workers.count: expected an integer in 1..1024, got 1025",
                };
                assert_items(&d, e, ELEMENTSOF(e));
        }
        config_diagnostics_clear(&d);
        config_free(c);
}

static void test_listen_overrides(void **state) {
        (void) state;
        struct memward_config *c = load_ok("listen:\n  - {address: \"tcp://127.0.0.1:8000\", name: http}\n");
        char addr[64];

        config_clear_listen(c);
        assert_int_equal(c->n_listen, 0);
        assert_null(c->listen);

        assert_int_equal(config_add_listen(c, "tcp://[::]:8080", BASE), 0);
        assert_int_equal(config_add_listen(c, "unix:run/x.sock", BASE), 0);
        assert_int_equal(config_add_listen(c, "unix:" BASE "/run/x.sock", BASE), -EEXIST);
        assert_int_equal(config_add_listen(c, "tcp://[::]:0", BASE), -ERANGE);
        assert_int_equal(config_add_listen(c, "tcp://nowhere:1", BASE), -EINVAL);
        assert_int_equal(config_add_listen(c, "unix:" LONG_RELATIVE, BASE), -ENAMETOOLONG);
        assert_int_equal(c->n_listen, 2);
        assert_string_equal(c->listen[0].address, "tcp://[::]:8080");
        assert_null(c->listen[0].name);
        assert_int_equal(c->listen[0].backlog, 1024);
        assert_string_equal(c->listen[1].address, "unix:" BASE "/run/x.sock");

        for (unsigned i = 2; i < CONFIG_LISTEN_MAX; i++) {
                snprintf(addr, sizeof addr, "tcp://127.0.0.1:%u", 9000 + i);
                assert_int_equal(config_add_listen(c, addr, BASE), 0);
        }
        assert_int_equal(config_add_listen(c, "tcp://127.0.0.1:1", BASE), -E2BIG);
        assert_int_equal(c->n_listen, CONFIG_LISTEN_MAX);
        config_free(c);
}

/* ---- dump -------------------------------------------------------------------------- */

static void test_dump_round_trip(void **state) {
        (void) state;
        struct memward_config *c;
        struct config_diagnostics d = {};
        char *text;

        /* Defaults, without a command. */
        assert_int_equal(config_new_default(&c), 0);
        free(assert_dump_round_trip(c));
        config_free(c);

        /* Every key set. */
        assert_int_equal(config_load_file(FIXTURES_DIR "/config/full.yaml", BASE, &c, &d), 0);
        text = assert_dump_round_trip(c);
        /* Exact unit forms. */
        assert_non_null(strstr(text, "\n  ready: 2s\n"));
        assert_non_null(strstr(text, "\n  stop_signal: SIGINT\n"));
        assert_non_null(strstr(text, "\n  restart_backoff: {initial: 250ms, max: 1m}\n"));
        assert_non_null(strstr(text, "\n  worker_high: 512MiB\n"));
        assert_non_null(strstr(text, "\n  group_high: \"80%\"\n"));
        assert_non_null(strstr(text, "\n  retained_max: 300MiB\n"));
        assert_non_null(strstr(text, "\n  growth_max: 2.5\n"));
        assert_non_null(strstr(text, "\n  trigger: \"full 150ms 2s\"\n"));
        assert_non_null(strstr(text, "\n  command: [\"/usr/bin/python3\", \"-u\", \"app.py\", \"--name\", "
                                     "\"a \\\"quoted\\\" word\"]\n"));
        free(text);
        config_free(c);
        config_diagnostics_clear(&d);

        /* Strings that need escaping, set as the command line would. */
        char *const argv[] = {
                (char *) "/bin/sh", (char *) "-c", (char *) "echo \"$1\"\\n\t'x'\r\n", (char *) "",
                (char *) "\x01\x1f\x7f", (char *) "ü € 😀 \xc2\x85 \xc2\x80", (char *) "# not a comment",
                (char *) "key: value", (char *) "- item", (char *) "null", (char *) "~", NULL,
        };
        c = load_ok("workers: {env: {A: \"#x: y\", B: \"\\t\\\\\", C: \"\\u00e9\\U0001F600\"}, ready: 1500ms}\n"
                    "memory: {worker_high: \"33.3%\", worker_max: 99.99%, growth_max: 1.000001}\n");
        assert_int_equal(config_set_command(c, argv), 0);
        assert_string_equal(c->workers.env[2], "C=é😀");
        text = assert_dump_round_trip(c);
        assert_non_null(strstr(text, "\"\\x01\\x1F\\x7F\""));
        assert_non_null(strstr(text, "\"ü € 😀 \\x85 \\x80\""));
        free(text);

        /* A dump of a config that was changed after loading writes what it holds. */
        c->workers.stop_signal = SIGRTMIN + 3;
        c->recycle.max_requests = 4294967295U;
        c->memory.worker_max.percent = 100.0 / 3.0;
        c->memory.worker_high.percent = 0.000001;
        free(assert_dump_round_trip(c));
        config_free(c);
}

static void test_dump_write_error(void **state) {
        (void) state;
        struct memward_config *c;
        FILE *f = fopen("/dev/full", "we");

        if (!f)
                skip_because("cannot open /dev/full");
        assert_int_equal(config_new_default(&c), 0);
        assert_int_equal(config_dump(c, f), -EIO);
        fclose(f);
        config_free(c);
}

/* ---- names ------------------------------------------------------------------------- */

static void test_names(void **state) {
        (void) state;
        assert_string_equal(memory_metric_to_string(MEMORY_METRIC_ANON), "anon");
        assert_string_equal(memory_metric_to_string(MEMORY_METRIC_CURRENT), "current");
        assert_string_equal(memory_metric_to_string(MEMORY_METRIC_RSS), "rss");
        assert_string_equal(memory_metric_to_string(MEMORY_METRIC_PSS), "pss");
        assert_string_equal(ready_mode_to_string(READY_NOTIFY), "notify");
        assert_string_equal(ready_mode_to_string(READY_IMMEDIATE), "immediate");
        assert_string_equal(ready_mode_to_string(READY_DELAY), "delay");
        assert_string_equal(workers_mode_to_string(WORKERS_EXEC), "exec");
        assert_string_equal(workers_mode_to_string(WORKERS_TEMPLATE), "template");
        assert_null(workers_mode_to_string((enum workers_mode) 2));
        assert_null(memory_metric_to_string((enum memory_metric) -1));
}

/* Each word of log.level and log.format loads as the value it names. */
static void test_log_words(void **state) {
        (void) state;
        static const struct {
                const char *yaml;
                int level;
                enum log_format format;
        } cases[] = {
                { "log: {level: debug, format: json}\n", LOG_DEBUG, LOG_FORMAT_JSON },
                { "log: {level: info, format: logfmt}\n", LOG_INFO, LOG_FORMAT_LOGFMT },
                { "log: {level: notice}\n", LOG_NOTICE, LOG_FORMAT_LOGFMT },
                { "log: {level: warning}\n", LOG_WARNING, LOG_FORMAT_LOGFMT },
                { "log: {level: error}\n", LOG_ERR, LOG_FORMAT_LOGFMT },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct memward_config *c = load_ok(cases[i].yaml);

                assert_int_equal(c->log.level, cases[i].level);
                assert_int_equal(c->log.format, cases[i].format);
                free(assert_dump_round_trip(c));
                config_free(c);
        }
}

static void test_size_or_percent_resolve(void **state) {
        (void) state;
        const uint64_t GiB = 1024ULL * 1024 * 1024;
        struct size_or_percent unset = {}, bytes = { .bytes = 512 * 1024 * 1024 }, half = { .percent = 50 },
                               fraction = { .percent = 12.5 };
        uint64_t v;

        v = 1;
        assert_int_equal(size_or_percent_resolve(&unset, 4 * GiB, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(size_or_percent_resolve(&bytes, 4 * GiB, &v), 0);
        assert_int_equal(v, 512 * 1024 * 1024);
        assert_int_equal(size_or_percent_resolve(&half, 4 * GiB, &v), 0);
        assert_int_equal(v, 2 * GiB);
        assert_int_equal(size_or_percent_resolve(&fraction, 4 * GiB, &v), 0);
        assert_int_equal(v, GiB / 2);

        /* Limit unknown: sizes and "unset" need no limit... */
        assert_int_equal(size_or_percent_resolve(&unset, 0, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(size_or_percent_resolve(&bytes, 0, &v), 0);
        assert_int_equal(v, 512 * 1024 * 1024);
        /* ...a percentage does, and is refused rather than read as 0 ("off"). */
        v = 7;
        assert_int_equal(size_or_percent_resolve(&half, 0, &v), -ENODATA);
        assert_int_equal(v, 7);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_full_file),
                cmocka_unit_test(test_sample_config),
                cmocka_unit_test(test_scalar_forms),
                cmocka_unit_test(test_directory_resolution),
                cmocka_unit_test(test_errors_integers),
                cmocka_unit_test(test_errors_durations),
                cmocka_unit_test(test_errors_sizes),
                cmocka_unit_test(test_errors_enums),
                cmocka_unit_test(test_errors_trigger),
                cmocka_unit_test(test_errors_unknown_keys),
                cmocka_unit_test(test_errors_duplicate_keys),
                cmocka_unit_test(test_errors_types),
                cmocka_unit_test(test_errors_env),
                cmocka_unit_test(test_errors_listen),
                cmocka_unit_test(test_errors_cross_keys),
                cmocka_unit_test(test_aliases_rejected),
                cmocka_unit_test(test_nesting_bounded),
                cmocka_unit_test(test_syntax_errors),
                cmocka_unit_test(test_top_level_not_a_mapping),
                cmocka_unit_test(test_multiple_errors),
                cmocka_unit_test(test_metrics_section),
                cmocka_unit_test(test_workers_user),
                cmocka_unit_test(test_socket_access),
                cmocka_unit_test(test_file_errors),
                cmocka_unit_test(test_relative_config_path),
                cmocka_unit_test(test_diagnostics_print),
                cmocka_unit_test(test_validate),
                cmocka_unit_test(test_listen_overrides),
                cmocka_unit_test(test_dump_round_trip),
                cmocka_unit_test(test_dump_write_error),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_log_words),
                cmocka_unit_test(test_size_or_percent_resolve),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
