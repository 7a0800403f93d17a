/* The JSON document of /status, on a hand-built supervisor, read back with the
 * client's own parser (json_parse() of `memward status`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "endpoint_fixture.h"
#include "memward/cli/status.h"
#include "memward/endpoint/metrics.h"
#include "memward/endpoint/status_json.h"

/* /status of the fixture's supervisor, parsed; the text in *ret_text, for free(). */
static struct json_value *render_status(const struct fixture *f, char **ret_text) {
        struct text_buffer b;
        struct json_value *doc;
        char *text;
        size_t n;

        text_buffer_init(&b, METRICS_RENDER_MAX);
        status_json_render(&f->s, NOW, REALTIME, &b);
        assert_int_equal(text_buffer_finish(&b, &text, &n), 0);
        assert_true(n > 0 && text[n - 1] == '\n');
        assert_int_equal(json_parse(text, n, &doc), 0);
        *ret_text = text;
        return doc;
}

static void test_status_document(void **state) {
        struct fixture *f = *state;
        char *text;
        struct json_value *doc = render_status(f, &text);

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
        const struct json_value *reload = json_get(doc, "reload");
        assert_false(json_get(reload, "last_successful")->boolean);
        assert_string_equal(json_get_string(reload, "last_success", NULL), "2023-11-14T22:13:20.000Z");
        assert_string_equal(json_get_string(reload, "last_attempt", NULL), "2023-11-14T22:15:00.000Z");
        assert_string_equal(json_get_string(reload, "last_error", NULL), "config");
        assert_true(json_get_number(reload, "failures", 0) == 2);
        json_free(doc);
        free(text);
}

/* A worker's baseline is the one of its figure, next to its retained: for a decided
 * recycle, the one it was decided with (none here), as its event=recycle line says --
 * not one the worker's samples found after. */
static void test_status_baseline_is_the_figures(void **state) {
        struct fixture *f = *state;
        char *text;

        decided_before_the_baseline(f);
        struct json_value *doc = render_status(f, &text);

        const struct json_value *a = &json_get(doc, "workers")->items[1];
        assert_true(json_get_number(a, "pid", 0) == 101);
        assert_string_equal(json_get_string(a, "recycle", NULL), "retained");
        const struct json_value *m = json_get(a, "memory");
        assert_true(json_get_number(m, "retained", 0) == 6 * MiB);
        assert_int_equal(json_get(m, "baseline")->type, JSON_NULL);
        json_free(doc);
        free(text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_status_document, setup, teardown),
                cmocka_unit_test_setup_teardown(test_status_baseline_is_the_figures, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
