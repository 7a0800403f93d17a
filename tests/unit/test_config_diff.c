/* config_changed_keys(): the keys a reload changed, from two effective configurations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "memward/config/config.h"
#include "memward/config/config_diff.h"

#define COMMAND "workers: {command: [\"/bin/app\"]}\n"

static struct memward_config *load(const char *yaml) {
        struct config_diagnostics d = {};
        struct memward_config *c = NULL;

        int r = config_load_string(yaml, strlen(yaml), "t.yaml", "/srv", &c, &d);
        if (r != 0)
                config_diagnostics_print(&d, stderr);
        assert_int_equal(r, 0);
        config_diagnostics_clear(&d);
        return c;
}

static int changed(const char *a, const char *b, char *buf, size_t size) {
        struct memward_config *x = load(a), *y = load(b);
        int r = config_changed_keys(x, y, buf, size);
        config_free(x);
        config_free(y);
        return r;
}

static void test_nothing_changed(void **state) {
        char buf[256];
        (void) state;

        assert_int_equal(changed(COMMAND, COMMAND, buf, sizeof buf), 0);
        assert_string_equal(buf, "");
        /* A default written out is no change: the effective values are compared. */
        assert_int_equal(changed(COMMAND, COMMAND "recycle: {max_concurrent: 1}\n", buf, sizeof buf), 0);
        assert_string_equal(buf, "");
}

static void test_scalars_sequences_and_mappings(void **state) {
        char buf[256];
        (void) state;

        assert_int_equal(changed("workers: {command: [\"/bin/app\"], count: 2}\nmemory: {retained_max: 1G}\n",
                                 "workers: {command: [\"/bin/app\"], count: 3}\nmemory: {retained_max: 2G}\n", buf,
                                 sizeof buf),
                         2);
        assert_string_equal(buf, "workers.count,memory.retained_max");

        /* A sequence, a nested mapping and a flow sequence are one key each. */
        assert_int_equal(changed("workers: {command: [\"/bin/app\"], env: {A: \"1\"}}\n"
                                 "listen: [{address: \"tcp://127.0.0.1:80\"}]\n",
                                 "workers: {command: [\"/bin/app\", \"-v\"], env: {A: \"2\"}}\n"
                                 "listen: [{address: \"tcp://127.0.0.1:81\"}]\n",
                                 buf, sizeof buf),
                         3);
        assert_string_equal(buf, "workers.command,workers.env,listen");

        /* Keys of one section with the same name in another stay apart. */
        assert_int_equal(changed(COMMAND "metrics: {listen: \"127.0.0.1:9181\"}\n",
                                 COMMAND "metrics: {listen: \"127.0.0.1:9182\"}\n", buf, sizeof buf),
                         1);
        assert_string_equal(buf, "metrics.listen");
}

static void test_buffer_too_small(void **state) {
        char buf[32];
        (void) state;

        assert_int_equal(changed("workers: {command: [\"/bin/app\"], count: 2, graceful_timeout: 1s}\n"
                                 "memory: {retained_max: 1G}\n",
                                 "workers: {command: [\"/bin/app\"], count: 3, graceful_timeout: 2s}\n"
                                 "memory: {retained_max: 2G}\n",
                                 buf, sizeof buf),
                         -ENOBUFS);
        /* Whole keys only, and a mark that more changed. */
        assert_string_equal(buf, "workers.count,...");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_nothing_changed),
                cmocka_unit_test(test_scalars_sequences_and_mappings),
                cmocka_unit_test(test_buffer_too_small),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
