/* `memward status`: the JSON parser, URLs, and the table it prints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memward/base/macro.h"
#include "memward/base/utf8.h"
#include "memward/cli/status.h"

static struct json_value *parse_ok(const char *text) {
        struct json_value *v = NULL;
        int r = json_parse(text, strlen(text), &v);
        if (r < 0)
                fail_msg("json_parse(%s) = %d", text, r);
        return v;
}

static void test_json_values(void **state) {
        (void) state;
        struct json_value *v;

        v = parse_ok(" {\"a\": [1, -2.5e3, true, false, null, \"x\"], \"b\": {}, \"c\": [], \"\": \"empty key\"} ");
        assert_int_equal(v->type, JSON_OBJECT);
        assert_int_equal(v->n_items, 4);
        const struct json_value *a = json_get(v, "a");
        assert_int_equal(a->type, JSON_ARRAY);
        assert_int_equal(a->n_items, 6);
        assert_true(a->items[0].number == 1);
        assert_true(a->items[1].number == -2500);
        assert_true(a->items[2].type == JSON_BOOL && a->items[2].boolean);
        assert_true(a->items[3].type == JSON_BOOL && !a->items[3].boolean);
        assert_int_equal(a->items[4].type, JSON_NULL);
        assert_string_equal(a->items[5].string, "x");
        assert_int_equal(json_get(v, "b")->n_items, 0);
        assert_int_equal(json_get(v, "c")->type, JSON_ARRAY);
        assert_string_equal(json_get_string(v, "", NULL), "empty key");
        assert_null(json_get(v, "missing"));
        assert_null(json_get(a, "a"));  /* not an object */
        assert_string_equal(json_get_string(v, "a", "def"), "def");  /* not a string */
        assert_true(json_get_number(v, "missing", 7) == 7);
        json_free(v);

        /* Escapes, surrogate pairs, and what a C string cannot hold. */
        v = parse_ok("\"q\\\"b\\\\s\\/\\n\\t\\r\\b\\f\\u00e9\\u20ac\\ud83d\\ude00\\u0000\\udc00x\"");
        assert_string_equal(v->string, "q\"b\\s/\n\t\r\b\fé€😀\xef\xbf\xbd\xef\xbf\xbdx");
        json_free(v);

        v = parse_ok("18446744073709551615");
        assert_true(v->number > 1.8e19);
        json_free(v);
        json_free(NULL);
}

static void test_json_errors(void **state) {
        (void) state;
        static const char *const bad[] = {
                "", " ", "{", "}", "[1,]", "[1 2]", "{\"a\" 1}", "{\"a\":}", "{a:1}", "{\"a\":1,}", "tru", "nul",
                "\"unterminated", "\"bad \\q escape\"", "\"\\u12\"", "\"raw \x01 control\"", "01x", "-", "1 2",
                "{\"a\":1} x", "[\"a\"]]", "+1", ".5",
        };
        struct json_value *v = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = json_parse(bad[i], strlen(bad[i]), &v);
                if (r != -EBADMSG)
                        fail_msg("json_parse(\"%s\") = %d, want -EBADMSG", bad[i], r);
                assert_null(v);
        }

        /* Nesting is bounded. */
        char deep[64];
        memset(deep, '[', JSON_DEPTH_MAX + 1);
        deep[JSON_DEPTH_MAX + 1] = '\0';
        assert_int_equal(json_parse(deep, strlen(deep), &v), -ELOOP);
        memset(deep, '[', JSON_DEPTH_MAX);
        memset(deep + JSON_DEPTH_MAX, ']', JSON_DEPTH_MAX);
        deep[2 * JSON_DEPTH_MAX] = '\0';
        assert_int_equal(json_parse(deep, strlen(deep), &v), 0);
        json_free(v);

        /* Length, not NUL, ends the text. */
        assert_int_equal(json_parse("[1]garbage", 3, &v), 0);
        json_free(v);
}

static void test_url(void **state) {
        (void) state;
        struct status_url u;

        assert_int_equal(status_url_parse("http://127.0.0.1:9181", &u), 0);
        assert_string_equal(u.host, "127.0.0.1");
        assert_string_equal(u.port, "9181");
        assert_string_equal(u.path, "/status");
        assert_string_equal(u.unix_path, "");

        assert_int_equal(status_url_parse("127.0.0.1:9181/", &u), 0);
        assert_string_equal(u.host, "127.0.0.1");
        assert_string_equal(u.path, "/status");

        assert_int_equal(status_url_parse("http://[::1]:9/memward/", &u), 0);
        assert_string_equal(u.host, "::1");
        assert_string_equal(u.port, "9");
        assert_string_equal(u.path, "/memward/status");

        assert_int_equal(status_url_parse("http://localhost/x/status", &u), 0);
        assert_string_equal(u.host, "localhost");
        assert_string_equal(u.port, "80");
        assert_string_equal(u.path, "/x/status");

        assert_int_equal(status_url_parse("unix:/run/memward/metrics.sock", &u), 0);
        assert_string_equal(u.unix_path, "/run/memward/metrics.sock");
        assert_string_equal(u.path, "/status");
        assert_int_equal(status_url_parse("unix:@abstract", &u), 0);
        assert_string_equal(u.unix_path, "@abstract");

        static const char *const bad[] = {
                "https://127.0.0.1:9181", "http://", "http://:80", "http://h:", "http://h:0", "http://h:65536",
                "http://h:8x", "http://[::1", "http://[::1]x", "unix:", "ftp://x",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (status_url_parse(bad[i], &u) != -EINVAL)
                        fail_msg("accepted \"%s\"", bad[i]);
}

static void test_formatting(void **state) {
        (void) state;
        char b[32];

        assert_string_equal(status_format_age(b, sizeof b, 0), "0s");
        assert_string_equal(status_format_age(b, sizeof b, 59.9), "59s");
        assert_string_equal(status_format_age(b, sizeof b, 723), "12m03s");
        assert_string_equal(status_format_age(b, sizeof b, 3 * 3600 + 240), "3h04m");
        assert_string_equal(status_format_age(b, sizeof b, 2 * 86400 + 5 * 3600), "2d05h");
        assert_string_equal(status_format_age(b, sizeof b, -5), "0s");

        assert_string_equal(status_format_bytes(b, sizeof b, -1), "-");
        assert_string_equal(status_format_bytes(b, sizeof b, 812), "812B");
        assert_string_equal(status_format_bytes(b, sizeof b, 640 * 1024), "640KiB");
        assert_string_equal(status_format_bytes(b, sizeof b, 45.2 * 1024 * 1024), "45.2MiB");
        assert_string_equal(status_format_bytes(b, sizeof b, 1.5 * 1024 * 1024 * 1024), "1.50GiB");
}

static char *table_of(const char *json) {
        struct json_value *doc = parse_ok(json);
        char *out = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);

        assert_non_null(f);
        assert_int_equal(status_print_table(doc, f), 0);
        assert_int_equal(fclose(f), 0);
        json_free(doc);
        return out;
}

static void test_table(void **state) {
        (void) state;
        char *out = table_of(
                "{\"version\":\"0.1.0\",\"pid\":7,\"health\":\"2/2 workers ready\",\"accounting\":\"cgroup\","
                "\"metric\":\"anon\",\"workers\":["
                "{\"slot\":0,\"pid\":4242,\"generation\":3,\"state\":\"ready\",\"role\":\"active\",\"age_seconds\":723,"
                "\"requests\":1043,\"recycle\":null,\"last_recycle\":\"max_requests\",\"status\":\"serving \\u001b[31mred\","
                "\"memory\":{\"sampled\":true,\"anon\":47395635,\"retained\":41943040}},"
                "{\"slot\":1,\"pid\":77,\"generation\":12,\"state\":\"starting\",\"role\":\"replacement\",\"age_seconds\":1,"
                "\"requests\":0,\"recycle\":\"retained\",\"last_recycle\":null,\"status\":\"\","
                "\"memory\":{\"sampled\":false,\"anon\":0,\"retained\":null}}],"
                "\"recycles\":[{\"time\":\"2023-11-14T22:13:20.000Z\",\"slot\":1,\"pid\":76,\"reason\":\"retained\","
                "\"requests\":5,\"age_seconds\":30,\"anon\":1048576,\"retained\":null}]}");

        assert_string_equal(
                out,
                "memward 0.1.0 (pid 7): 2/2 workers ready, accounting cgroup, metric anon\n"
                "SLOT  PID   GEN  STATE                   AGE     REQUESTS     ANON  RETAINED  LAST RECYCLE   STATUS\n"
                "0     4242  3    ready                   12m03s      1043  45.2MiB   40.0MiB  max_requests   serving ?[31mred\n"
                "1     77    12   starting (replacement)  1s             0        -         -  now: retained\n"
                "\n"
                "last 1 of 1 recent recycles:\n"
                "  2023-11-14T22:13:20.000Z  slot 1  pid 76  retained      requests 5  age 30s  anon 1.00MiB  retained -\n");
        free(out);

        /* No workers: just the header. */
        out = table_of("{\"workers\":[]}");
        assert_non_null(strstr(out, "\nSLOT  PID  GEN  STATE  AGE  REQUESTS  ANON  RETAINED  LAST RECYCLE  STATUS\n"));
        free(out);

        /* Not our document. */
        struct json_value *doc = parse_ok("[1]");
        assert_int_equal(status_print_table(doc, stdout), -EBADMSG);
        json_free(doc);
        doc = parse_ok("{\"workers\":[1]}");
        FILE *f = fopen("/dev/null", "we");
        assert_non_null(f);
        assert_int_equal(status_print_table(doc, f), -EBADMSG);
        fclose(f);
        json_free(doc);
}

/* No byte of out may drive a terminal: it is valid UTF-8 without C0 controls (but the
 * newlines), DEL or C1 controls. */
static void assert_terminal_safe(const char *out) {
        for (const unsigned char *p = (const unsigned char *) out; *p;) {
                uint32_t c = 0;
                size_t n = utf8_decode(p, &c);
                if (n == 0 || (c < 0x20 && c != '\n') || (c >= 0x7f && c <= 0x9f))
                        fail_msg("unsafe byte 0x%02x at %zu of:\n%s", *p, (size_t) (p - (const unsigned char *) out),
                                 out);
                p += n;
        }
}

static void test_table_hostile_text(void **state) {
        (void) state;
        /* Every string a worker or the server at the URL controls: C1 CSI (U+009B) and OSC
         * (U+009D), ESC, BEL, DEL, bytes that are not UTF-8, and a long STATUS= whose cut
         * falls inside a character. */
        char *out = table_of(
                "{\"version\":\"1\\u009b2J\",\"pid\":7,\"health\":\"ok\\u001b]0;x\\u0007\",\"accounting\":\"\\u009d0;t\","
                "\"metric\":\"a\\u007f\",\"workers\":["
                "{\"slot\":0,\"pid\":1,\"generation\":1,\"state\":\"ready\",\"role\":\"r\\u009b31m\",\"age_seconds\":1,"
                "\"requests\":0,\"recycle\":\"\\u009b2K\xff\",\"status\":\"\\u009b31mred \xff\xc3 caf\\u00e9\","
                "\"memory\":{\"sampled\":false}},"
                "{\"slot\":1,\"pid\":2,\"generation\":1,\"state\":\"ready\",\"role\":\"active\",\"age_seconds\":1,"
                "\"requests\":0,\"recycle\":null,\"last_recycle\":\"\\u0085x\","
                "\"status\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\u00e9\\u00e9\\u00e9\","
                "\"memory\":{\"sampled\":false}}],"
                "\"recycles\":[{\"time\":\"\\u009b6n\",\"slot\":1,\"pid\":2,\"reason\":\"\\u009b5m\xfe\"}]}");

        assert_terminal_safe(out);
        assert_non_null(strstr(out, "memward 1?2J (pid 7): ok?]0;x?, accounting ?0;t, metric a?\n"));
        assert_non_null(strstr(out, "ready (r?31m) "));
        assert_non_null(strstr(out, "now: ?2K?"));
        assert_non_null(strstr(out, "?31mred ?? caf\xc3\xa9\n"));
        assert_non_null(strstr(out, " ?x "));
        assert_non_null(strstr(out, " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\n"));
        assert_non_null(strstr(out, "  ?6n  slot 1  pid 2  ?5m?          requests 0"));
        free(out);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_json_values),
                cmocka_unit_test(test_json_errors),
                cmocka_unit_test(test_url),
                cmocka_unit_test(test_formatting),
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_table_hostile_text),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
