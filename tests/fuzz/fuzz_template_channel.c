/* Fork-server control messages (docs/fork-server.md §2), as a template sends them to
 * memward and as memward sends SPAWN and PLACED to a template: the three pure parsers,
 * then the formatters on what they parsed.
 *
 * The input is one packet, as is; every parser sees it (its type line picks the one that
 * accepts it). Checked, besides sanitizer reports:
 *   - only the documented errnos, each with its fault token; *ret untouched on failure,
 *     the error untouched on success; error texts NUL-terminated within their array, and
 *     valid UTF-8 whenever the packet was (the cut falls between characters);
 *   - on success every field within its documented range, RUNTIME and MESSAGE
 *     NUL-terminated (and valid UTF-8 when the packet was), every ENV entry inside the
 *     packet, one line, with a '=' after a non-empty name;
 *   - round trips: format(parse(packet)) parses back to the same struct; the formatter
 *     writes nothing into a buffer one byte short (-ENOBUFS) and exactly its length into
 *     an exact one. A SPAWN formats to at most the packet's length + 1 (the '\n' a last
 *     line may lack), so -EMSGSIZE only there. */
#include <errno.h>

#include "fuzz.h"
#include "memward/base/utf8.h"
#include "memward/linux/template_channel.h"

/* s[0..n) with no NUL byte: valid UTF-8 throughout? */
static bool valid_utf8(const char *s, size_t n) {
        char *z = fuzz_strndup((const uint8_t *) s, n);
        bool ok = true;

        for (size_t i = 0; i < n && ok;) {
                size_t len = utf8_decode((const unsigned char *) z + i, NULL);
                ok = len > 0;
                i += len;
        }
        free(z);
        return ok;
}

static bool terminated_utf8(const char *s, size_t size) {
        return fuzz_terminated(s, size) && valid_utf8(s, strlen(s));
}

static const char *const faults[] = {
        "oversized",   "nul_byte",   "unknown_type", "no_equals",           "bad_key",
        "repeated_key", "bad_value", "missing_key",  "unsupported_protocol", "too_many_env",
        "conflicting_keys",
};

static void check_error(int r, const struct template_parse_error *e, bool utf8) {
        bool known = false;

        FUZZ_CHECK(e->what != NULL);
        for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
                known = known || strcmp(e->what, faults[i]) == 0;
        FUZZ_CHECK(known);
        FUZZ_CHECK((r == -EMSGSIZE) == (strcmp(e->what, "oversized") == 0));
        FUZZ_CHECK((r == -EPROTONOSUPPORT) == (strcmp(e->what, "unsupported_protocol") == 0));
        FUZZ_CHECK((r == -E2BIG) == (strcmp(e->what, "too_many_env") == 0));
        FUZZ_CHECK(fuzz_terminated(e->text, sizeof e->text) && e->text[0] != '\0');
        if (utf8)
                FUZZ_CHECK(valid_utf8(e->text, strlen(e->text)));
}

/* Formats twice more: one byte short (nothing written), then exact (that many written). */
typedef int (*format_fn)(const void *what, char *buf, size_t size, size_t *ret_length);

static void check_buffer_sizes(format_fn format, const void *what, size_t length) {
        size_t n = 777;

        if (length > 0) {
                char *short_buf = malloc(length - 1 ?: 1);
                if (!short_buf)
                        abort();
                memset(short_buf, FUZZ_POISON, length - 1);
                FUZZ_CHECK(format(what, short_buf, length - 1, &n) == -ENOBUFS);
                FUZZ_CHECK(n == 777);
                for (size_t i = 0; i + 1 < length; i++)
                        FUZZ_CHECK((uint8_t) short_buf[i] == FUZZ_POISON);
                free(short_buf);
        }
        char *exact = malloc(length ?: 1); /* exactly: ASan sees a byte written past it */
        if (!exact)
                abort();
        FUZZ_CHECK(format(what, exact, length, &n) == 0);
        FUZZ_CHECK(n == length);
        free(exact);
}

static int format_message(const void *what, char *buf, size_t size, size_t *ret_length) {
        return template_message_format(what, buf, size, ret_length);
}

static void check_message(const char *data, size_t size, bool utf8) {
        static struct template_message m, back, poison;
        static char out[TEMPLATE_MESSAGE_MAX];
        struct template_parse_error e, e_poison;
        size_t n;

        memset(&m, FUZZ_POISON, sizeof m);
        memset(&poison, FUZZ_POISON, sizeof poison);
        memset(&e, FUZZ_POISON, sizeof e);
        e_poison = e;

        int r = template_message_parse(data, size, &m, &e);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -EMSGSIZE || r == -EPROTONOSUPPORT);
                FUZZ_CHECK((r == -EMSGSIZE) == (size > TEMPLATE_MESSAGE_MAX));
                FUZZ_CHECK(memcmp(&m, &poison, sizeof m) == 0);
                check_error(r, &e, utf8);
                /* Without an error to fill, the same answer. */
                FUZZ_CHECK(template_message_parse(data, size, &m, NULL) == r);
                return;
        }
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(memcmp(&e, &e_poison, sizeof e) == 0);
        FUZZ_CHECK(size <= TEMPLATE_MESSAGE_MAX && !memchr(data, '\0', size));
        FUZZ_CHECK(fuzz_terminated(m.runtime, sizeof m.runtime) && fuzz_terminated(m.message, sizeof m.message));
        if (utf8)
                FUZZ_CHECK(terminated_utf8(m.runtime, sizeof m.runtime) &&
                           terminated_utf8(m.message, sizeof m.message));
        switch (m.type) {
        case TEMPLATE_READY:
                FUZZ_CHECK(m.slot == 0 && m.generation == 0 && m.pid == 0 && m.error == 0 && !m.message[0]);
                break;
        case TEMPLATE_SPAWNED:
        case TEMPLATE_PLACE:
                FUZZ_CHECK(m.slot <= TEMPLATE_SLOT_MAX && m.generation >= 1 && m.pid > 1);
                FUZZ_CHECK(m.error == 0 && !m.runtime[0] && !m.message[0] && !m.place);
                break;
        case TEMPLATE_SPAWN_FAILED:
                FUZZ_CHECK(m.slot <= TEMPLATE_SLOT_MAX && m.generation >= 1 && m.pid == 0);
                FUZZ_CHECK(m.error >= 1 && m.error <= TEMPLATE_ERRNO_MAX && !m.runtime[0] && !m.place);
                break;
        default:
                FUZZ_CHECK(!"a type out of the enum");
        }

        FUZZ_CHECK(template_message_format(&m, out, sizeof out, &n) == 0);
        memset(&back, FUZZ_POISON, sizeof back);
        FUZZ_CHECK(template_message_parse(out, n, &back, NULL) == 0);
        FUZZ_CHECK(memcmp(&back, &m, sizeof m) == 0);
        check_buffer_sizes(format_message, &m, n);
}

/* template_spawn_format() takes its fields one by one: a struct to pass them through. */
struct spawn_call {
        const struct template_spawn *sp;
        char **env;
};

static enum template_placement placement_of(const struct template_spawn *sp) {
        return sp->cgroup ? TEMPLATE_PLACEMENT_TEMPLATE : sp->place ? TEMPLATE_PLACEMENT_MEMWARD : TEMPLATE_PLACEMENT_NONE;
}

static int format_spawn(const void *what, char *buf, size_t size, size_t *ret_length) {
        const struct spawn_call *c = what;
        return template_spawn_format(c->sp->slot, c->sp->generation, placement_of(c->sp), c->env, buf, size,
                                     ret_length);
}

static void check_spawn(const char *data, size_t size, bool utf8) {
        static struct template_spawn sp, back, poison;
        static char out[TEMPLATE_MESSAGE_MAX + 1];
        struct template_parse_error e, e_poison;
        char *env[TEMPLATE_SPAWN_ENV_MAX + 1];
        size_t n;

        memset(&sp, FUZZ_POISON, sizeof sp);
        memset(&poison, FUZZ_POISON, sizeof poison);
        memset(&e, FUZZ_POISON, sizeof e);
        e_poison = e;

        int r = template_spawn_parse(data, size, &sp, &e);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -EMSGSIZE || r == -E2BIG);
                FUZZ_CHECK((r == -EMSGSIZE) == (size > TEMPLATE_MESSAGE_MAX));
                FUZZ_CHECK(memcmp(&sp, &poison, sizeof sp) == 0);
                check_error(r, &e, utf8);
                FUZZ_CHECK(template_spawn_parse(data, size, &sp, NULL) == r);
                return;
        }
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(memcmp(&e, &e_poison, sizeof e) == 0);
        FUZZ_CHECK(sp.slot <= TEMPLATE_SLOT_MAX && sp.generation >= 1 && sp.n_env <= TEMPLATE_SPAWN_ENV_MAX);
        FUZZ_CHECK(!(sp.cgroup && sp.place));
        for (size_t i = 0; i < sp.n_env; i++) {
                const struct template_env *v = &sp.env[i];
                FUZZ_CHECK(v->entry >= data && v->length <= size && v->entry + v->length <= data + size);
                FUZZ_CHECK(!memchr(v->entry, '\n', v->length) && !memchr(v->entry, '\0', v->length));
                const char *eq = memchr(v->entry, '=', v->length);
                FUZZ_CHECK(eq && eq > v->entry);
                env[i] = fuzz_strndup((const uint8_t *) v->entry, v->length);
        }
        env[sp.n_env] = NULL;

        /* Canonical lines are never longer than the ones read; only a missing last '\n' grows. */
        r = template_spawn_format(sp.slot, sp.generation, placement_of(&sp), env, out, sizeof out, &n);
        FUZZ_CHECK(r == 0 || (r == -EMSGSIZE && size + 1 > TEMPLATE_MESSAGE_MAX));
        if (r == 0) {
                FUZZ_CHECK(n <= size + 1);
                memset(&back, FUZZ_POISON, sizeof back);
                FUZZ_CHECK(template_spawn_parse(out, n, &back, NULL) == 0);
                FUZZ_CHECK(back.slot == sp.slot && back.generation == sp.generation && back.cgroup == sp.cgroup &&
                           back.place == sp.place);
                FUZZ_CHECK(back.n_env == sp.n_env);
                for (size_t i = 0; i < sp.n_env; i++)
                        FUZZ_CHECK(back.env[i].length == sp.env[i].length &&
                                   memcmp(back.env[i].entry, sp.env[i].entry, sp.env[i].length) == 0);
                struct spawn_call c = { .sp = &sp, .env = env };
                check_buffer_sizes(format_spawn, &c, n);
        }
        for (size_t i = 0; i < sp.n_env; i++)
                free(env[i]);
}

static int format_placed(const void *what, char *buf, size_t size, size_t *ret_length) {
        return template_placed_format(what, buf, size, ret_length);
}

static void check_placed(const char *data, size_t size, bool utf8) {
        struct template_placed pl, back, poison;
        struct template_parse_error e, e_poison;
        char out[128];
        size_t n;

        memset(&pl, FUZZ_POISON, sizeof pl);
        memset(&poison, FUZZ_POISON, sizeof poison);
        memset(&e, FUZZ_POISON, sizeof e);
        e_poison = e;

        int r = template_placed_parse(data, size, &pl, &e);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -EMSGSIZE);
                FUZZ_CHECK((r == -EMSGSIZE) == (size > TEMPLATE_MESSAGE_MAX));
                FUZZ_CHECK(memcmp(&pl, &poison, sizeof pl) == 0);
                check_error(r, &e, utf8);
                FUZZ_CHECK(template_placed_parse(data, size, &pl, NULL) == r);
                return;
        }
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(memcmp(&e, &e_poison, sizeof e) == 0);
        FUZZ_CHECK(pl.slot <= TEMPLATE_SLOT_MAX && pl.generation >= 1 && pl.error >= 0 &&
                   pl.error <= TEMPLATE_ERRNO_MAX);
        /* PLACED has no free text: its canonical form always fits a small buffer. */
        FUZZ_CHECK(template_placed_format(&pl, out, sizeof out, &n) == 0);
        memset(&back, FUZZ_POISON, sizeof back);
        FUZZ_CHECK(template_placed_parse(out, n, &back, NULL) == 0);
        FUZZ_CHECK(memcmp(&back, &pl, sizeof pl) == 0);
        check_buffer_sizes(format_placed, &pl, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *s = (const char *) data;
        bool utf8 = !memchr(s, '\0', size) && valid_utf8(s, size);

        check_message(s, size, utf8);
        check_spawn(s, size, utf8);
        check_placed(s, size, utf8);
        return 0;
}
