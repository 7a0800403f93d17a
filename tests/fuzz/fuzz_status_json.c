/* `memward status`: the response body of /status through the client's JSON parser
 * (json_parse) and the table printer (status_print_table). The body comes from
 * whatever answers at the configured URL, which need not be memward. The HTTP framing
 * (status line, headers) is parsed inside status_fetch(), static in status.c, and is
 * not reachable from here. */
#include <errno.h>

#include "fuzz.h"
#include "memward/cli/status.h"

/* Walks the tree: every string and key NUL-terminated, nesting within the limit, every
 * number through the formatters the table uses. */
static void walk(const struct json_value *v, unsigned depth) {
        char buf[64];

        FUZZ_CHECK(depth <= JSON_DEPTH_MAX + 1);
        switch (v->type) {
        case JSON_STRING:
                FUZZ_CHECK(v->string != NULL);
                (void) strlen(v->string);
                break;
        case JSON_NUMBER:
                status_format_age(buf, sizeof buf, v->number);
                FUZZ_CHECK(fuzz_terminated(buf, sizeof buf));
                status_format_bytes(buf, sizeof buf, v->number);
                FUZZ_CHECK(fuzz_terminated(buf, sizeof buf));
                break;
        case JSON_ARRAY:
        case JSON_OBJECT:
                for (size_t i = 0; i < v->n_items; i++) {
                        if (v->type == JSON_OBJECT)
                                FUZZ_CHECK(v->items[i].key != NULL);
                        walk(&v->items[i], depth + 1);
                }
                break;
        default:
                break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct json_value *doc = NULL;
        char *out = NULL;
        size_t n = 0;
        FILE *f;
        int r;

        r = json_parse((const char *) data, size, &doc);
        FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -ELOOP);
        if (r < 0) {
                FUZZ_CHECK(doc == NULL);
                return 0;
        }
        walk(doc, 1);
        (void) json_get_string(doc, "version", NULL);
        (void) json_get_number(doc, "pid", 0);

        f = open_memstream(&out, &n);
        if (!f)
                abort();
        r = status_print_table(doc, f);
        FUZZ_CHECK(r == 0 || r == -EBADMSG);
        fclose(f);
        free(out);
        json_free(doc);
        return 0;
}
