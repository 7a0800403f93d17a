/* The configuration file: strict YAML through libyaml's document API.
 *
 * Shape of the parser (after netplan's parse.c): the file is loaded as a libyaml document,
 * whose nodes all carry a start mark, and walked with one table per mapping
 * ({ key, handler, offsetof(field), bounds }). Handlers never stop at the first problem:
 * every error is appended to the caller's diagnostics with the 1-based line:column of the
 * node it is about (the key for unknown and duplicate keys, the value for bad values), and
 * the load fails with -EINVAL at the end. Rules that span several keys run once the
 * single-key checks all passed, so one typo does not cascade into follow-up errors.
 *
 * Before the document is built, a cheap event pass rejects anchors and aliases: the
 * document API would silently share the aliased node, and a "billion laughs" file would
 * make the walk exponential.
 *
 * This module never logs; callers print the diagnostics. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>
#include <yaml.h>

#include "memward/base/macro.h"
#include "memward/base/read_file.h"
#include "memward/base/signal_name.h"
#include "memward/base/utf8.h"
#include "memward/config/config.h"
#include "memward/linux/address.h"

/* Defaults. workers.count is 2: enough to keep serving while one worker is replaced or
 * crashes, cheap enough for a laptop; real deployments set it explicitly. */
#define DEFAULT_WORKERS 2U
#define DEFAULT_READY_TIMEOUT (60 * USEC_PER_SEC)
#define DEFAULT_FORK_TIMEOUT (10 * USEC_PER_SEC)
#define DEFAULT_GRACEFUL_TIMEOUT (30 * USEC_PER_SEC)
#define DEFAULT_BACKOFF_INITIAL (100 * USEC_PER_MSEC)
#define DEFAULT_BACKOFF_MAX (30 * USEC_PER_SEC)
/* Eight failed starts of one slot in five minutes, while no worker serves (one backoff
 * round of every slot failing counts once): an app that fails at once gets there 12.7 s
 * after its first failure (backoff 0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 3.2 + 6.4 s), plus its
 * 8 start-ups, so a dependency down for up to about 12 s at start-up is retried; one
 * that fails after a 30 s import gets there in about 4.2 minutes, within the interval. */
#define DEFAULT_START_LIMIT_BURST 8
#define DEFAULT_START_LIMIT_INTERVAL (5 * 60 * USEC_PER_SEC)
#define DEFAULT_BACKLOG 1024
#define DEFAULT_SAMPLE_INTERVAL USEC_PER_SEC
#define DEFAULT_RETAINED_WINDOW (60 * USEC_PER_SEC)
#define DEFAULT_WARMUP (30 * USEC_PER_SEC)
#define DEFAULT_COOLDOWN (30 * USEC_PER_SEC)

/* Limits on what a config file can make us allocate or compute with. */
#define DURATION_MAX (8760 * 3600 * USEC_PER_SEC) /* one year: keeps now + duration far from overflow */
/* The upper end memward.yaml(5) documents. It bounds no memory: a floor is FLOOR_BUCKETS
 * minima whatever the window (floor.h); at an hour its oldest edge is accurate to 225 s. */
#define RETAINED_WINDOW_MAX (3600 * USEC_PER_SEC)
#define REQUESTS_MAX UINT32_MAX                   /* max_requests + jitter cannot overflow */
#define GROWTH_MAX 1000.0
#define COMMAND_WORDS_MAX 4096U
#define ENV_VARS_MAX 1024U
#define DIAG_ITEMS_MAX 1000U
#define LISTEN_NAME_MAX 255U
#define QUOTE_CHARS_MAX 48U /* characters of a bad value quoted in a message */
#define PATH_BUF 256        /* "workers.restart_backoff.initial", "listen[3].name", ... */
#define FIELDS_MAX 24       /* entries in one table */

/* Value nodes remembered for the rules that span several keys. */
enum track {
        TRACK_NONE,
        TRACK_READY,
        TRACK_READY_TIMEOUT,
        TRACK_BACKOFF_INITIAL,
        TRACK_BACKOFF_MAX,
        TRACK_SAMPLE_INTERVAL,
        TRACK_RETAINED_WINDOW,
        TRACK_WORKER_HIGH,
        TRACK_WORKER_MAX,
        TRACK_USER,
        TRACK_GROUP,
        TRACK_METRICS_LISTEN,
        TRACK_METRICS_MODE,
        TRACK_METRICS_OWNER,
        TRACK_METRICS_GROUP,
        _TRACK_MAX,
};

struct ctx {
        struct config_diagnostics *diag;
        const char *name;       /* file name, for warnings */
        const char *base_dir;   /* absolute */
        yaml_document_t *doc;   /* NULL in config_validate() */
        unsigned n_errors;
        int error;              /* a failure that is not the file's fault (-ENOMEM) */
        yaml_node_t *tracked[_TRACK_MAX];
        char *user_name;        /* workers.user's passwd name, NULL when it has no entry */
        gid_t user_gid;         /* workers.user's primary group, when user_name is set */
};

/* One word of a choice field (workers.mode, memory.metric, ...) and the value it stands for. */
struct enum_name {
        const char *name;
        int value;
};

struct field;
typedef void (*field_parser)(struct ctx *ctx, const struct field *f, yaml_node_t *key, yaml_node_t *value,
                             void *base, const char *path);

/* One row of a mapping's table. offset is relative to the base the table is walked
 * with: the config for sections, a struct listen_config for listen entries. */
struct field {
        const char *key;
        field_parser parse;
        size_t offset;
        uint64_t min, max;              /* integers, durations, sizes */
        const struct field *sub;        /* nested section */
        enum track track;
        size_t offset_id;               /* owner, group: where the resolved uid_t/gid_t goes */
        const struct enum_name *names;  /* field_enum: the words, in message order, {} ended */
};

#define FIELD_PTR(base, f, type) ((type *) ((char *) (base) + (f)->offset))

/* ---- diagnostics ------------------------------------------------------------------- */

/* Takes ownership of message. */
static int diag_push(struct config_diagnostics *d, unsigned line, unsigned column, char *message) {
        struct config_diagnostic *items;

        if (d->n_items >= DIAG_ITEMS_MAX) {
                free(message);
                return 0;
        }
        if (d->n_items == DIAG_ITEMS_MAX - 1) {
                /* The last slot says that we stopped; the exit status is the same anyway. */
                free(message);
                message = strdup("too many errors, the rest are not shown");
                if (!message)
                        return -ENOMEM;
                line = column = 0;
        }

        items = reallocarray(d->items, d->n_items + 1, sizeof *items);
        if (!items) {
                free(message);
                return -ENOMEM;
        }
        d->items = items;
        d->items[d->n_items++] = (struct config_diagnostic) {
                .line = line,
                .column = column,
                .message = message,
        };
        return 0;
}

static void ctx_error_at(struct ctx *ctx, unsigned line, unsigned column, const char *format, ...) _printf_(4, 5);
static void ctx_error_at(struct ctx *ctx, unsigned line, unsigned column, const char *format, ...) {
        char *m;
        va_list ap;
        int r;

        ctx->n_errors++;

        va_start(ap, format);
        r = vasprintf(&m, format, ap);
        va_end(ap);
        if (r < 0) {
                ctx->error = -ENOMEM;
                return;
        }
        if (diag_push(ctx->diag, line, column, m) < 0)
                ctx->error = -ENOMEM;
}

static unsigned node_line(const yaml_node_t *n) {
        return n ? (unsigned) n->start_mark.line + 1 : 0;
}

static unsigned node_column(const yaml_node_t *n) {
        return n ? (unsigned) n->start_mark.column + 1 : 0;
}

/* An error about node (NULL: no position). */
#define ctx_error(ctx, node, ...) ctx_error_at((ctx), node_line(node), node_column(node), __VA_ARGS__)

/* No key warns today (the reserved metrics: section is implemented now); kept for the
 * next section that is accepted before it does anything. */
static void ctx_warning(struct ctx *ctx, const yaml_node_t *node, const char *format, ...) _printf_(3, 4) _unused_;
static void ctx_warning(struct ctx *ctx, const yaml_node_t *node, const char *format, ...) {
        struct config_diagnostics *d = ctx->diag;
        _cleanup_free_ char *m = NULL;
        char *w, **l;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&m, format, ap);
        va_end(ap);
        if (r < 0)
                goto oom;

        if (asprintf(&w, "%s:%u:%u: %s", ctx->name, node_line(node), node_column(node), m) < 0)
                goto oom;
        l = reallocarray(d->warnings, d->n_warnings + 1, sizeof *l);
        if (!l) {
                free(w);
                goto oom;
        }
        d->warnings = l;
        d->warnings[d->n_warnings++] = w;
        return;
oom:
        ctx->error = -ENOMEM;
}

void config_diagnostics_clear(struct config_diagnostics *diag) {
        if (!diag)
                return;
        free(diag->file);
        free(diag->source);
        for (size_t i = 0; i < diag->n_items; i++)
                free(diag->items[i].message);
        free(diag->items);
        for (size_t i = 0; i < diag->n_warnings; i++)
                free(diag->warnings[i]);
        free(diag->warnings);
        *diag = (struct config_diagnostics) {};
}

/* Prints the 1-based line of source and a caret under column. The caret line copies the
 * tabs of the quoted line so that the caret lands under the column whatever the tab width;
 * columns count characters (as libyaml does), not bytes. */
/* The pointer after n characters of p, or end. */
static const char *skip_chars(const char *p, const char *end, unsigned n) {
        for (unsigned c = 0; c < n && p < end; c++)
                do
                        p++;
                while (p < end && ((unsigned char) *p & 0xC0) == 0x80);
        return p;
}

/* The line, and a caret under the column. A line longer than CARET_LINE_MAX characters
 * (a 1 MiB one-liner) is shown as the CARET_LINE_MAX characters around the column. */
#define CARET_LINE_MAX 120U

static void print_caret(FILE *f, const char *source, unsigned line, unsigned column) {
        const char *p = source, *end;

        for (unsigned l = 1; l < line; l++) {
                p = strchr(p, '\n');
                if (!p)
                        return;
                p++;
        }
        end = strchrnul(p, '\n');
        if (*p == '\0' && end == p)
                return; /* past the last line */
        if (end > p && end[-1] == '\r')
                end--;

        const char *from = p, *to = end;
        unsigned skipped = column > CARET_LINE_MAX / 2 ? column - 1 - CARET_LINE_MAX / 2 : 0;
        if (skip_chars(p, end, CARET_LINE_MAX) < end) {
                from = skip_chars(p, end, skipped);
                to = skip_chars(from, end, CARET_LINE_MAX);
        } else
                skipped = 0;
        const char *dots = from > p ? "..." : "";
        fprintf(f, "    %s%.*s%s\n    %s", dots, (int) (to - from), from, to < end ? "..." : "", dots[0] ? "   " : "");
        for (unsigned c = 1 + skipped; c < column && from < to; c++) {
                fputc(*from == '\t' ? '\t' : ' ', f);
                from = skip_chars(from, to, 1);
        }
        fputs("^\n", f);
}

int config_diagnostic_format(const struct config_diagnostics *diag, size_t i, char *buf, size_t size) {
        const char *file = diag->file ?: "memward";
        const struct config_diagnostic *d;
        int n;

        assert(i < diag->n_items);
        d = &diag->items[i];
        if (d->line == 0)
                n = snprintf(buf, size, "%s: %s", file, d->message);
        else
                n = snprintf(buf, size, "%s:%u:%u: %s", file, d->line, d->column, d->message);
        return n < 0 ? -EINVAL : n;
}

void config_diagnostics_print(const struct config_diagnostics *diag, FILE *f) {
        char line[1024];

        assert(diag);
        assert(f);

        for (size_t i = 0; i < diag->n_items; i++) {
                const struct config_diagnostic *d = &diag->items[i];

                if (config_diagnostic_format(diag, i, line, sizeof line) < 0)
                        continue;
                fprintf(f, "%s\n", line);
                if (d->line > 0 && diag->source)
                        print_caret(f, diag->source, d->line, d->column);
        }
}

/* ---- small helpers ----------------------------------------------------------------- */

/* Copies s[0..len) into buf with control characters, quotes and backslashes escaped,
 * at most max_chars characters, "..." when cut. */
static void escape_into(char *buf, size_t size, const char *s, size_t len, size_t max_chars) {
        size_t n = 0, chars = 0;

        assert(size >= 8);

        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char) s[i];
                char tmp[8];
                size_t k;

                if ((ch & 0xC0) != 0x80 && ++chars > max_chars) {
                        if (n + 4 <= size - 1) {
                                memcpy(buf + n, "...", 3);
                                n += 3;
                        }
                        break;
                }
                if (ch == '"' || ch == '\\')
                        k = (size_t) snprintf(tmp, sizeof tmp, "\\%c", ch);
                else if (ch == '\n')
                        k = (size_t) snprintf(tmp, sizeof tmp, "\\n");
                else if (ch == '\t')
                        k = (size_t) snprintf(tmp, sizeof tmp, "\\t");
                else if (ch < 0x20 || ch == 0x7F)
                        k = (size_t) snprintf(tmp, sizeof tmp, "\\x%02x", ch);
                else {
                        tmp[0] = (char) ch;
                        k = 1;
                }
                if (n + k > size - 1)
                        break;
                memcpy(buf + n, tmp, k);
                n += k;
        }
        buf[n] = '\0';
}

static bool is_plain_null(const yaml_node_t *n) {
        const char *s;

        if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        s = (const char *) n->data.scalar.value;
        return streq(s, "") || streq(s, "~") || streq(s, "null") || streq(s, "Null") || streq(s, "NULL");
}

/* Describes a node for "got ...": the quoted scalar, "a list", "a mapping", ... */
static const char *describe(const yaml_node_t *n, char *buf, size_t size) {
        switch (n->type) {
        case YAML_SCALAR_NODE:
                if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && n->data.scalar.length == 0)
                        return "an empty value";
                if (is_plain_null(n))
                        return "null";
                buf[0] = '"';
                escape_into(buf + 1, size - 2, (const char *) n->data.scalar.value, n->data.scalar.length,
                            QUOTE_CHARS_MAX);
                strcat(buf, "\"");
                return buf;
        case YAML_SEQUENCE_NODE:
                return "a list";
        case YAML_MAPPING_NODE:
                return "a mapping";
        default:
                return "nothing";
        }
}

#define DESCRIBE_MAX (QUOTE_CHARS_MAX * 4 + 16)
#define DESCRIBE(n) describe((n), (char[DESCRIBE_MAX]) {}, DESCRIBE_MAX)

/* The scalar's text, or NULL when the node is not a scalar or holds a NUL byte (which
 * would make the C string mean something else than the YAML value). */
static const char *scalar_value(const yaml_node_t *n) {
        const char *s;

        if (n->type != YAML_SCALAR_NODE)
                return NULL;
        s = (const char *) n->data.scalar.value;
        if (strlen(s) != n->data.scalar.length)
                return NULL;
        return s;
}

/* A string value: a scalar that is not null and holds no NUL. Reports and returns NULL otherwise. */
static const char *get_string(struct ctx *ctx, yaml_node_t *v, const char *path) {
        const char *s = scalar_value(v);

        if (v->type == YAML_SCALAR_NODE && !s) {
                ctx_error(ctx, v, "%s: must not contain NUL bytes", path);
                return NULL;
        }
        if (!s || is_plain_null(v)) {
                ctx_error(ctx, v, "%s: expected a string, got %s", path, DESCRIBE(v));
                return NULL;
        }
        return s;
}

static void path_append(char *buf, size_t size, const char *parent, const char *key) {
        char k[PATH_BUF];

        escape_into(k, sizeof k, key, strlen(key), 64);
        /* A cut path in a message is acceptable; looking at the result says so to the compiler. */
        if (snprintf(buf, size, "%s%s%s", parent, parent[0] ? "." : "", k) >= (int) size)
                buf[size - 1] = '\0';
}

/* Makes p absolute against base and drops "." components, repeated and trailing slashes.
 * ".." is kept: with symlinks it cannot be resolved without looking at the file system. */
static char *path_make_absolute(const char *base, const char *p) {
        char *s, *w;
        const char *r;

        if (p[0] == '/')
                s = strdup(p);
        else if (asprintf(&s, "%s/%s", base, p) < 0)
                s = NULL;
        if (!s)
                return NULL;

        for (w = s, r = s; *r;) {
                if (r[0] == '/' && (r[1] == '/' || (r[1] == '.' && (r[2] == '/' || r[2] == '\0')))) {
                        r += r[1] == '/' ? 1 : 2;
                        continue;
                }
                *w++ = *r++;
        }
        *w = '\0';
        if (w > s + 1 && w[-1] == '/')
                w[-1] = '\0';
        if (s[0] == '\0')
                strcpy(s, "/"); /* "/." became "", which has room for "/" */
        return s;
}

/* "unix:relative.sock" → "unix:/base/relative.sock"; anything else is copied. */
static char *listen_address_make_absolute(const char *base, const char *address) {
        const char *p;
        _cleanup_free_ char *abs = NULL;
        char *s;

        if (!startswith_lit(address, "unix:"))
                return strdup(address);
        p = address + strlen("unix:");
        if (p[0] == '\0' || p[0] == '@')
                return strdup(address);

        abs = path_make_absolute(base, p);
        if (!abs)
                return NULL;
        if (asprintf(&s, "unix:%s", abs) < 0)
                return NULL;
        return s;
}

static void strv_replace(char ***target, char **l) {
        strv_free(*target);
        *target = l;
}

static size_t levenshtein(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b), row[65];

        if (la > 64 || lb > 64)
                return SIZE_MAX;
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t diag = row[0];
                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t up = row[j];
                        size_t best = diag + (a[i - 1] != b[j - 1]);
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        if (up + 1 < best)
                                best = up + 1;
                        row[j] = best;
                        diag = up;
                }
        }
        return row[lb];
}

/* ---- value handlers ---------------------------------------------------------------- */

/* Decimal digits only: no sign, no fraction, no leading zero (YAML 1.1 reads "010" as octal). */
static bool get_integer(struct ctx *ctx, const struct field *f, yaml_node_t *v, const char *path,
                        uint64_t *ret) {
        const char *s = scalar_value(v);
        bool ok = s && s[0] && !(s[0] == '0' && s[1]), overflow = false;
        uint64_t n = 0;

        for (const char *p = s; ok && *p; p++) {
                if (*p < '0' || *p > '9') {
                        ok = false;
                        break;
                }
                if (n > (UINT64_MAX - (uint64_t) (*p - '0')) / 10)
                        overflow = true;
                else
                        n = n * 10 + (uint64_t) (*p - '0');
        }

        if (!ok || (!overflow && n < f->min)) {
                ctx_error(ctx, v, "%s: expected an integer >= %" PRIu64 ", got %s", path, f->min, DESCRIBE(v));
                return false;
        }
        if (overflow || n > f->max) {
                ctx_error(ctx, v, "%s: expected an integer in %" PRIu64 "..%" PRIu64 ", got %s", path, f->min,
                          f->max, DESCRIBE(v));
                return false;
        }
        *ret = n;
        return true;
}

static void field_u64(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                      void *base, const char *path) {
        uint64_t n;

        if (get_integer(ctx, f, v, path, &n))
                *FIELD_PTR(base, f, uint64_t) = n;
}

static void field_unsigned(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                           void *base, const char *path) {
        uint64_t n;

        assert(f->max <= UINT_MAX);
        if (get_integer(ctx, f, v, path, &n))
                *FIELD_PTR(base, f, unsigned) = (unsigned) n;
}

static void field_int(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                      void *base, const char *path) {
        uint64_t n;

        assert(f->max <= INT_MAX);
        if (get_integer(ctx, f, v, path, &n))
                *FIELD_PTR(base, f, int) = (int) n;
}

static bool get_duration(struct ctx *ctx, const struct field *f, yaml_node_t *v, const char *path,
                         usec_t *ret) {
        char a[FORMAT_DURATION_MAX], b[FORMAT_DURATION_MAX];
        const char *s = scalar_value(v);
        usec_t u = 0;
        int r;

        r = s ? parse_duration(s, &u) : -EINVAL;
        if (r == -EINVAL) {
                ctx_error(ctx, v, "%s: expected a duration with a unit (ms, s, m, h), got %s", path, DESCRIBE(v));
                return false;
        }
        if (r < 0 || u < f->min || u > f->max) {
                ctx_error(ctx, v, "%s: expected a duration in %s..%s, got %s", path,
                          format_duration(a, sizeof a, f->min), format_duration(b, sizeof b, f->max), DESCRIBE(v));
                return false;
        }
        *ret = u;
        return true;
}

static void field_duration(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                           void *base, const char *path) {
        usec_t u;

        if (get_duration(ctx, f, v, path, &u))
                *FIELD_PTR(base, f, usec_t) = u;
}

/* "96MB" gets its own message: what it would mean in SI, and the binary size to write
 * for either reading. Returns true when it said that. */
static bool ctx_error_si_size(struct ctx *ctx, yaml_node_t *v, const char *path, const char *s) {
        uint64_t bytes, nearest;
        const char *unit;
        size_t digits = strspn(s, "0123456789");

        if (parse_size_si(s, &bytes, &nearest, &unit) < 0)
                return false;
        /* s[digits] is k, M or G: the binary unit of the same rank is that letter + "iB". */
        ctx_error(ctx, v,
                  "%s: sizes are binary (KiB, MiB, GiB, also written K, M, G), and %s is an SI size: "
                  "write %.*s%ciB for %.*s x 1024%s bytes, or %" PRIu64 "%s for %" PRIu64 ", got %s",
                  path, s, (int) digits, s, s[digits] == 'k' ? 'K' : s[digits], (int) digits, s,
                  s[digits] == 'k' ? "" : s[digits] == 'M' ? "^2" : "^3", nearest, unit, bytes, DESCRIBE(v));
        return true;
}

static void field_size(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                       void *base, const char *path) {
        const char *s = scalar_value(v);
        uint64_t n = 0;
        int r;

        r = s ? parse_size(s, &n) : -EINVAL;
        if (r == -EINVAL && s && ctx_error_si_size(ctx, v, path, s))
                return;
        if (r == -EINVAL)
                ctx_error(ctx, v, "%s: expected a size (e.g. 512MiB), got %s", path, DESCRIBE(v));
        else if (r < 0)
                ctx_error(ctx, v, "%s: expected a size below 16EiB, got %s", path, DESCRIBE(v));
        else
                *FIELD_PTR(base, f, uint64_t) = n;
}

/* "12" or "12.5": digits, an optional fraction. No sign, exponent, "inf" or "nan". */
static bool parse_decimal(const char *s, size_t len, double *ret) {
        char buf[64];
        size_t i = 0;

        if (len == 0 || len >= sizeof buf)
                return false;
        while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
        if (i == 0)
                return false;
        if (i < len) {
                if (s[i] != '.' || i + 1 == len)
                        return false;
                for (i++; i < len; i++)
                        if (s[i] < '0' || s[i] > '9')
                                return false;
        }
        memcpy(buf, s, len);
        buf[len] = '\0';
        /* The supervisor never calls setlocale(), so the decimal point is '.'. */
        *ret = strtod(buf, NULL);
        return isfinite(*ret);
}

int size_or_percent_resolve(const struct size_or_percent *v, uint64_t base, uint64_t *ret) {
        assert(v);
        assert(ret);

        if (v->percent <= 0) {
                *ret = v->bytes;
                return 0;
        }
        if (base == 0)
                return -ENODATA;
        *ret = (uint64_t) ((double) base * v->percent / 100.0);
        return 0;
}

static void field_size_or_percent(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_,
                                  yaml_node_t *v, void *base, const char *path) {
        struct size_or_percent *t = FIELD_PTR(base, f, struct size_or_percent);
        const char *s = scalar_value(v);
        size_t len = s ? strlen(s) : 0;
        uint64_t n;
        double p;
        int r;

        if (len > 0 && s[len - 1] == '%') {
                if (!parse_decimal(s, len - 1, &p))
                        goto bad;
                /* 0% would resolve to 0 bytes, which means "unset": a limit that reads as
                 * set but is silently off. An explicit 0 says that. */
                if (p <= 0.0 || p > 100.0) {
                        ctx_error(ctx, v,
                                  "%s: expected a percentage above 0%% and at most 100%% (0 without %% is off), got %s",
                                  path, DESCRIBE(v));
                        return;
                }
                *t = (struct size_or_percent) { .percent = p };
                return;
        }

        r = s ? parse_size(s, &n) : -EINVAL;
        if (r == -ERANGE) {
                ctx_error(ctx, v, "%s: expected a size below 16EiB, got %s", path, DESCRIBE(v));
                return;
        }
        if (r < 0 && s && ctx_error_si_size(ctx, v, path, s))
                return;
        if (r < 0)
                goto bad;
        *t = (struct size_or_percent) { .bytes = n };
        return;
bad:
        ctx_error(ctx, v, "%s: expected a size (e.g. 512MiB) or a percentage of the group limit (e.g. 80%%), got %s",
                  path, DESCRIBE(v));
}

static void field_bool(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                       void *base, const char *path) {
        const char *s = scalar_value(v);

        if (s && (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0))
                *FIELD_PTR(base, f, bool) = true;
        else if (s && (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0))
                *FIELD_PTR(base, f, bool) = false;
        else
                ctx_error(ctx, v, "%s: expected a boolean (true or false), got %s", path, DESCRIBE(v));
}

static void field_growth(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                         void *base, const char *path) {
        const char *s = scalar_value(v);
        double d;

        if (!s || !parse_decimal(s, strlen(s), &d) || (d != 0.0 && (d <= 1.0 || d > GROWTH_MAX))) {
                ctx_error(ctx, v, "%s: expected 0 (off) or a number > 1 and <= 1000 (e.g. 2.5), got %s", path,
                          DESCRIBE(v));
                return;
        }
        *FIELD_PTR(base, f, double) = d;
}

/* field_enum stores the value of a choice field through an int. */
static_assert(sizeof(enum workers_mode) == sizeof(int), "workers.mode is not int-sized");
static_assert(sizeof(enum memory_metric) == sizeof(int), "memory.metric is not int-sized");
static_assert(sizeof(enum log_format) == sizeof(int), "log.format is not int-sized");

/* The words of each choice field, in the order its error message lists them. */
static const struct enum_name workers_mode_names[] = {
        { "exec", WORKERS_EXEC },
        { "template", WORKERS_TEMPLATE },
        {}
};

static const struct enum_name memory_metric_names[] = {
        { "anon", MEMORY_METRIC_ANON },
        { "current", MEMORY_METRIC_CURRENT },
        { "rss", MEMORY_METRIC_RSS },
        { "pss", MEMORY_METRIC_PSS },
        {}
};

/* log.c also knows emerg/alert/crit; the config language stops at "error". */
static const struct enum_name log_level_names[] = {
        { "debug", LOG_DEBUG },
        { "info", LOG_INFO },
        { "notice", LOG_NOTICE },
        { "warning", LOG_WARNING },
        { "error", LOG_ERR },
        {}
};

static const struct enum_name log_format_names[] = {
        { "logfmt", LOG_FORMAT_LOGFMT },
        { "json", LOG_FORMAT_JSON },
        {}
};

/* The word for value in names, NULL if it has none. */
static const char *enum_name_lookup(const struct enum_name *names, int value) {
        for (const struct enum_name *e = names; e->name; e++)
                if (e->value == value)
                        return e->name;
        return NULL;
}

const char *memory_metric_to_string(enum memory_metric m) {
        return enum_name_lookup(memory_metric_names, (int) m);
}

const char *workers_mode_to_string(enum workers_mode m) {
        return enum_name_lookup(workers_mode_names, (int) m);
}

/* Room for the longest list enum_choices() writes: the tables above are its only input. */
#define ENUM_CHOICES_MAX 128

/* What an error message says a choice field expects: "exec or template" for two words,
 * "one of anon, current, rss, pss" for more. Returns buf. */
static const char *enum_choices(const struct enum_name *names, char *buf, size_t size) {
        size_t n = 0, k;

        while (names[n].name)
                n++;
        assert(n >= 2);

        k = (size_t) snprintf(buf, size, "%s", n == 2 ? "" : "one of ");
        for (size_t i = 0; i < n; i++) {
                k += (size_t) snprintf(buf + k, size - k, "%s%s", i == 0 ? "" : n == 2 ? " or " : ", ",
                                       names[i].name);
                assert(k < size);
        }
        return buf;
}

/* One of the words in f->names; its value goes to the int-sized field at f->offset. */
static void field_enum(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                       void *base, const char *path) {
        const char *s = scalar_value(v);
        char choices[ENUM_CHOICES_MAX];

        assert(f->names);

        for (const struct enum_name *e = f->names; s && e->name; e++)
                if (streq(s, e->name)) {
                        *FIELD_PTR(base, f, int) = e->value;
                        return;
                }
        ctx_error(ctx, v, "%s: expected %s, got %s", path, enum_choices(f->names, choices, sizeof choices),
                  DESCRIBE(v));
}

const char *ready_mode_to_string(enum ready_mode m) {
        switch (m) {
        case READY_NOTIFY:
                return "notify";
        case READY_IMMEDIATE:
                return "immediate";
        case READY_DELAY:
                return "delay";
        }
        return NULL;
}

static void field_ready(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                        void *base, const char *path) {
        struct memward_config *c = base;
        const char *s = scalar_value(v);
        usec_t u = 0;
        int r;

        if (s && streq(s, "notify")) {
                c->workers.ready = READY_NOTIFY;
                return;
        }
        if (s && streq(s, "immediate")) {
                c->workers.ready = READY_IMMEDIATE;
                return;
        }

        r = s ? parse_duration(s, &u) : -EINVAL;
        if (r == -EINVAL) {
                ctx_error(ctx, v, "%s: expected notify, immediate or a duration (e.g. 5s), got %s", path, DESCRIBE(v));
                return;
        }
        if (r < 0 || u > f->max) {
                char b[FORMAT_DURATION_MAX];
                ctx_error(ctx, v, "%s: expected a duration in 0..%s, got %s", path, format_duration(b, sizeof b, f->max),
                          DESCRIBE(v));
                return;
        }
        c->workers.ready = READY_DELAY;
        c->workers.ready_delay = u;
}

static void field_signal(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                         void *base, const char *path) {
        const char *s = scalar_value(v);
        int sig = s ? signal_from_string(s) : -EINVAL;

        if (sig < 0 || sig == SIGSTOP) {
                ctx_error(ctx, v, "%s: expected a signal name such as SIGTERM, got %s", path, DESCRIBE(v));
                return;
        }
        *FIELD_PTR(base, f, int) = sig;
}

/* "some 150ms 2s": kind, stall, window as in Documentation/accounting/psi.rst. */
static void field_trigger(struct ctx *ctx, const struct field *f _unused_, yaml_node_t *key _unused_,
                          yaml_node_t *v, void *base, const char *path) {
        struct memward_config *c = base;
        const char *s = scalar_value(v);
        char buf[128], *words[4], *save = NULL;
        size_t n = 0;
        enum psi_kind kind;
        usec_t stall, window;

        if (s && (s[0] == '\0' || is_plain_null(v))) {
                c->pressure.enabled = false;
                c->pressure.kind = PSI_SOME;
                c->pressure.stall = c->pressure.window = 0;
                return;
        }
        if (!s || strlen(s) >= sizeof buf)
                goto bad;

        strcpy(buf, s);
        for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
                if (n == ELEMENTSOF(words))
                        goto bad;
                words[n++] = w;
        }
        if (n != 3)
                goto bad;

        if (streq(words[0], "some"))
                kind = PSI_SOME;
        else if (streq(words[0], "full"))
                kind = PSI_FULL;
        else
                goto bad;
        if (parse_duration(words[1], &stall) < 0 || parse_duration(words[2], &window) < 0)
                goto bad;

        if (window < 500 * USEC_PER_MSEC || window > 10 * USEC_PER_SEC) {
                ctx_error(ctx, v, "%s: the window must be in 500ms..10s, got %s", path, DESCRIBE(v));
                return;
        }
        if (stall == 0 || stall > window) {
                ctx_error(ctx, v, "%s: the stall must be > 0 and <= the window, got %s", path, DESCRIBE(v));
                return;
        }

        c->pressure.enabled = true;
        c->pressure.kind = kind;
        c->pressure.stall = stall;
        c->pressure.window = window;
        return;
bad:
        ctx_error(ctx, v, "%s: expected \"\" (off) or \"some|full <stall> <window>\" (e.g. \"some 150ms 2s\"), got %s",
                  path, DESCRIBE(v));
}

static void field_command(struct ctx *ctx, const struct field *f _unused_, yaml_node_t *key _unused_,
                          yaml_node_t *v, void *base, const char *path) {
        struct memward_config *c = base;
        _cleanup_strv_free_ char **l = NULL;
        unsigned errors = ctx->n_errors;
        size_t n;

        if (v->type != YAML_SEQUENCE_NODE) {
                ctx_error(ctx, v, "%s: expected a list of strings, got %s", path, DESCRIBE(v));
                return;
        }
        n = (size_t) (v->data.sequence.items.top - v->data.sequence.items.start);
        if (n == 0) {
                ctx_error(ctx, v, "%s: expected a non-empty list of strings, got an empty list", path);
                return;
        }
        if (n > COMMAND_WORDS_MAX) {
                ctx_error(ctx, v, "%s: at most %u words are supported", path, COMMAND_WORDS_MAX);
                return;
        }

        l = calloc(n + 1, sizeof *l);
        if (!l) {
                ctx->error = -ENOMEM;
                return;
        }
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item = yaml_document_get_node(ctx->doc, v->data.sequence.items.start[i]);
                char p[PATH_BUF];
                const char *s;

                snprintf(p, sizeof p, "%s[%zu]", path, i);
                s = get_string(ctx, item, p);
                if (!s)
                        continue;
                if (i == 0 && s[0] == '\0') {
                        ctx_error(ctx, item, "%s: the program name must not be empty", p);
                        continue;
                }
                /* Slots of bad words stay NULL; the list is dropped below anyway. */
                l[i] = strdup(s);
                if (!l[i]) {
                        ctx->error = -ENOMEM;
                        return;
                }
        }
        if (ctx->n_errors == errors)
                strv_replace(&c->workers.command, TAKE_PTR(l));
        else
                for (size_t i = 0; i < n; i++)
                        free(TAKE_PTR(l[i])); /* strv_free() would stop at the first hole */
}

static void field_directory(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                            void *base, const char *path) {
        char **target = FIELD_PTR(base, f, char *);
        const char *s = get_string(ctx, v, path);
        char *abs;

        if (!s)
                return;
        if (s[0] == '\0') {
                ctx_error(ctx, v, "%s: must not be empty", path);
                return;
        }
        abs = path_make_absolute(ctx->base_dir, s);
        if (!abs) {
                ctx->error = -ENOMEM;
                return;
        }
        free(*target);
        *target = abs;
}

static bool env_name_is_valid(const char *s) {
        if (!s || !(isalpha((unsigned char) s[0]) || s[0] == '_'))
                return false;
        for (const char *p = s + 1; *p; p++)
                if (!(isalnum((unsigned char) *p) || *p == '_'))
                        return false;
        return true;
}

/* Variables memward sets itself for every worker. */
static const char *const env_reserved[] = {
        "LISTEN_FDS",    "LISTEN_PID",    "LISTEN_FDNAMES",    "NOTIFY_SOCKET",
        "WATCHDOG_USEC", "WATCHDOG_PID",  "MEMWARD_WORKER_ID", "MEMWARD_WORKER_GENERATION",
        "MEMWARD_CONTROL_FD", "MEMWARD_TEMPLATE_GENERATION", "MEMWARD_PROTOCOL", "MEMWARD_MAX_REQUESTS",
};

static void field_env(struct ctx *ctx, const struct field *f _unused_, yaml_node_t *key _unused_, yaml_node_t *v,
                      void *base, const char *path) {
        struct memward_config *c = base;
        _cleanup_strv_free_ char **l = NULL;
        unsigned errors = ctx->n_errors;
        size_t n, k = 0;

        if (is_plain_null(v))
                n = 0;
        else if (v->type != YAML_MAPPING_NODE) {
                ctx_error(ctx, v, "%s: expected a mapping of variable names to strings, got %s", path, DESCRIBE(v));
                return;
        } else
                n = (size_t) (v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        if (n > ENV_VARS_MAX) {
                ctx_error(ctx, v, "%s: at most %u variables are supported", path, ENV_VARS_MAX);
                return;
        }

        l = calloc(n + 1, sizeof *l);
        if (!l) {
                ctx->error = -ENOMEM;
                return;
        }
        for (size_t i = 0; i < n; i++) {
                yaml_node_pair_t *pair = &v->data.mapping.pairs.start[i];
                yaml_node_t *kn = yaml_document_get_node(ctx->doc, pair->key);
                yaml_node_t *vn = yaml_document_get_node(ctx->doc, pair->value);
                const char *name = scalar_value(kn), *value;
                char p[PATH_BUF];
                bool bad = false;

                if (!env_name_is_valid(name)) {
                        ctx_error(ctx, kn, "%s: invalid variable name %s", path, DESCRIBE(kn));
                        continue;
                }
                path_append(p, sizeof p, path, name);

                for (size_t j = 0; j < ELEMENTSOF(env_reserved); j++)
                        if (streq(name, env_reserved[j])) {
                                ctx_error(ctx, kn, "%s: reserved, memward sets it for each worker", p);
                                bad = true;
                        }
                for (size_t j = 0; !bad && j < i; j++) {
                        yaml_node_t *prev = yaml_document_get_node(ctx->doc, v->data.mapping.pairs.start[j].key);
                        const char *pn = scalar_value(prev);
                        if (pn && streq(pn, name)) {
                                ctx_error(ctx, kn, "%s: duplicate key (first at line %u)", p, node_line(prev));
                                bad = true;
                        }
                }
                if (bad)
                        continue;

                value = get_string(ctx, vn, p);
                if (!value)
                        continue;
                if (asprintf(&l[k], "%s=%s", name, value) < 0) {
                        l[k] = NULL;
                        ctx->error = -ENOMEM;
                        return;
                }
                k++;
        }
        if (ctx->n_errors == errors)
                strv_replace(&c->workers.env, TAKE_PTR(l));
}

static void field_string(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                         void *base, const char *path) {
        char **target = FIELD_PTR(base, f, char *);
        const char *s = get_string(ctx, v, path);
        char *copy;

        if (!s)
                return;
        copy = strdup(s);
        if (!copy) {
                ctx->error = -ENOMEM;
                return;
        }
        free(*target);
        *target = copy;
}

/* LISTEN_FDNAMES entries: sd_listen_fds_with_names() splits on ':', so no ':' here. */
static bool listen_name_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n < 1 || n > LISTEN_NAME_MAX)
                return false;
        for (const char *p = s; *p; p++)
                if (!(isalnum((unsigned char) *p) || strchr("_.-", *p)))
                        return false;
        return true;
}

static void field_listen_name(struct ctx *ctx, const struct field *f, yaml_node_t *key, yaml_node_t *v,
                              void *base, const char *path) {
        const char *s = get_string(ctx, v, path);

        if (!s)
                return;
        if (!listen_name_is_valid(s)) {
                ctx_error(ctx, v, "%s: expected 1..255 characters out of A-Z a-z 0-9 _ . -, got %s", path,
                          DESCRIBE(v));
                return;
        }
        field_string(ctx, f, key, v, base, path);
}

/* ---- users, groups and modes ------------------------------------------------------- */

/* The most a passwd or group entry may take: a group with thousands of members is big. */
#define NSS_BUFFER_MAX (1024U * 1024U)

/* A uid or gid written as a number: decimal digits, below the (uid_t) -1 that chown()
 * reads as "no change". */
static bool parse_id(const char *s, uint32_t *ret) {
        uint64_t n = 0;

        if (!s[0] || strlen(s) > 10 || strspn(s, "0123456789") != strlen(s))
                return false;
        for (const char *p = s; *p; p++)
                n = n * 10 + (uint64_t) (*p - '0');
        if (n >= UINT32_MAX)
                return false;
        *ret = (uint32_t) n;
        return true;
}

/* POSIX lets the _r functions say "no such entry" with these as well as with 0. */
static bool nss_not_found(int r) {
        return r == 0 || r == ENOENT || r == ESRCH || r == EBADF || r == EPERM;
}

/* Looks s up as a user: a name, or a number (which needs no entry). Returns 1 with *ret_uid
 * and, when there is an entry, *ret_name (its name, to be freed) and *ret_gid (its primary
 * group); 0 when no such user; a negative errno when the lookup itself failed. */
static int lookup_user(const char *s, uid_t *ret_uid, char **ret_name, gid_t *ret_gid) {
        _cleanup_free_ char *buf = NULL;
        struct passwd pw, *result = NULL;
        uint32_t id;
        bool numeric = parse_id(s, &id);
        int r;

        for (size_t size = 4096;; size *= 2) {
                char *b = realloc(buf, size);
                if (!b)
                        return -ENOMEM;
                buf = b;
                r = numeric ? getpwuid_r((uid_t) id, &pw, buf, size, &result)
                            : getpwnam_r(s, &pw, buf, size, &result);
                if (r != ERANGE || size >= NSS_BUFFER_MAX)
                        break;
        }
        *ret_name = NULL;
        if (result) {
                *ret_name = strdup(pw.pw_name);
                if (!*ret_name)
                        return -ENOMEM;
                *ret_uid = pw.pw_uid;
                *ret_gid = pw.pw_gid;
                return 1;
        }
        if (!nss_not_found(r))
                return -r;
        if (numeric) {
                *ret_uid = (uid_t) id;
                return 1;
        }
        return 0;
}

/* Same for a group: 1 with *ret_gid, 0 when no such group, or a negative errno. */
static int lookup_group(const char *s, gid_t *ret_gid) {
        _cleanup_free_ char *buf = NULL;
        struct group gr, *result = NULL;
        uint32_t id;
        int r;

        if (parse_id(s, &id)) {
                *ret_gid = (gid_t) id;
                return 1;
        }
        for (size_t size = 4096;; size *= 2) {
                char *b = realloc(buf, size);
                if (!b)
                        return -ENOMEM;
                buf = b;
                r = getgrnam_r(s, &gr, buf, size, &result);
                if (r != ERANGE || size >= NSS_BUFFER_MAX)
                        break;
        }
        if (result) {
                *ret_gid = gr.gr_gid;
                return 1;
        }
        return nss_not_found(r) ? 0 : -r;
}

/* The string of a user or group key: "" and null mean unset (NULL is returned with
 * *ret_unset). */
static const char *get_name(struct ctx *ctx, yaml_node_t *v, const char *path, bool *ret_unset) {
        const char *s = scalar_value(v);

        *ret_unset = s && (s[0] == '\0' || is_plain_null(v));
        if (*ret_unset)
                return NULL;
        return get_string(ctx, v, path);
}

static void set_string(struct ctx *ctx, char **target, const char *s) {
        char *copy = NULL;

        if (s && !(copy = strdup(s))) {
                ctx->error = -ENOMEM;
                return;
        }
        free(*target);
        *target = copy;
}

/* workers.user: a name or a uid. Its primary group and supplementary groups are found
 * once the whole file is read (resolve_credentials()), as workers.group may follow. */
static void field_user(struct ctx *ctx, const struct field *f _unused_, yaml_node_t *key _unused_, yaml_node_t *v,
                       void *base, const char *path) {
        struct memward_config *c = base;
        _cleanup_free_ char *name = NULL;
        bool unset;
        uid_t uid = 0;
        gid_t gid = 0;
        const char *s = get_name(ctx, v, path, &unset);
        int r;

        if (unset) {
                set_string(ctx, &c->workers.user, NULL);
                c->workers.credentials.set_uid = false;
                return;
        }
        if (!s)
                return;
        r = lookup_user(s, &uid, &name, &gid);
        if (r == -ENOMEM) {
                ctx->error = r;
                return;
        }
        if (r < 0) {
                ctx_error(ctx, v, "%s: cannot look up user %s: %s", path, DESCRIBE(v), strerror(-r));
                return;
        }
        if (r == 0) {
                ctx_error(ctx, v, "%s: no such user %s (a name from the passwd database, or a uid)", path,
                          DESCRIBE(v));
                return;
        }
        set_string(ctx, &c->workers.user, s);
        c->workers.credentials.set_uid = true;
        c->workers.credentials.uid = uid;
        free(ctx->user_name);
        ctx->user_name = TAKE_PTR(name);
        ctx->user_gid = gid;
}

/* A group name or gid: workers.group, and the group of a unix socket (offset_id). */
static bool get_group(struct ctx *ctx, yaml_node_t *v, const char *path, const char *s, gid_t *ret) {
        int r = lookup_group(s, ret);

        if (r == -ENOMEM)
                ctx->error = r;
        else if (r < 0)
                ctx_error(ctx, v, "%s: cannot look up group %s: %s", path, DESCRIBE(v), strerror(-r));
        else if (r == 0)
                ctx_error(ctx, v, "%s: no such group %s (a name from the group database, or a gid)", path,
                          DESCRIBE(v));
        return r > 0;
}

static void field_group(struct ctx *ctx, const struct field *f _unused_, yaml_node_t *key _unused_, yaml_node_t *v,
                        void *base, const char *path) {
        struct memward_config *c = base;
        bool unset;
        gid_t gid;
        const char *s = get_name(ctx, v, path, &unset);

        if (unset) {
                set_string(ctx, &c->workers.group, NULL);
                c->workers.credentials.set_gid = false;
                return;
        }
        if (!s || !get_group(ctx, v, path, s, &gid))
                return;
        set_string(ctx, &c->workers.group, s);
        c->workers.credentials.set_gid = true;
        c->workers.credentials.gid = gid;
}

/* The owner of a unix socket file: the name at offset, the uid at offset_id. */
static void field_socket_owner(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                               void *base, const char *path) {
        uid_t *target = (uid_t *) ((char *) base + f->offset_id);
        _cleanup_free_ char *name = NULL;
        bool unset;
        uid_t uid = 0;
        gid_t gid;
        const char *s = get_name(ctx, v, path, &unset);
        int r;

        if (unset) {
                set_string(ctx, FIELD_PTR(base, f, char *), NULL);
                *target = (uid_t) -1;
                return;
        }
        if (!s)
                return;
        r = lookup_user(s, &uid, &name, &gid);
        if (r == -ENOMEM)
                ctx->error = r;
        else if (r < 0)
                ctx_error(ctx, v, "%s: cannot look up user %s: %s", path, DESCRIBE(v), strerror(-r));
        else if (r == 0)
                ctx_error(ctx, v, "%s: no such user %s (a name from the passwd database, or a uid)", path,
                          DESCRIBE(v));
        else {
                set_string(ctx, FIELD_PTR(base, f, char *), s);
                *target = uid;
        }
}

static void field_socket_group(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                               void *base, const char *path) {
        gid_t *target = (gid_t *) ((char *) base + f->offset_id);
        bool unset;
        gid_t gid;
        const char *s = get_name(ctx, v, path, &unset);

        if (unset) {
                set_string(ctx, FIELD_PTR(base, f, char *), NULL);
                *target = (gid_t) -1;
                return;
        }
        if (!s || !get_group(ctx, v, path, s, &gid))
                return;
        set_string(ctx, FIELD_PTR(base, f, char *), s);
        *target = gid;
}

/* Permission bits written in octal, with the leading 0 that says so: "0027", "027", "0".
 * YAML itself gives no safe way: 1.1 reads a plain 0027 as octal, 1.2 as decimal 27, and
 * a bare 27 or 644 would be read as octal by chmod but as decimal by any YAML tool. The
 * text is the same quoted or not, and both are accepted; "0o027" as well. */
static bool parse_octal_mode(const char *s, unsigned *ret) {
        unsigned n = 0;

        if (s[0] != '0')
                return false;
        if (s[1] == 'o' && s[2])
                s += 2;
        if (strlen(s) > 4 || strspn(s, "01234567") != strlen(s))
                return false;
        for (const char *p = s; *p; p++)
                n = n * 8 + (unsigned) (*p - '0');
        if (n > 0777)
                return false;
        *ret = n;
        return true;
}

static void field_umask(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                        void *base, const char *path) {
        const char *s = scalar_value(v);
        unsigned n;

        if (s && (s[0] == '\0' || is_plain_null(v))) {
                *FIELD_PTR(base, f, int) = -1;
                return;
        }
        if (!s || !parse_octal_mode(s, &n)) {
                ctx_error(ctx, v,
                          "%s: expected \"\" (inherit memward's) or an octal umask of at most 0777 with its "
                          "leading 0 (e.g. \"0027\"), got %s",
                          path, DESCRIBE(v));
                return;
        }
        *FIELD_PTR(base, f, int) = (int) n;
}

static void field_socket_mode(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                              void *base, const char *path) {
        const char *s = scalar_value(v);
        unsigned n;

        if (!s || !parse_octal_mode(s, &n)) {
                ctx_error(ctx, v, "%s: expected an octal mode of at most 0777 with its leading 0 (e.g. \"0660\"), got %s",
                          path, DESCRIBE(v));
                return;
        }
        *FIELD_PTR(base, f, mode_t) = (mode_t) n;
}

/* Once the file is read: the group the worker gets (workers.group, else the user's
 * primary group) and its supplementary groups, as initgroups(user, group) would set them.
 * Without a user that has a passwd entry, the one supplementary group is the group. */
static void resolve_credentials(struct ctx *ctx, struct memward_config *c) {
        struct spawn_credentials *cr = &c->workers.credentials;

        if (!cr->set_uid && !cr->set_gid)
                return;
        if (!cr->set_gid) {
                if (!ctx->user_name) {
                        ctx_error(ctx, ctx->tracked[TRACK_USER],
                                  "workers.user: uid %u has no passwd entry, so no primary group: set workers.group",
                                  (unsigned) cr->uid);
                        return;
                }
                cr->gid = ctx->user_gid;
                cr->set_gid = true;
        }
        if (cr->set_uid && ctx->user_name) {
                int n = (int) SPAWN_GROUPS_MAX;
                if (getgrouplist(ctx->user_name, cr->gid, cr->groups, &n) < 0) {
                        ctx_error(ctx, ctx->tracked[TRACK_USER],
                                  "workers.user: \"%s\" is in %d groups, more than the %u memward supports",
                                  ctx->user_name, n, SPAWN_GROUPS_MAX);
                        return;
                }
                cr->n_groups = (size_t) n;
        } else {
                cr->groups[0] = cr->gid;
                cr->n_groups = 1;
        }
}

/* metrics.mode, .owner and .group are about the socket file of a unix: path. */
static void check_metrics_socket(struct ctx *ctx, const struct memward_config *c) {
        static const struct {
                enum track track;
                const char *key;
        } keys[] = {
                { TRACK_METRICS_MODE, "mode" },
                { TRACK_METRICS_OWNER, "owner" },
                { TRACK_METRICS_GROUP, "group" },
        };
        struct listen_address a;
        bool file = c->metrics.listen && listen_address_parse_host_port(c->metrics.listen, &a) >= 0 &&
                    listen_address_unix_path(&a);

        for (size_t i = 0; !file && i < ELEMENTSOF(keys); i++)
                if (ctx->tracked[keys[i].track])
                        ctx_error(ctx, ctx->tracked[keys[i].track],
                                  "metrics.%s: only for a unix: socket path, and metrics.listen is %s", keys[i].key,
                                  !c->metrics.listen ? "off"
                                  : startswith_lit(c->metrics.listen, "unix:@") ? "an abstract socket (no file)"
                                                                                 : "not unix:");
}

static void parse_mapping(struct ctx *ctx, yaml_node_t *node, const char *path, const struct field *table,
                          void *base, yaml_node_t **ret_found);

static const struct field listen_fields[] = {
        { .key = "address", .parse = field_string, .offset = offsetof(struct listen_config, address) },
        { .key = "name", .parse = field_listen_name, .offset = offsetof(struct listen_config, name) },
        { .key = "backlog", .parse = field_int, .offset = offsetof(struct listen_config, backlog),
          .min = 1, .max = 65535 },
        /* Who may connect to a unix socket file (unix_socket_access in listen.h), from
         * LISTEN_UNIX_FIELDS_FIRST up to the TCP options. */
        { .key = "mode", .parse = field_socket_mode,
          .offset = offsetof(struct listen_config, access) + offsetof(struct unix_socket_access, mode) },
        { .key = "owner", .parse = field_socket_owner, .offset = offsetof(struct listen_config, owner),
          .offset_id = offsetof(struct listen_config, access) + offsetof(struct unix_socket_access, uid) },
        { .key = "group", .parse = field_socket_group, .offset = offsetof(struct listen_config, group),
          .offset_id = offsetof(struct listen_config, access) + offsetof(struct unix_socket_access, gid) },
        /* The TCP options a web server's listener carries (listen_options in address.h);
         * keep in the order of LISTEN_TCP_FIELDS_FIRST.. below. */
        { .key = "nodelay", .parse = field_bool,
          .offset = offsetof(struct listen_config, options) + offsetof(struct listen_options, nodelay) },
        { .key = "keepalive", .parse = field_bool,
          .offset = offsetof(struct listen_config, options) + offsetof(struct listen_options, keepalive) },
        { .key = "defer_accept", .parse = field_duration,
          .offset = offsetof(struct listen_config, options) + offsetof(struct listen_options, defer_accept),
          .max = LISTEN_DEFER_ACCEPT_MAX },
        {}
};
#define LISTEN_UNIX_FIELDS_FIRST 3U
#define LISTEN_TCP_FIELDS_FIRST 6U

static int listen_append(struct memward_config *c, struct listen_config *l) {
        struct listen_config *a;

        a = reallocarray(c->listen, c->n_listen + 1, sizeof *a);
        if (!a)
                return -ENOMEM;
        c->listen = a;
        c->listen[c->n_listen++] = *l;
        *l = (struct listen_config) {};
        return 0;
}

static void listen_config_done(struct listen_config *l) {
        free(l->address);
        free(l->name);
        free(l->owner);
        free(l->group);
        *l = (struct listen_config) {};
}

static void listen_config_free_all(struct memward_config *c) {
        for (size_t i = 0; i < c->n_listen; i++)
                listen_config_done(&c->listen[i]);
        free(c->listen);
        c->listen = NULL;
        c->n_listen = 0;
}

static bool listen_address_equal(const struct listen_address *a, const struct listen_address *b) {
        return listen_address_conflict(a, b) == LISTEN_CONFLICT_SAME;
}

/* Why two addresses that are not the same still collide. */
#define LISTEN_OVERLAP_WHY                                                                              \
        " on its port (a wildcard takes every address of its family, and [::] IPv4 too unless "        \
        "net.ipv6.bindv6only=1)"

static void field_listen(struct ctx *ctx, const struct field *f _unused_, yaml_node_t *key _unused_,
                         yaml_node_t *v, void *base, const char *path) {
        struct memward_config *c = base;
        struct listen_address parsed[CONFIG_LISTEN_MAX] = {};
        size_t n;

        if (is_plain_null(v))
                return;
        if (v->type != YAML_SEQUENCE_NODE) {
                ctx_error(ctx, v, "%s: expected a list of mappings, got %s", path, DESCRIBE(v));
                return;
        }

        n = (size_t) (v->data.sequence.items.top - v->data.sequence.items.start);
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item = yaml_document_get_node(ctx->doc, v->data.sequence.items.start[i]);
                yaml_node_t *found[FIELDS_MAX] = {};
                struct listen_config l = { .backlog = DEFAULT_BACKLOG, .options = LISTEN_OPTIONS_DEFAULT,
                                          .access = UNIX_SOCKET_ACCESS_DEFAULT };
                struct listen_address a;
                char p[PATH_BUF];
                unsigned errors = ctx->n_errors;
                int r;

                if (i >= CONFIG_LISTEN_MAX) {
                        ctx_error(ctx, item, "%s: at most %u addresses are supported", path, CONFIG_LISTEN_MAX);
                        break;
                }
                snprintf(p, sizeof p, "%s[%zu]", path, i);
                if (item->type != YAML_MAPPING_NODE) {
                        ctx_error(ctx, item, "%s: expected a mapping, got %s", p, DESCRIBE(item));
                        continue;
                }

                parse_mapping(ctx, item, p, listen_fields, &l, found);
                if (!found[0])
                        ctx_error(ctx, item, "%s.address: required", p);
                else if (l.address) {
                        char *abs = listen_address_make_absolute(ctx->base_dir, l.address);
                        if (!abs) {
                                listen_config_done(&l);
                                ctx->error = -ENOMEM;
                                return;
                        }
                        free(l.address);
                        l.address = abs;

                        r = listen_address_parse(l.address, &a);
                        if (r == -ERANGE)
                                ctx_error(ctx, found[0], "%s.address: the port must be in 1..65535, got %s", p,
                                          DESCRIBE(found[0]));
                        else if (r == -ENAMETOOLONG)
                                ctx_error(ctx, found[0],
                                          "%s.address: the socket path is longer than %zu bytes, got %s", p,
                                          sizeof a.sockaddr.un.sun_path - 1, DESCRIBE(found[0]));
                        else if (r < 0)
                                ctx_error(ctx, found[0],
                                          "%s.address: expected tcp://HOST:PORT, tcp://[IPV6]:PORT or unix:PATH, got %s",
                                          p, DESCRIBE(found[0]));
                        else {
                                if (listen_address_unix_path(&a) || a.sockaddr.sa.sa_family == AF_UNIX)
                                        for (size_t k = LISTEN_TCP_FIELDS_FIRST; listen_fields[k].key; k++)
                                                if (found[k])
                                                        ctx_error(ctx, found[k],
                                                                  "%s.%s: a TCP option, but the address is unix:", p,
                                                                  listen_fields[k].key);
                                if (!listen_address_unix_path(&a))
                                        for (size_t k = LISTEN_UNIX_FIELDS_FIRST; k < LISTEN_TCP_FIELDS_FIRST; k++)
                                                if (found[k])
                                                        ctx_error(ctx, found[k], "%s.%s: only for a unix: socket path, "
                                                                  "and the address is %s", p, listen_fields[k].key,
                                                                  a.sockaddr.sa.sa_family == AF_UNIX
                                                                          ? "an abstract socket (no file)"
                                                                          : "TCP");
                                parsed[i] = a;
                                for (size_t j = 0; j < i; j++) {
                                        enum listen_conflict k = parsed[j].length > 0
                                                                         ? listen_address_conflict(&parsed[j], &a)
                                                                         : LISTEN_CONFLICT_NONE;
                                        if (k == LISTEN_CONFLICT_NONE)
                                                continue;
                                        ctx_error(ctx, found[0], "%s.address: %s %s[%zu]%s", p,
                                                  k == LISTEN_CONFLICT_SAME ? "same address as" : "overlaps", path, j,
                                                  k == LISTEN_CONFLICT_SAME ? "" : LISTEN_OVERLAP_WHY);
                                        break;
                                }
                        }
                }
                if (ctx->n_errors != errors) {
                        parsed[i].length = 0;
                        listen_config_done(&l);
                        continue;
                }
                if (listen_append(c, &l) < 0) {
                        listen_config_done(&l);
                        ctx->error = -ENOMEM;
                        return;
                }
        }
}

static void field_section(struct ctx *ctx, const struct field *f, yaml_node_t *key _unused_, yaml_node_t *v,
                          void *base, const char *path) {
        /* "memory:" with every key commented out is an empty section, not an error. */
        if (is_plain_null(v))
                return;
        if (v->type != YAML_MAPPING_NODE) {
                ctx_error(ctx, v, "%s: expected a mapping, got %s", path, DESCRIBE(v));
                return;
        }
        parse_mapping(ctx, v, path, f->sub, base, NULL);
}

/* metrics.listen: "" (or null) turns the endpoint off; a unix: path is made absolute
 * here, like listen: entries, so a later chdir cannot change what it means. */
static void field_metrics_listen(struct ctx *ctx, const struct field *f _unused_, yaml_node_t *key _unused_,
                                 yaml_node_t *v, void *base, const char *path) {
        struct memward_config *c = base;
        const char *s = scalar_value(v);
        _cleanup_free_ char *abs = NULL;
        struct listen_address a;
        int r;

        if (s && (s[0] == '\0' || is_plain_null(v))) {
                free(c->metrics.listen);
                c->metrics.listen = NULL;
                return;
        }
        s = get_string(ctx, v, path);
        if (!s)
                return;
        abs = listen_address_make_absolute(ctx->base_dir, s);
        if (!abs) {
                ctx->error = -ENOMEM;
                return;
        }
        r = listen_address_parse_host_port(abs, &a);
        if (r == -ERANGE)
                ctx_error(ctx, v, "%s: the port must be in 1..65535, got %s", path, DESCRIBE(v));
        else if (r == -ENAMETOOLONG)
                ctx_error(ctx, v, "%s: the socket path is longer than %zu bytes, got %s", path,
                          sizeof a.sockaddr.un.sun_path - 1, DESCRIBE(v));
        else if (r < 0)
                ctx_error(ctx, v, "%s: expected \"\" (off), HOST:PORT, [IPV6]:PORT or unix:PATH, got %s", path,
                          DESCRIBE(v));
        else {
                free(c->metrics.listen);
                c->metrics.listen = TAKE_PTR(abs);
        }
}

/* ---- tables ------------------------------------------------------------------------ */

#define CFG(member) offsetof(struct memward_config, member)

static const struct field backoff_fields[] = {
        { .key = "initial", .parse = field_duration, .offset = CFG(workers.backoff_initial),
          .min = USEC_PER_MSEC, .max = DURATION_MAX, .track = TRACK_BACKOFF_INITIAL },
        { .key = "max", .parse = field_duration, .offset = CFG(workers.backoff_max),
          .min = USEC_PER_MSEC, .max = DURATION_MAX, .track = TRACK_BACKOFF_MAX },
        {}
};

static const struct field workers_fields[] = {
        { .key = "count", .parse = field_unsigned, .offset = CFG(workers.count),
          .min = 1, .max = CONFIG_WORKERS_MAX },
        { .key = "mode", .parse = field_enum, .offset = CFG(workers.mode), .names = workers_mode_names },
        { .key = "command", .parse = field_command },
        { .key = "directory", .parse = field_directory, .offset = CFG(workers.directory) },
        { .key = "env", .parse = field_env },
        { .key = "ready", .parse = field_ready, .max = DURATION_MAX, .track = TRACK_READY },
        { .key = "ready_timeout", .parse = field_duration, .offset = CFG(workers.ready_timeout),
          .min = USEC_PER_MSEC, .max = DURATION_MAX, .track = TRACK_READY_TIMEOUT },
        { .key = "stop_signal", .parse = field_signal, .offset = CFG(workers.stop_signal) },
        { .key = "graceful_timeout", .parse = field_duration, .offset = CFG(workers.graceful_timeout),
          .max = DURATION_MAX },
        { .key = "watchdog", .parse = field_duration, .offset = CFG(workers.watchdog), .max = DURATION_MAX },
        { .key = "fork_timeout", .parse = field_duration, .offset = CFG(workers.fork_timeout),
          .min = USEC_PER_MSEC, .max = DURATION_MAX },
        { .key = "restart_backoff", .parse = field_section, .sub = backoff_fields },
        { .key = "start_limit_burst", .parse = field_unsigned, .offset = CFG(workers.start_limit_burst),
          .max = CONFIG_START_LIMIT_BURST_MAX },
        { .key = "start_limit_interval", .parse = field_duration, .offset = CFG(workers.start_limit_interval),
          .min = USEC_PER_MSEC, .max = DURATION_MAX },
        { .key = "user", .parse = field_user, .track = TRACK_USER },
        { .key = "group", .parse = field_group, .track = TRACK_GROUP },
        { .key = "umask", .parse = field_umask, .offset = CFG(workers.umask) },
        {}
};

static const struct field recycle_fields[] = {
        { .key = "max_requests", .parse = field_u64, .offset = CFG(recycle.max_requests), .max = REQUESTS_MAX },
        { .key = "max_requests_jitter", .parse = field_u64, .offset = CFG(recycle.max_requests_jitter),
          .max = REQUESTS_MAX },
        { .key = "max_lifetime", .parse = field_duration, .offset = CFG(recycle.max_lifetime),
          .max = DURATION_MAX },
        { .key = "max_lifetime_jitter", .parse = field_duration, .offset = CFG(recycle.max_lifetime_jitter),
          .max = DURATION_MAX },
        { .key = "max_concurrent", .parse = field_unsigned, .offset = CFG(recycle.max_concurrent),
          .min = 1, .max = CONFIG_WORKERS_MAX },
        { .key = "memory_stop_first", .parse = field_bool, .offset = CFG(recycle.memory_stop_first) },
        {}
};

static const struct field log_fields[] = {
        { .key = "level", .parse = field_enum, .offset = CFG(log.level), .names = log_level_names },
        { .key = "format", .parse = field_enum, .offset = CFG(log.format), .names = log_format_names },
        {}
};

static const struct field memory_fields[] = {
        { .key = "metric", .parse = field_enum, .offset = CFG(memory.metric), .names = memory_metric_names },
        { .key = "sample_interval", .parse = field_duration, .offset = CFG(memory.sample_interval),
          .min = 100 * USEC_PER_MSEC, .max = 60 * USEC_PER_SEC, .track = TRACK_SAMPLE_INTERVAL },
        { .key = "worker_high", .parse = field_size_or_percent, .offset = CFG(memory.worker_high),
          .track = TRACK_WORKER_HIGH },
        { .key = "worker_max", .parse = field_size_or_percent, .offset = CFG(memory.worker_max),
          .track = TRACK_WORKER_MAX },
        { .key = "group_high", .parse = field_size_or_percent, .offset = CFG(memory.group_high) },
        { .key = "retained_max", .parse = field_size, .offset = CFG(memory.retained_max) },
        { .key = "retained_window", .parse = field_duration, .offset = CFG(memory.retained_window),
          .min = 100 * USEC_PER_MSEC, .max = RETAINED_WINDOW_MAX, .track = TRACK_RETAINED_WINDOW },
        { .key = "growth_max", .parse = field_growth, .offset = CFG(memory.growth_max) },
        { .key = "warmup", .parse = field_duration, .offset = CFG(memory.warmup), .max = DURATION_MAX },
        { .key = "runtime_hints", .parse = field_bool, .offset = CFG(memory.runtime_hints) },
        { .key = "retained_requests", .parse = field_unsigned, .offset = CFG(memory.retained_requests),
          .max = CONFIG_RETAINED_REQUESTS_MAX },
        { .key = "boundary_min_interval", .parse = field_duration, .offset = CFG(memory.boundary_min_interval),
          .max = 60 * USEC_PER_SEC },
        {}
};

static const struct field pressure_fields[] = {
        { .key = "trigger", .parse = field_trigger },
        { .key = "cooldown", .parse = field_duration, .offset = CFG(pressure.cooldown), .max = DURATION_MAX },
        { .key = "min_retained", .parse = field_size, .offset = CFG(pressure.min_retained) },
        {}
};

static const struct field metrics_fields[] = {
        { .key = "listen", .parse = field_metrics_listen, .track = TRACK_METRICS_LISTEN },
        { .key = "max_connections", .parse = field_unsigned, .offset = CFG(metrics.max_connections),
          .min = 1, .max = METRICS_MAX_CONNECTIONS_MAX },
        { .key = "timeout", .parse = field_duration, .offset = CFG(metrics.timeout), .min = METRICS_TIMEOUT_MIN,
          .max = METRICS_TIMEOUT_MAX },
        { .key = "mode", .parse = field_socket_mode, .offset = CFG(metrics.access.mode), .track = TRACK_METRICS_MODE },
        { .key = "owner", .parse = field_socket_owner, .offset = CFG(metrics.owner),
          .offset_id = CFG(metrics.access.uid), .track = TRACK_METRICS_OWNER },
        { .key = "group", .parse = field_socket_group, .offset = CFG(metrics.group),
          .offset_id = CFG(metrics.access.gid), .track = TRACK_METRICS_GROUP },
        {}
};

static const struct field top_fields[] = {
        { .key = "workers", .parse = field_section, .sub = workers_fields },
        { .key = "listen", .parse = field_listen },
        { .key = "recycle", .parse = field_section, .sub = recycle_fields },
        { .key = "log", .parse = field_section, .sub = log_fields },
        { .key = "memory", .parse = field_section, .sub = memory_fields },
        { .key = "pressure", .parse = field_section, .sub = pressure_fields },
        { .key = "metrics", .parse = field_section, .sub = metrics_fields },
        {}
};

/* Walks one mapping with its table. ret_found (FIELDS_MAX entries, optional) receives the
 * value node of each table row that was present. */
static void parse_mapping(struct ctx *ctx, yaml_node_t *node, const char *path, const struct field *table,
                          void *base, yaml_node_t **ret_found) {
        yaml_node_t *keys[FIELDS_MAX] = {};

        assert(node->type == YAML_MAPPING_NODE);

        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
                yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
                yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
                const struct field *f = NULL, *hint = NULL;
                size_t best = SIZE_MAX, idx;
                char p[PATH_BUF];
                const char *name;

                if (k->type != YAML_SCALAR_NODE) {
                        ctx_error(ctx, k, "%s%skeys must be strings, got %s", path, path[0] ? ": " : "", DESCRIBE(k));
                        continue;
                }
                name = (const char *) k->data.scalar.value;
                path_append(p, sizeof p, path, name);

                for (const struct field *t = table; t->key; t++) {
                        size_t d;

                        if (streq(t->key, name) && strlen(name) == k->data.scalar.length) {
                                f = t;
                                break;
                        }
                        d = levenshtein(name, t->key);
                        if (d < best) {
                                best = d;
                                hint = t;
                        }
                }
                if (!f) {
                        /* Suggest only what looks like a typo, not any short key. */
                        if (hint && best <= 2 && best < strlen(hint->key))
                                ctx_error(ctx, k, "%s: unknown key (did you mean \"%s\"?)", p, hint->key);
                        else
                                ctx_error(ctx, k, "%s: unknown key", p);
                        continue;
                }

                idx = (size_t) (f - table);
                assert(idx < FIELDS_MAX);
                if (keys[idx]) {
                        ctx_error(ctx, k, "%s: duplicate key (first at line %u)", p, node_line(keys[idx]));
                        continue;
                }
                keys[idx] = k;
                if (ret_found)
                        ret_found[idx] = v;
                if (f->track != TRACK_NONE)
                        ctx->tracked[f->track] = v;

                f->parse(ctx, f, k, v, base, p);
        }
}

/* ---- rules across keys ------------------------------------------------------------- */

static yaml_node_t *tracked(struct ctx *ctx, enum track a, enum track b) {
        return ctx->tracked[a] ?: ctx->tracked[b];
}

static bool size_or_percent_is_set(const struct size_or_percent *s) {
        return s->bytes > 0 || s->percent > 0;
}

static const char *format_size_or_percent(char *buf, size_t size, const struct size_or_percent *s);

/* Rules that hold between keys. Positions point at the key the user most likely has to
 * change; in config_validate() there is no document and the items have no position. */
static void check_rules(struct ctx *ctx, const struct memward_config *c) {
        char a[FORMAT_SIZE_MAX + FORMAT_DURATION_MAX], b[FORMAT_SIZE_MAX + FORMAT_DURATION_MAX];

        if (c->workers.backoff_initial > c->workers.backoff_max)
                ctx_error(ctx, tracked(ctx, TRACK_BACKOFF_MAX, TRACK_BACKOFF_INITIAL),
                          "workers.restart_backoff: initial (%s) must not be greater than max (%s)",
                          format_duration(a, sizeof a, c->workers.backoff_initial),
                          format_duration(b, sizeof b, c->workers.backoff_max));

        if (c->workers.ready == READY_DELAY && c->workers.ready_delay >= c->workers.ready_timeout)
                ctx_error(ctx, tracked(ctx, TRACK_READY, TRACK_READY_TIMEOUT),
                          "workers.ready: the delay (%s) must be shorter than workers.ready_timeout (%s)",
                          format_duration(a, sizeof a, c->workers.ready_delay),
                          format_duration(b, sizeof b, c->workers.ready_timeout));

        /* A floor is the minimum of the samples in the window: with one sample it is
         * just the latest reading, and a spike counts as retained. Only rules that use
         * floors care (retained, growth, and the choice of victim for the group). */
        bool floors_used = c->memory.retained_max > 0 || c->memory.growth_max > 0 ||
                           size_or_percent_is_set(&c->memory.group_high) || c->pressure.enabled;
        if (c->memory.retained_window < c->memory.sample_interval)
                ctx_error(ctx, tracked(ctx, TRACK_RETAINED_WINDOW, TRACK_SAMPLE_INTERVAL),
                          "memory.retained_window (%s) must not be shorter than memory.sample_interval (%s)",
                          format_duration(a, sizeof a, c->memory.retained_window),
                          format_duration(b, sizeof b, c->memory.sample_interval));
        else if (floors_used && c->memory.retained_window < 2 * c->memory.sample_interval)
                ctx_error(ctx, tracked(ctx, TRACK_RETAINED_WINDOW, TRACK_SAMPLE_INTERVAL),
                          "memory.retained_window (%s) must be at least twice memory.sample_interval (%s): "
                          "a floor over one sample is just the latest reading",
                          format_duration(a, sizeof a, c->memory.retained_window),
                          format_duration(b, sizeof b, c->memory.sample_interval));

        if (size_or_percent_is_set(&c->memory.worker_high) && size_or_percent_is_set(&c->memory.worker_max) &&
            (c->memory.worker_high.percent > 0) == (c->memory.worker_max.percent > 0) &&
            (c->memory.worker_high.bytes > c->memory.worker_max.bytes ||
             c->memory.worker_high.percent > c->memory.worker_max.percent))
                ctx_error(ctx, tracked(ctx, TRACK_WORKER_HIGH, TRACK_WORKER_MAX),
                          "memory.worker_high (%s) must not be greater than memory.worker_max (%s)",
                          format_size_or_percent(a, sizeof a, &c->memory.worker_high),
                          format_size_or_percent(b, sizeof b, &c->memory.worker_max));
}

/* ---- loading ----------------------------------------------------------------------- */

static void report_parser_error(struct ctx *ctx, const yaml_parser_t *parser, const char *text, size_t length) {
        unsigned line = 0, column = 0;

        switch (parser->error) {
        case YAML_MEMORY_ERROR:
                ctx->error = -ENOMEM;
                return;

        case YAML_READER_ERROR: {
                /* Reader errors carry a byte offset, not a mark. */
                size_t off = parser->problem_offset < length ? parser->problem_offset : length;
                line = 1;
                column = 1;
                for (size_t i = 0; i < off; i++) {
                        if (text[i] == '\n') {
                                line++;
                                column = 1;
                        } else if (((unsigned char) text[i] & 0xC0) != 0x80)
                                column++;
                }
                if (parser->problem_value >= 0)
                        ctx_error_at(ctx, line, column, "syntax error: %s (#%X)", parser->problem ?: "invalid input",
                                     (unsigned) parser->problem_value);
                else
                        ctx_error_at(ctx, line, column, "syntax error: %s", parser->problem ?: "invalid input");
                return;
        }

        default: {
                const yaml_mark_t *pm = &parser->problem_mark, *cm = &parser->context_mark;
                const char *problem = parser->problem ?: "invalid YAML";
                /* libyaml's words for a tab where YAML wants indentation are obscure. */
                const char *hint = pm->index < length && text[pm->index] == '\t' && !strstr(problem, "tab") ?
                                           ", YAML indents with spaces, not tabs" : "";

                line = (unsigned) pm->line + 1;
                column = (unsigned) pm->column + 1;
                if (!parser->context)
                        ctx_error_at(ctx, line, column, "syntax error: %s%s", problem, hint);
                else if (cm->line == pm->line && cm->column == pm->column)
                        ctx_error_at(ctx, line, column, "syntax error: %s (%s)%s", problem, parser->context, hint);
                else
                        ctx_error_at(ctx, line, column, "syntax error: %s (%s at line %u, column %u)%s", problem,
                                     parser->context, (unsigned) cm->line + 1, (unsigned) cm->column + 1, hint);
                return;
        }
        }
}

/* The event pass: syntax errors, anchors, aliases, several documents. */
/* libyaml's scanner takes time that grows with the square of the flow nesting depth
 * ("[[[[..."): 40,000 levels took 11.5 s, with the supervisor's loop stopped for a
 * SIGHUP. memward's own config nests three levels deep; the file is refused at the first
 * bracket past CONFIG_FLOW_DEPTH_MAX, in one linear pass, before libyaml sees it. Quoted
 * scalars and comments are skipped; a bracket inside a plain scalar ("a[1]") counts, so
 * the bound is generous. */
#define CONFIG_FLOW_DEPTH_MAX 64U

static void check_flow_depth(struct ctx *ctx, const char *text, size_t length) {
        unsigned depth = 0, line = 1, column = 1;
        char quote = 0;
        bool comment = false;

        for (size_t i = 0; i < length; i++, column++) {
                char ch = text[i];
                if (ch == '\n') {
                        line++;
                        column = 0;
                        comment = false;
                        continue;
                }
                if (comment)
                        continue;
                if (quote) {
                        if (quote == '"' && ch == '\\' && i + 1 < length && text[i + 1] != '\n') {
                                i++;
                                column++;
                        } else if (ch == quote) {
                                /* '' inside a single-quoted scalar is one quote, not the end. */
                                if (quote == '\'' && i + 1 < length && text[i + 1] == '\'') {
                                        i++;
                                        column++;
                                } else
                                        quote = 0;
                        }
                        continue;
                }
                switch (ch) {
                case '#':
                        comment = i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t' || text[i - 1] == '\n';
                        break;
                case '"':
                case '\'':
                        quote = ch;
                        break;
                case '[':
                case '{':
                        if (++depth > CONFIG_FLOW_DEPTH_MAX) {
                                ctx_error_at(ctx, line, column, "nested deeper than %u levels", CONFIG_FLOW_DEPTH_MAX);
                                return;
                        }
                        break;
                case ']':
                case '}':
                        if (depth > 0)
                                depth--;
                        break;
                default:
                        break;
                }
        }
}

static void prescan(struct ctx *ctx, const char *text, size_t length) {
        yaml_parser_t parser;
        unsigned documents = 0;

        if (!yaml_parser_initialize(&parser)) {
                ctx->error = -ENOMEM;
                return;
        }
        yaml_parser_set_input_string(&parser, (const unsigned char *) text, length);

        for (;;) {
                yaml_event_t ev;
                yaml_char_t *anchor = NULL;
                bool done = false;

                if (!yaml_parser_parse(&parser, &ev)) {
                        report_parser_error(ctx, &parser, text, length);
                        break;
                }

                switch (ev.type) {
                case YAML_DOCUMENT_START_EVENT:
                        if (++documents > 1) {
                                ctx_error_at(ctx, (unsigned) ev.start_mark.line + 1, (unsigned) ev.start_mark.column + 1,
                                             "only one YAML document is supported");
                                done = true;
                        }
                        break;
                case YAML_ALIAS_EVENT:
                        ctx_error_at(ctx, (unsigned) ev.start_mark.line + 1, (unsigned) ev.start_mark.column + 1,
                                     "YAML aliases are not supported");
                        break;
                case YAML_SCALAR_EVENT:
                        anchor = ev.data.scalar.anchor;
                        break;
                case YAML_SEQUENCE_START_EVENT:
                        anchor = ev.data.sequence_start.anchor;
                        break;
                case YAML_MAPPING_START_EVENT:
                        anchor = ev.data.mapping_start.anchor;
                        break;
                case YAML_STREAM_END_EVENT:
                        done = true;
                        break;
                default:
                        break;
                }
                if (anchor)
                        ctx_error_at(ctx, (unsigned) ev.start_mark.line + 1, (unsigned) ev.start_mark.column + 1,
                                     "YAML anchors are not supported");

                yaml_event_delete(&ev);
                if (done || ctx->error)
                        break;
        }

        yaml_parser_delete(&parser);
}

static void set_defaults(struct memward_config *c) {
        c->workers.count = DEFAULT_WORKERS;
        c->workers.ready = READY_NOTIFY;
        c->workers.ready_timeout = DEFAULT_READY_TIMEOUT;
        c->workers.stop_signal = SIGTERM;
        c->workers.graceful_timeout = DEFAULT_GRACEFUL_TIMEOUT;
        c->workers.watchdog = 0;
        c->workers.mode = WORKERS_EXEC;
        c->workers.fork_timeout = DEFAULT_FORK_TIMEOUT;
        c->workers.backoff_initial = DEFAULT_BACKOFF_INITIAL;
        c->workers.backoff_max = DEFAULT_BACKOFF_MAX;
        c->workers.start_limit_burst = DEFAULT_START_LIMIT_BURST;
        c->workers.start_limit_interval = DEFAULT_START_LIMIT_INTERVAL;

        c->recycle.max_concurrent = 1;

        c->memory.metric = MEMORY_METRIC_ANON;
        c->memory.sample_interval = DEFAULT_SAMPLE_INTERVAL;
        c->memory.retained_window = DEFAULT_RETAINED_WINDOW;
        c->memory.warmup = DEFAULT_WARMUP;
        c->memory.boundary_min_interval = 50 * USEC_PER_MSEC;

        c->pressure.cooldown = DEFAULT_COOLDOWN;

        c->log.level = LOG_INFO;
        c->log.format = LOG_FORMAT_LOGFMT;

        c->metrics.max_connections = METRICS_MAX_CONNECTIONS_DEFAULT;
        c->metrics.timeout = METRICS_TIMEOUT_DEFAULT;
        c->metrics.access = UNIX_SOCKET_ACCESS_DEFAULT;

        c->workers.umask = -1;
}

int config_new_default(struct memward_config **ret) {
        struct memward_config *c;

        assert(ret);

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->workers.env = calloc(1, sizeof(char *));
        if (!c->workers.env) {
                free(c);
                return -ENOMEM;
        }
        set_defaults(c);

        *ret = c;
        return 0;
}

void config_free(struct memward_config *c) {
        if (!c)
                return;
        free(c->path);
        strv_free(c->workers.command);
        free(c->workers.directory);
        strv_free(c->workers.env);
        free(c->workers.user);
        free(c->workers.group);
        listen_config_free_all(c);
        free(c->metrics.listen);
        free(c->metrics.owner);
        free(c->metrics.group);
        free(c);
}

/* base_dir, or the current directory when NULL (then owned through *ret_owned). */
static int get_base_dir(const char *base_dir, char **ret_owned, const char **ret) {
        if (base_dir) {
                assert(base_dir[0] == '/');
                *ret_owned = NULL;
                *ret = base_dir;
                return 0;
        }
        *ret_owned = get_current_dir_name();
        if (!*ret_owned)
                return negative_errno();
        *ret = *ret_owned;
        return 0;
}

static int diag_begin(struct config_diagnostics *diag, const char *name) {
        config_diagnostics_clear(diag);
        diag->file = strdup(name);
        return diag->file ? 0 : -ENOMEM;
}

static int diag_fail(struct config_diagnostics *diag, int error, const char *format, ...) _printf_(3, 4);
static int diag_fail(struct config_diagnostics *diag, int error, const char *format, ...) {
        char *m;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&m, format, ap);
        va_end(ap);
        if (r < 0 || diag_push(diag, 0, 0, m) < 0)
                return -ENOMEM;
        return error;
}

static int load(const char *text, size_t length, const char *name, const char *base_dir,
                struct memward_config **ret, struct config_diagnostics *diag) {
        _cleanup_config_free_ struct memward_config *c = NULL;
        _cleanup_free_ char *cwd = NULL;
        struct ctx ctx = { .diag = diag, .name = name };
        yaml_parser_t parser;
        yaml_document_t doc;
        yaml_node_t *root;
        int r;

        if (length > CONFIG_FILE_SIZE_MAX)
                return diag_fail(diag, -EFBIG, "file is larger than %s",
                                 format_size((char[FORMAT_SIZE_MAX]) {}, FORMAT_SIZE_MAX, CONFIG_FILE_SIZE_MAX));

        diag->source = strndup(text, length);
        if (!diag->source)
                return -ENOMEM;

        r = get_base_dir(base_dir, &cwd, &ctx.base_dir);
        if (r < 0)
                return diag_fail(diag, r, "cannot get the current directory: %s", strerror(-r));

        r = config_new_default(&c);
        if (r < 0)
                return r;

        check_flow_depth(&ctx, text, length);
        if (ctx.n_errors == 0)
                prescan(&ctx, text, length);
        if (ctx.error)
                return ctx.error;
        if (ctx.n_errors > 0)
                return -EINVAL;

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *) text, length);
        if (!yaml_parser_load(&parser, &doc)) {
                /* The event pass accepted the text, so this is most likely ENOMEM. */
                report_parser_error(&ctx, &parser, text, length);
                yaml_parser_delete(&parser);
                return ctx.error ?: -EINVAL;
        }
        ctx.doc = &doc;

        /* No root node: an empty file, or only comments. Defaults. */
        root = yaml_document_get_root_node(&doc);
        if (root && !is_plain_null(root)) {
                if (root->type != YAML_MAPPING_NODE)
                        ctx_error(&ctx, root, "expected a mapping at the top level, got %s", DESCRIBE(root));
                else
                        parse_mapping(&ctx, root, "", top_fields, c, NULL);
        }
        if (!ctx.error)
                resolve_credentials(&ctx, c);
        free(ctx.user_name);
        if (!ctx.error && ctx.n_errors == 0) {
                check_metrics_socket(&ctx, c);
                check_rules(&ctx, c);
        }

        yaml_document_delete(&doc);
        yaml_parser_delete(&parser);

        if (ctx.error)
                return ctx.error;
        if (ctx.n_errors > 0)
                return -EINVAL;

        *ret = TAKE_PTR(c);
        return 0;
}

int config_load_string(const char *text, size_t length, const char *name, const char *base_dir,
                       struct memward_config **ret, struct config_diagnostics *diag) {
        struct config_diagnostics local = {};
        struct config_diagnostics *d = diag ?: &local;
        int r;

        assert(text || length == 0);
        assert(ret);

        r = diag_begin(d, name ?: "<string>");
        if (r >= 0)
                r = load(text ?: "", length, d->file, base_dir, ret, d);

        config_diagnostics_clear(&local);
        return r;
}

int config_load_file(const char *path, const char *base_dir, struct memward_config **ret,
                     struct config_diagnostics *diag) {
        struct config_diagnostics local = {};
        struct config_diagnostics *d = diag ?: &local;
        _cleanup_free_ char *text = NULL, *cwd = NULL, *abs = NULL;
        struct memward_config *c = NULL;
        size_t length = 0;
        int r;

        assert(path);
        assert(ret);

        r = diag_begin(d, path);
        if (r < 0)
                goto finish;

        /* A file longer than the limit (or a FIFO that never ends) fails once the limit is
         * passed, without being read to its end. */
        r = read_full_file_at(AT_FDCWD, path, CONFIG_FILE_SIZE_MAX, &text, &length);
        if (r == -EFBIG) {
                r = diag_fail(d, r, "file is larger than %s",
                              format_size((char[FORMAT_SIZE_MAX]) {}, FORMAT_SIZE_MAX, CONFIG_FILE_SIZE_MAX));
                goto finish;
        }
        if (r == -EBADFD) {
                r = diag_fail(d, r, "not a regular file (a FIFO, device or socket could block memward or never end)");
                goto finish;
        }
        if (r < 0) {
                r = diag_fail(d, r, "cannot read: %s", strerror(-r));
                goto finish;
        }

        r = get_base_dir(base_dir, &cwd, &base_dir);
        if (r < 0) {
                r = diag_fail(d, r, "cannot get the current directory: %s", strerror(-r));
                goto finish;
        }
        abs = path_make_absolute(base_dir, path);
        if (!abs) {
                r = -ENOMEM;
                goto finish;
        }

        r = load(text, length, path, base_dir, &c, d);
        if (r < 0)
                goto finish;
        c->path = TAKE_PTR(abs);
        *ret = c;

finish:
        config_diagnostics_clear(&local);
        return r;
}

int config_validate(const struct memward_config *c, struct config_diagnostics *diag) {
        struct ctx ctx = { .diag = diag };

        assert(c);
        assert(diag);

        if (!diag->file && c->path) {
                diag->file = strdup(c->path);
                if (!diag->file)
                        return -ENOMEM;
        }
        ctx.name = diag->file ?: "memward";

        if (!c->workers.command || !c->workers.command[0])
                ctx_error(&ctx, NULL, "workers.command: required (in the config file or after --)");
        else if (c->workers.command[0][0] == '\0')
                ctx_error(&ctx, NULL, "workers.command: the program name must not be empty");

        if (c->workers.count < 1 || c->workers.count > CONFIG_WORKERS_MAX)
                ctx_error(&ctx, NULL, "workers.count: expected an integer in 1..%u, got %u", CONFIG_WORKERS_MAX,
                          c->workers.count);
        if (c->recycle.max_concurrent < 1)
                ctx_error(&ctx, NULL, "recycle.max_concurrent: expected an integer >= 1, got %u",
                          c->recycle.max_concurrent);
        if (c->n_listen > CONFIG_LISTEN_MAX)
                ctx_error(&ctx, NULL, "listen: at most %u addresses are supported", CONFIG_LISTEN_MAX);
        /* Entries from --listen did not go through the file's checks. */
        for (size_t i = 0; i < c->n_listen && i < CONFIG_LISTEN_MAX; i++) {
                struct listen_address a, b;

                if (!c->listen[i].address || listen_address_parse(c->listen[i].address, &a) < 0) {
                        ctx_error(&ctx, NULL, "listen[%zu].address: invalid address \"%s\"", i,
                                  c->listen[i].address ?: "");
                        continue;
                }
                for (size_t j = 0; j < i; j++) {
                        enum listen_conflict k = c->listen[j].address &&
                                                                 listen_address_parse(c->listen[j].address, &b) >= 0
                                                         ? listen_address_conflict(&a, &b)
                                                         : LISTEN_CONFLICT_NONE;
                        if (k == LISTEN_CONFLICT_NONE)
                                continue;
                        ctx_error(&ctx, NULL, "listen[%zu].address: %s listen[%zu]%s", i,
                                  k == LISTEN_CONFLICT_SAME ? "same address as" : "overlaps", j,
                                  k == LISTEN_CONFLICT_SAME ? "" : LISTEN_OVERLAP_WHY);
                        break;
                }
        }

        check_rules(&ctx, c);

        if (ctx.error)
                return ctx.error;
        return ctx.n_errors > 0 ? -EINVAL : 0;
}

/* ---- overrides from the command line ----------------------------------------------- */

int config_set_command(struct memward_config *c, char *const *argv) {
        char **l;
        size_t n = 0;

        assert(c);

        if (!argv || !argv[0])
                return -EINVAL;
        while (argv[n])
                n++;

        l = calloc(n + 1, sizeof *l);
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                l[i] = strdup(argv[i]);
                if (!l[i]) {
                        strv_free(l);
                        return -ENOMEM;
                }
        }
        strv_replace(&c->workers.command, l);
        return 0;
}

void config_clear_listen(struct memward_config *c) {
        assert(c);
        listen_config_free_all(c);
}

int config_add_listen(struct memward_config *c, const char *address, const char *base_dir) {
        _cleanup_free_ char *cwd = NULL;
        struct listen_config l = { .backlog = DEFAULT_BACKLOG, .options = LISTEN_OPTIONS_DEFAULT,
                                          .access = UNIX_SOCKET_ACCESS_DEFAULT };
        struct listen_address a, b;
        int r;

        assert(c);
        assert(address);

        if (c->n_listen >= CONFIG_LISTEN_MAX)
                return -E2BIG;

        r = get_base_dir(base_dir, &cwd, &base_dir);
        if (r < 0)
                return r;
        l.address = listen_address_make_absolute(base_dir, address);
        if (!l.address)
                return -ENOMEM;

        r = listen_address_parse(l.address, &a);
        for (size_t i = 0; r >= 0 && i < c->n_listen; i++)
                if (listen_address_parse(c->listen[i].address, &b) >= 0 && listen_address_equal(&a, &b))
                        r = -EEXIST;
        if (r >= 0)
                r = listen_append(c, &l);

        listen_config_done(&l);
        return r;
}

/* ---- dump -------------------------------------------------------------------------- */


/* YAML's printable set (what libyaml accepts unescaped). */
static bool yaml_printable(uint32_t cp) {
        return (cp >= 0x20 && cp <= 0x7E) || cp == 0x85 || (cp >= 0xA0 && cp <= 0xD7FF) ||
               (cp >= 0xE000 && cp <= 0xFFFD && cp != 0xFEFF) || (cp >= 0x10000 && cp <= 0x10FFFF);
}

/* A YAML double-quoted string. Bytes that are not valid UTF-8 (possible in a command from
 * the command line) cannot be written in YAML; they become \xHH, i.e. U+00HH, so such a
 * dump is readable but does not load back to the same bytes. */
static void dump_string(FILE *f, const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        fputc('"', f);
        while (*p) {
                uint32_t cp;
                size_t n = utf8_decode(p, &cp);

                if (n == 0) {
                        fprintf(f, "\\x%02X", *p);
                        p++;
                        continue;
                }
                if (cp == '"' || cp == '\\')
                        fprintf(f, "\\%c", (char) cp);
                else if (cp == '\n')
                        fputs("\\n", f);
                else if (cp == '\t')
                        fputs("\\t", f);
                else if (cp == '\r')
                        fputs("\\r", f);
                else if (yaml_printable(cp) && cp != 0x85 && cp != 0x2028 && cp != 0x2029)
                        /* NEL, LS and PS are printable but fold as line breaks: escaped below. */
                        fwrite(p, 1, n, f);
                else if (cp < 0x100)
                        fprintf(f, "\\x%02X", cp);
                else if (cp < 0x10000)
                        fprintf(f, "\\u%04X", cp);
                else
                        fprintf(f, "\\U%08X", cp);
                p += n;
        }
        fputc('"', f);
}

/* The shortest fixed-point form that reads back as the same double. */
static const char *format_decimal(char *buf, size_t size, double d) {
        for (int prec = 0; prec <= 17; prec++) {
                snprintf(buf, size, "%.*f", prec, d);
                if (strtod(buf, NULL) == d)
                        break;
        }
        return buf;
}

static const char *format_size_or_percent(char *buf, size_t size, const struct size_or_percent *s) {
        if (s->percent > 0) {
                size_t n;

                format_decimal(buf, size - 1, s->percent);
                n = strlen(buf);
                buf[n] = '%';
                buf[n + 1] = '\0';
                return buf;
        }
        return format_size(buf, size, s->bytes);
}

/* Percentages are quoted: a plain scalar may not start with '%' and "80%" reads better quoted. */
static void dump_size_or_percent(FILE *f, const char *key, const struct size_or_percent *s) {
        char buf[64];

        format_size_or_percent(buf, sizeof buf, s);
        fprintf(f, s->percent > 0 ? "  %s: \"%s\"\n" : "  %s: %s\n", key, buf);
}

/* "  key: \"name\"", with the id it resolved to as a comment. */
static void dump_id(FILE *f, const char *indent, const char *key, const char *name, const char *kind, unsigned id) {
        fprintf(f, "%s%s: ", indent, key);
        dump_string(f, name ?: "");
        if (name)
                fprintf(f, "  # %s %u", kind, id);
        fputc('\n', f);
}

/* mode, owner and group of a unix socket file. */
static void dump_socket_access(FILE *f, const char *indent, const struct unix_socket_access *a, const char *owner,
                               const char *group) {
        fprintf(f, "%smode: \"%04o\"\n", indent, (unsigned) a->mode);
        dump_id(f, indent, "owner", owner, "uid", (unsigned) a->uid);
        dump_id(f, indent, "group", group, "gid", (unsigned) a->gid);
}

static bool is_unix_path(const char *address) {
        return address && startswith_lit(address, "unix:") && !startswith_lit(address, "unix:@");
}

int config_dump(const struct memward_config *c, FILE *f) {
        char a[64], b[64];

        assert(c);
        assert(f);

        fputs("# memward: effective configuration, defaults filled in\n", f);

        fputs("workers:\n", f);
        fprintf(f, "  count: %u\n", c->workers.count);
        fprintf(f, "  mode: %s\n", workers_mode_to_string(c->workers.mode) ?: "exec");
        if (c->workers.command) {
                fputs("  command: [", f);
                for (char **i = c->workers.command; *i; i++) {
                        if (i != c->workers.command)
                                fputs(", ", f);
                        dump_string(f, *i);
                }
                fputs("]\n", f);
        } else
                fputs("  # command: not set, given after --\n", f);
        if (c->workers.directory) {
                fputs("  directory: ", f);
                dump_string(f, c->workers.directory);
                fputc('\n', f);
        }
        if (!c->workers.env || !c->workers.env[0])
                fputs("  env: {}\n", f);
        else {
                fputs("  env:\n", f);
                for (char **i = c->workers.env; *i; i++) {
                        const char *eq = strchrnul(*i, '=');

                        fprintf(f, "    %.*s: ", (int) (eq - *i), *i);
                        dump_string(f, *eq ? eq + 1 : "");
                        fputc('\n', f);
                }
        }
        if (c->workers.ready == READY_DELAY)
                fprintf(f, "  ready: %s\n", format_duration(a, sizeof a, c->workers.ready_delay));
        else
                fprintf(f, "  ready: %s\n", ready_mode_to_string(c->workers.ready));
        fprintf(f, "  ready_timeout: %s\n", format_duration(a, sizeof a, c->workers.ready_timeout));
        fprintf(f, "  stop_signal: %s\n", signal_to_string(c->workers.stop_signal) ?: "SIGTERM");
        fprintf(f, "  graceful_timeout: %s\n", format_duration(a, sizeof a, c->workers.graceful_timeout));
        fprintf(f, "  watchdog: %s\n", format_duration(a, sizeof a, c->workers.watchdog));
        fprintf(f, "  fork_timeout: %s\n", format_duration(a, sizeof a, c->workers.fork_timeout));
        fprintf(f, "  restart_backoff: {initial: %s, max: %s}\n",
                format_duration(a, sizeof a, c->workers.backoff_initial),
                format_duration(b, sizeof b, c->workers.backoff_max));
        fprintf(f, "  start_limit_burst: %u%s\n", c->workers.start_limit_burst,
                c->workers.start_limit_burst ? "" : "  # off");
        fprintf(f, "  start_limit_interval: %s\n", format_duration(a, sizeof a, c->workers.start_limit_interval));
        const struct spawn_credentials *cr = &c->workers.credentials;
        dump_id(f, "  ", "user", c->workers.user, "uid", (unsigned) cr->uid);
        fputs("  group: ", f);
        dump_string(f, c->workers.group ?: "");
        if (cr->set_gid) {
                fprintf(f, "  # gid %u%s, supplementary groups", (unsigned) cr->gid,
                        c->workers.group ? "" : " (the user's primary group)");
                for (size_t i = 0; i < cr->n_groups; i++)
                        fprintf(f, " %u", (unsigned) cr->groups[i]);
        }
        fputc('\n', f);
        if (c->workers.umask >= 0)
                fprintf(f, "  umask: \"%04o\"\n", (unsigned) c->workers.umask);
        else
                fputs("  umask: \"\"  # memward's own\n", f);

        if (c->n_listen == 0)
                fputs("listen: []\n", f);
        else {
                fputs("listen:\n", f);
                for (size_t i = 0; i < c->n_listen; i++) {
                        fputs("  - address: ", f);
                        dump_string(f, c->listen[i].address);
                        fputc('\n', f);
                        if (c->listen[i].name) {
                                fputs("    name: ", f);
                                dump_string(f, c->listen[i].name);
                                fputc('\n', f);
                        }
                        fprintf(f, "    backlog: %d\n", c->listen[i].backlog);
                        if (is_unix_path(c->listen[i].address))
                                dump_socket_access(f, "    ", &c->listen[i].access, c->listen[i].owner,
                                                   c->listen[i].group);
                        if (strncmp(c->listen[i].address, "unix:", strlen("unix:")) == 0)
                                continue; /* the TCP options are refused there */
                        fprintf(f, "    nodelay: %s\n", c->listen[i].options.nodelay ? "true" : "false");
                        fprintf(f, "    keepalive: %s\n", c->listen[i].options.keepalive ? "true" : "false");
                        fprintf(f, "    defer_accept: %s\n",
                                format_duration(a, sizeof a, c->listen[i].options.defer_accept));
                }
        }

        fputs("recycle:\n", f);
        fprintf(f, "  max_requests: %" PRIu64 "\n", c->recycle.max_requests);
        fprintf(f, "  max_requests_jitter: %" PRIu64 "\n", c->recycle.max_requests_jitter);
        fprintf(f, "  max_lifetime: %s\n", format_duration(a, sizeof a, c->recycle.max_lifetime));
        fprintf(f, "  max_lifetime_jitter: %s\n", format_duration(a, sizeof a, c->recycle.max_lifetime_jitter));
        fprintf(f, "  max_concurrent: %u\n", c->recycle.max_concurrent);
        fprintf(f, "  memory_stop_first: %s\n", c->recycle.memory_stop_first ? "true" : "false");

        fputs("log:\n", f);
        fprintf(f, "  level: %s\n", enum_name_lookup(log_level_names, c->log.level) ?: "info");
        fprintf(f, "  format: %s\n", enum_name_lookup(log_format_names, (int) c->log.format) ?: "logfmt");

        fputs("memory:\n", f);
        fprintf(f, "  metric: %s\n", memory_metric_to_string(c->memory.metric) ?: "anon");
        fprintf(f, "  sample_interval: %s\n", format_duration(a, sizeof a, c->memory.sample_interval));
        dump_size_or_percent(f, "worker_high", &c->memory.worker_high);
        dump_size_or_percent(f, "worker_max", &c->memory.worker_max);
        dump_size_or_percent(f, "group_high", &c->memory.group_high);
        fprintf(f, "  retained_max: %s\n", format_size(a, sizeof a, c->memory.retained_max));
        fprintf(f, "  retained_window: %s\n", format_duration(a, sizeof a, c->memory.retained_window));
        fprintf(f, "  growth_max: %s\n", format_decimal(a, sizeof a, c->memory.growth_max));
        fprintf(f, "  warmup: %s\n", format_duration(a, sizeof a, c->memory.warmup));
        fprintf(f, "  runtime_hints: %s\n", c->memory.runtime_hints ? "true" : "false");
        fprintf(f, "  retained_requests: %u\n", c->memory.retained_requests);
        fprintf(f, "  boundary_min_interval: %s\n", format_duration(a, sizeof a, c->memory.boundary_min_interval));

        fputs("pressure:\n", f);
        if (c->pressure.enabled)
                fprintf(f, "  trigger: \"%s %s %s\"\n", c->pressure.kind == PSI_FULL ? "full" : "some",
                        format_duration(a, sizeof a, c->pressure.stall),
                        format_duration(b, sizeof b, c->pressure.window));
        else
                fputs("  trigger: \"\"\n", f);
        fprintf(f, "  cooldown: %s\n", format_duration(a, sizeof a, c->pressure.cooldown));
        fprintf(f, "  min_retained: %s\n", format_size(a, sizeof a, c->pressure.min_retained));

        fputs("metrics:\n  listen: ", f);
        dump_string(f, c->metrics.listen ?: "");
        fprintf(f, "\n  max_connections: %u\n", c->metrics.max_connections);
        fprintf(f, "  timeout: %s\n", format_duration(a, sizeof a, c->metrics.timeout));
        if (is_unix_path(c->metrics.listen))
                dump_socket_access(f, "  ", &c->metrics.access, c->metrics.owner, c->metrics.group);

        if (fflush(f) != 0 || ferror(f))
                return -EIO;
        return 0;
}
