/* See config_diff.h.
 *
 * config_dump() is the one place that knows every key and prints it in one canonical
 * form, so comparing two dumps key by key finds every change, including keys added
 * after this file was written, with no second list of fields to keep in step. */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memward/base/macro.h"
#include "memward/config/config_diff.h"

#define KEY_MAX 128

/* One key of a dump and the text of its value: everything printed under it. */
struct dump_entry {
        char key[KEY_MAX];
        const char *value;
        size_t length;
};

struct dump {
        char *text;
        size_t length;
        struct dump_entry *entries;
        size_t n;
};

static void dump_done(struct dump *d) {
        free(d->text);
        free(d->entries);
        *d = (struct dump) {};
}

/* The line after p, or end. */
static const char *line_next(const char *p, const char *end) {
        const char *eol = memchr(p, '\n', (size_t) (end - p));
        return eol ? eol + 1 : end;
}

/* Splits a dump into its keys. A top-level key is a section ("workers:") whose scalar
 * children are keys of their own ("workers.count"), or a key with a value of its own
 * (a sequence: "listen"). A child that opens a mapping or a sequence ("env:",
 * "command: [...]") is one key with everything under it. */
static int dump_split(struct dump *d) {
        char section[KEY_MAX] = "";
        struct dump_entry *open = NULL;  /* the entry that collects deeper lines */
        size_t open_indent = 0;
        const char *p = d->text, *end = d->text + d->length;

        for (const char *next; p < end; p = next) {
                next = line_next(p, end);
                size_t indent = strspn(p, " ");
                const char *colon = memchr(p, ':', (size_t) (next - p));

                if (*p == '#' || p + indent >= next - 1)
                        continue;
                if (open && indent > open_indent) {
                        open->length = (size_t) (next - open->value);
                        continue;
                }
                open = NULL;
                if (!colon || p[indent] == '-')
                        continue; /* cannot happen in a dump: a list item outside its key */

                size_t name_length = (size_t) (colon - (p + indent));
                bool has_value = colon + 1 < next - 1;
                if (indent == 0) {
                        snprintf(section, sizeof section, "%.*s", (int) name_length, p);
                        /* A section: its children are the keys. */
                        if (!has_value && next < end && next[strspn(next, " ")] != '-')
                                continue;
                }

                struct dump_entry *e = reallocarray(d->entries, d->n + 1, sizeof *e);
                if (!e)
                        return -ENOMEM;
                d->entries = e;
                e = &d->entries[d->n++];
                /* config_dump()'s keys are short: one that does not fit is a bug there. The
                 * result is checked, not ignored, which also tells gcc -O1's truncation
                 * warning that we know. */
                int n = indent == 0 ? snprintf(e->key, sizeof e->key, "%s", section)
                                    : snprintf(e->key, sizeof e->key, "%s.%.*s", section, (int) name_length,
                                               p + indent);
                assert(n >= 0 && (size_t) n < sizeof e->key);
                (void) n;
                e->value = colon + 1;
                e->length = (size_t) (next - e->value);
                open = e;
                open_indent = indent;
        }
        return 0;
}

static int dump_new(const struct memward_config *c, struct dump *ret) {
        struct dump d = {};
        FILE *f = open_memstream(&d.text, &d.length);
        if (!f)
                return -ENOMEM;
        int r = config_dump(c, f);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r >= 0)
                r = dump_split(&d);
        if (r < 0) {
                dump_done(&d);
                return r;
        }
        *ret = d;
        return 0;
}

static const struct dump_entry *dump_find(const struct dump *d, const char *key) {
        for (size_t i = 0; i < d->n; i++)
                if (streq(d->entries[i].key, key))
                        return &d->entries[i];
        return NULL;
}

static bool entry_equal(const struct dump_entry *a, const struct dump_entry *b) {
        return a && b && a->length == b->length && memcmp(a->value, b->value, a->length) == 0;
}

int config_changed_keys(const struct memward_config *old, const struct memward_config *new, char *buf,
                        size_t size) {
        struct dump a = {}, b = {};
        size_t used = 0;
        int n = 0, r;

        if (size > 0)
                buf[0] = '\0';
        r = dump_new(old, &a);
        if (r < 0)
                return r;
        r = dump_new(new, &b);
        if (r < 0) {
                dump_done(&a);
                return r;
        }

        for (size_t i = 0; i < b.n && r >= 0; i++) {
                const struct dump_entry *e = &b.entries[i];
                if (entry_equal(dump_find(&a, e->key), e))
                        continue;
                int w = snprintf(buf + used, size - used, "%s%s", n > 0 ? "," : "", e->key);
                if (w < 0 || (size_t) w >= size - used) {
                        /* Room for ",..." was kept: cut back to the last whole key. */
                        buf[used] = '\0';
                        r = -ENOBUFS;
                        break;
                }
                used += (size_t) w;
                n++;
        }
        if (r == -ENOBUFS) {
                while (used > 0 && used + sizeof ",..." > size) {
                        char *comma = memrchr(buf, ',', used);
                        used = comma ? (size_t) (comma - buf) : 0;
                        buf[used] = '\0';
                }
                if (used + sizeof ",..." <= size)
                        snprintf(buf + used, size - used, "%s...", used > 0 ? "," : "");
        }
        dump_done(&a);
        dump_done(&b);
        return r < 0 ? r : n;
}
