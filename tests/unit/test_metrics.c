/* The endpoint: /healthz and the routing of requests, on a hand-built supervisor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "endpoint_fixture.h"
#include "memward/base/macro.h"
#include "memward/endpoint/metrics.h"

static void test_healthy(void **state) {
        struct fixture *f = *state;
        char reason[96];

        assert_false(metrics_healthy(&f->s, reason, sizeof reason));
        assert_string_equal(reason, "1/2 workers ready");
        /* A slot memward is replacing on purpose (its worker stopped first, the
         * replacement starting) is up; a failed replacement ends that. */
        f->s.slots[1].recycle_pending = true;
        assert_true(metrics_healthy(&f->s, reason, sizeof reason));
        assert_string_equal(reason, "1/2 workers ready, 1 being replaced");
        f->w[1].failed = true;
        assert_false(metrics_healthy(&f->s, reason, sizeof reason));
        f->w[1].failed = false;
        f->s.slots[1].recycle_pending = false;
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_healthy, setup, teardown),
                cmocka_unit_test_setup_teardown(test_handler, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
