/* See status.h. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/base/text_buffer.h"
#include "memward/base/utf8.h"
#include "memward/cli/status.h"
#include "memward/config/config.h"

#define STATUS_DEFAULT_URL "http://127.0.0.1:9181"
/* What we wait for connect, send and each read; a memward that answers slower than this
 * is not answering. */
#define STATUS_TIMEOUT_MS 5000
/* Largest response we accept: /status of 1024 workers is well under 1 MiB. */
#define STATUS_RESPONSE_MAX (16U * 1024U * 1024U)

/* ---- JSON ------------------------------------------------------------------------ */

struct json_parser {
        const char *p, *end;
        unsigned depth;
};

static void json_value_done(struct json_value *v) {
        free(v->key);
        free(v->string);
        for (size_t i = 0; i < v->n_items; i++)
                json_value_done(&v->items[i]);
        free(v->items);
        *v = (struct json_value) {};
}

void json_free(struct json_value *v) {
        if (!v)
                return;
        json_value_done(v);
        free(v);
}

static void skip_ws(struct json_parser *ps) {
        while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
                ps->p++;
}

static int hex4(const char *s, uint32_t *ret) {
        uint32_t v = 0;
        for (int i = 0; i < 4; i++) {
                char c = s[i];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (uint32_t) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (uint32_t) (c - 'A' + 10);
                else
                        return -EBADMSG;
        }
        *ret = v;
        return 0;
}

/* At '"'. Decoded text never is longer than its escaped form, so one allocation of the
 * raw length suffices. \u0000 and lone surrogates become U+FFFD: a C string cannot hold
 * NUL, and the table only shows the text. */
static int parse_string(struct json_parser *ps, char **ret) {
        const char *start = ++ps->p, *q = start;

        while (q < ps->end && *q != '"') {
                if (*q == '\\')
                        q++;
                q++;
        }
        if (q >= ps->end)
                return -EBADMSG;

        _cleanup_free_ char *s = malloc((size_t) (q - start) + 1);
        if (!s)
                return -ENOMEM;
        size_t n = 0;
        const char *p = start;
        while (p < q) {
                unsigned char c = (unsigned char) *p;
                if (c < 0x20)
                        return -EBADMSG;
                if (c != '\\') {
                        s[n++] = (char) c;
                        p++;
                        continue;
                }
                p++;
                switch (*p) {
                case '"': case '\\': case '/':
                        s[n++] = *p++;
                        break;
                case 'b': s[n++] = '\b'; p++; break;
                case 'f': s[n++] = '\f'; p++; break;
                case 'n': s[n++] = '\n'; p++; break;
                case 'r': s[n++] = '\r'; p++; break;
                case 't': s[n++] = '\t'; p++; break;
                case 'u': {
                        uint32_t cp, lo;
                        if (q - p < 5 || hex4(p + 1, &cp) < 0)
                                return -EBADMSG;
                        p += 5;
                        if (cp >= 0xD800 && cp <= 0xDBFF && q - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
                            hex4(p + 2, &lo) >= 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                p += 6;
                        } else if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
                                cp = 0xFFFD;
                        n += utf8_encode(cp, s + n);
                        break;
                }
                default:
                        return -EBADMSG;
                }
        }
        s[n] = '\0';
        ps->p = q + 1;
        *ret = TAKE_PTR(s);
        return 0;
}

static int parse_number(struct json_parser *ps, double *ret) {
        const char *start = ps->p;
        char buf[64];

        if (ps->p < ps->end && *ps->p == '-')
                ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
                return -EBADMSG;
        while (ps->p < ps->end && ((*ps->p >= '0' && *ps->p <= '9') || *ps->p == '.' || *ps->p == 'e' ||
                                   *ps->p == 'E' || *ps->p == '+' || *ps->p == '-'))
                ps->p++;
        size_t n = (size_t) (ps->p - start);
        if (n >= sizeof buf)
                return -EBADMSG;
        memcpy(buf, start, n);
        buf[n] = '\0';
        char *e;
        errno = 0;
        *ret = strtod(buf, &e);
        if (*e || errno == ERANGE)
                return -EBADMSG;
        return 0;
}

static int parse_value(struct json_parser *ps, struct json_value *v);

static int append_item(struct json_value *v, struct json_value **ret) {
        struct json_value *items = reallocarray(v->items, v->n_items + 1, sizeof *items);
        if (!items)
                return -ENOMEM;
        v->items = items;
        items[v->n_items] = (struct json_value) {};
        *ret = &items[v->n_items++];
        return 0;
}

static int parse_container(struct json_parser *ps, struct json_value *v, bool object) {
        char close = object ? '}' : ']';
        int r;

        if (++ps->depth > JSON_DEPTH_MAX)
                return -ELOOP;
        v->type = object ? JSON_OBJECT : JSON_ARRAY;
        ps->p++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == close) {
                ps->p++;
                ps->depth--;
                return 0;
        }
        for (;;) {
                struct json_value *item;
                char *key = NULL;

                skip_ws(ps);
                if (object) {
                        if (ps->p >= ps->end || *ps->p != '"')
                                return -EBADMSG;
                        r = parse_string(ps, &key);
                        if (r < 0)
                                return r;
                        skip_ws(ps);
                        if (ps->p >= ps->end || *ps->p != ':') {
                                free(key);
                                return -EBADMSG;
                        }
                        ps->p++;
                }
                r = append_item(v, &item);
                if (r < 0) {
                        free(key);
                        return r;
                }
                item->key = key;
                r = parse_value(ps, item);
                if (r < 0)
                        return r;
                skip_ws(ps);
                if (ps->p >= ps->end)
                        return -EBADMSG;
                if (*ps->p == ',') {
                        ps->p++;
                        continue;
                }
                if (*ps->p != close)
                        return -EBADMSG;
                ps->p++;
                ps->depth--;
                return 0;
        }
}

static bool literal(struct json_parser *ps, const char *word) {
        size_t n = strlen(word);
        if ((size_t) (ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
                return false;
        ps->p += n;
        return true;
}

static int parse_value(struct json_parser *ps, struct json_value *v) {
        skip_ws(ps);
        if (ps->p >= ps->end)
                return -EBADMSG;
        switch (*ps->p) {
        case '{':
                return parse_container(ps, v, true);
        case '[':
                return parse_container(ps, v, false);
        case '"':
                v->type = JSON_STRING;
                return parse_string(ps, &v->string);
        case 't':
        case 'f':
                v->type = JSON_BOOL;
                v->boolean = *ps->p == 't';
                return literal(ps, v->boolean ? "true" : "false") ? 0 : -EBADMSG;
        case 'n':
                v->type = JSON_NULL;
                return literal(ps, "null") ? 0 : -EBADMSG;
        default:
                v->type = JSON_NUMBER;
                return parse_number(ps, &v->number);
        }
}

int json_parse(const char *text, size_t length, struct json_value **ret) {
        struct json_parser ps = { .p = text, .end = text + length };
        struct json_value *v = calloc(1, sizeof *v);
        int r;

        if (!v)
                return -ENOMEM;
        r = parse_value(&ps, v);
        if (r >= 0) {
                skip_ws(&ps);
                if (ps.p != ps.end)
                        r = -EBADMSG;
        }
        if (r < 0) {
                json_free(v);
                return r;
        }
        *ret = v;
        return 0;
}

const struct json_value *json_get(const struct json_value *v, const char *key) {
        if (!v || v->type != JSON_OBJECT)
                return NULL;
        for (size_t i = 0; i < v->n_items; i++)
                if (v->items[i].key && streq(v->items[i].key, key))
                        return &v->items[i];
        return NULL;
}

const char *json_get_string(const struct json_value *v, const char *key, const char *def) {
        const struct json_value *m = json_get(v, key);
        return m && m->type == JSON_STRING ? m->string : def;
}

double json_get_number(const struct json_value *v, const char *key, double def) {
        const struct json_value *m = json_get(v, key);
        return m && m->type == JSON_NUMBER ? m->number : def;
}

/* ---- URL ------------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && streq(s + a - b, suffix);
}

int status_url_parse(const char *url, struct status_url *ret) {
        struct status_url u = {};
        const char *rest, *slash, *hostport_end;
        char prefix[sizeof u.path - 16] = "";

        if (startswith_lit(url, "unix:")) {
                const char *p = url + strlen("unix:");
                if (!p[0] || strlen(p) >= sizeof u.unix_path)
                        return -EINVAL;
                snprintf(u.unix_path, sizeof u.unix_path, "%s", p);
                snprintf(u.path, sizeof u.path, "/status");
                *ret = u;
                return 0;
        }

        rest = startswith_lit(url, "http://") ? url + strlen("http://") : url;
        if (strstr(rest, "://"))
                return -EINVAL; /* https:// and friends: not spoken here */
        slash = strchr(rest, '/');
        hostport_end = slash ?: rest + strlen(rest);
        if (slash) {
                if (strlen(slash) >= sizeof prefix)
                        return -EINVAL;
                snprintf(prefix, sizeof prefix, "%s", slash);
                size_t n = strlen(prefix);
                while (n > 0 && prefix[n - 1] == '/')
                        prefix[--n] = '\0';
        }

        const char *port = NULL;
        size_t host_len;
        if (rest[0] == '[') {
                const char *close = memchr(rest, ']', (size_t) (hostport_end - rest));
                if (!close)
                        return -EINVAL;
                host_len = (size_t) (close - rest - 1);
                if (close + 1 < hostport_end) {
                        if (close[1] != ':')
                                return -EINVAL;
                        port = close + 2;
                }
                rest++;
        } else {
                port = memchr(rest, ':', (size_t) (hostport_end - rest));
                host_len = (size_t) ((port ?: hostport_end) - rest);
                if (port)
                        port++;
        }
        if (host_len == 0 || host_len >= sizeof u.host)
                return -EINVAL;
        memcpy(u.host, rest, host_len);
        u.host[host_len] = '\0';

        if (port) {
                size_t n = (size_t) (hostport_end - port);
                if (n == 0 || n >= sizeof u.port || strspn(port, "0123456789") < n)
                        return -EINVAL;
                memcpy(u.port, port, n);
                u.port[n] = '\0';
                if (atoi(u.port) < 1 || atoi(u.port) > 65535)
                        return -EINVAL;
        } else
                snprintf(u.port, sizeof u.port, "80");

        snprintf(u.path, sizeof u.path, "%s%s", prefix, ends_with(prefix, "/status") ? "" : "/status");
        *ret = u;
        return 0;
}

/* ---- HTTP client ----------------------------------------------------------------- */

static int wait_fd(int fd, short events) {
        struct pollfd p = { .fd = fd, .events = events };
        int n = poll(&p, 1, STATUS_TIMEOUT_MS);
        if (n < 0)
                return negative_errno();
        return n == 0 ? -ETIMEDOUT : 0;
}

static int connect_with_timeout(int family, const struct sockaddr *sa, socklen_t len) {
        _cleanup_close_ int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int error = 0;
        socklen_t elen = sizeof error;

        if (fd < 0)
                return negative_errno();
        if (connect(fd, sa, len) < 0) {
                if (errno != EINPROGRESS)
                        return negative_errno();
                int r = wait_fd(fd, POLLOUT);
                if (r < 0)
                        return r;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &elen) < 0)
                        return negative_errno();
                if (error)
                        return -error;
        }
        return TAKE_FD(fd);
}

static int status_connect(const struct status_url *u) {
        if (u->unix_path[0]) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                size_t n = strlen(u->unix_path);
                memcpy(sa.sun_path, u->unix_path, n);
                if (sa.sun_path[0] == '@')
                        sa.sun_path[0] = '\0'; /* abstract: no terminator counted */
                else
                        n++;
                return connect_with_timeout(AF_UNIX, (struct sockaddr *) &sa,
                                            (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n));
        }

        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai = NULL;
        int r = getaddrinfo(u->host, u->port, &hints, &ai);
        if (r != 0)
                return r == EAI_SYSTEM ? negative_errno() : -EHOSTUNREACH;
        r = -ECONNREFUSED;
        for (struct addrinfo *i = ai; i; i = i->ai_next) {
                r = connect_with_timeout(i->ai_family, i->ai_addr, i->ai_addrlen);
                if (r >= 0)
                        break;
        }
        freeaddrinfo(ai);
        return r;
}

/* Sends GET and reads the whole response (HTTP/1.0: the server closes when done).
 * Returns 0 with the body (NUL-terminated) and status code, or a negative errno. */
static int status_fetch(const struct status_url *u, unsigned *ret_status, char **ret_body, size_t *ret_length) {
        char request[1024], chunk[16384];
        _cleanup_free_ char *buf = NULL;
        struct text_buffer response;
        size_t n;
        int r;

        _cleanup_close_ int fd = status_connect(u);
        if (fd < 0)
                return fd;

        int len = snprintf(request, sizeof request,
                           "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: memward-status/" MEMWARD_VERSION
                           "\r\nAccept: application/json\r\n\r\n",
                           u->path, u->unix_path[0] ? "localhost" : u->host);
        if (len < 0 || (size_t) len >= sizeof request)
                return -EINVAL;
        for (size_t off = 0; off < (size_t) len;) {
                ssize_t w = send(fd, request + off, (size_t) len - off, MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno != EAGAIN)
                                return negative_errno();
                        r = wait_fd(fd, POLLOUT);
                        if (r < 0)
                                return r;
                        continue;
                }
                off += (size_t) w;
        }

        text_buffer_init(&response, STATUS_RESPONSE_MAX + 1);
        for (;;) {
                ssize_t got = recv(fd, chunk, sizeof chunk, 0);
                if (got < 0) {
                        if (errno == EINTR)
                                continue;
                        r = errno == EAGAIN ? wait_fd(fd, POLLIN) : negative_errno();
                        if (r < 0) {
                                text_buffer_done(&response);
                                return r;
                        }
                        continue;
                }
                if (got == 0)
                        break;
                text_buffer_append(&response, chunk, (size_t) got);
                if (response.error)
                        break; /* too large: stop reading a response that may never end */
        }
        r = text_buffer_finish(&response, &buf, &n);
        if (r == -E2BIG)
                return -EFBIG;
        if (r < 0)
                return r;

        unsigned status;
        if (sscanf(buf, "HTTP/1.%*1[01] %3u", &status) != 1)
                return -EBADMSG;
        char *body = strstr(buf, "\r\n\r\n");
        if (!body)
                return -EBADMSG;
        body += 4;
        size_t body_len = n - (size_t) (body - buf);
        char *copy = malloc(body_len + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, body, body_len);
        copy[body_len] = '\0';
        *ret_status = status;
        *ret_body = copy;
        *ret_length = body_len;
        return 0;
}

/* ---- the table ------------------------------------------------------------------- */

const char *status_format_age(char *buf, size_t size, double seconds) {
        /* The value comes from whatever answered the request: clamp before converting,
         * a double beyond 2^64 (or inf, NaN) has no unsigned value. */
        unsigned long long s = !(seconds > 0) ? 0 : seconds >= 1e18 ? 1000000000000000000ULL
                                                                       : (unsigned long long) seconds;

        if (s < 60)
                snprintf(buf, size, "%llus", s);
        else if (s < 3600)
                snprintf(buf, size, "%llum%02llus", s / 60, s % 60);
        else if (s < 86400)
                snprintf(buf, size, "%lluh%02llum", s / 3600, (s % 3600) / 60);
        else
                snprintf(buf, size, "%llud%02lluh", s / 86400, (s % 86400) / 3600);
        return buf;
}

const char *status_format_bytes(char *buf, size_t size, double bytes) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };

        if (bytes < 0) {
                snprintf(buf, size, "-");
                return buf;
        }
        if (bytes < 1024) {
                snprintf(buf, size, "%.0fB", bytes);
                return buf;
        }
        double v = bytes / 1024;
        size_t u = 0;
        while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024;
                u++;
        }
        /* Three significant digits, like ls -h and free -h. */
        snprintf(buf, size, v < 10 ? "%.2f%s" : v < 100 ? "%.1f%s" : "%.0f%s", v, units[u]);
        return buf;
}

enum {
        COL_SLOT,
        COL_PID,
        COL_GEN,
        COL_STATE,
        COL_AGE,
        COL_REQUESTS,
        COL_ANON,
        COL_RETAINED,
        COL_LAST,
        COL_STATUS,
        _COL_MAX,
};

#define CELL_MAX 48

static const char *const col_names[_COL_MAX] = {
        "SLOT", "PID", "GEN", "STATE", "AGE", "REQUESTS", "ANON", "RETAINED", "LAST RECYCLE", "STATUS",
};
static const bool col_right[_COL_MAX] = {
        [COL_REQUESTS] = true, [COL_ANON] = true, [COL_RETAINED] = true,
};

/* Text from the endpoint made safe for a terminal: a worker's STATUS= (or whatever a
 * server at the URL sends) must not drive the user's terminal. Control characters (C0,
 * DEL and C1, where U+009B is CSI to many terminals) and bytes that are not UTF-8 become
 * '?'. A text longer than size allows is cut between characters and ends in "...". */
static const char *sanitize(char *dst, size_t size, const char *src) {
        const unsigned char *p = (const unsigned char *) (src ?: "");
        size_t n = 0, cut = 0;

        assert(size > 4);
        while (*p) {
                uint32_t c = 0;
                size_t len = utf8_decode(p, &c);
                bool unsafe = len == 0 || c < 0x20 || (c >= 0x7f && c <= 0x9f);
                size_t width = unsafe ? 1 : len;

                if (n + width >= size) {
                        memcpy(dst + cut, "...", 4);
                        return dst;
                }
                if (unsafe)
                        dst[n] = '?';
                else
                        memcpy(dst + n, p, len);
                n += width;
                if (n + 4 <= size)
                        cut = n; /* "..." and the NUL would still fit after this character */
                p += len ?: 1;
        }
        dst[n] = '\0';
        return dst;
}

static double number_or_absent(const struct json_value *v, const char *key) {
        const struct json_value *m = json_get(v, key);
        return m && m->type == JSON_NUMBER ? m->number : -1;
}

int status_print_table(const struct json_value *doc, FILE *f) {
        const struct json_value *workers = json_get(doc, "workers");
        size_t widths[_COL_MAX];

        if (!doc || doc->type != JSON_OBJECT || !workers || workers->type != JSON_ARRAY)
                return -EBADMSG;

        size_t rows = workers->n_items;
        _cleanup_free_ char (*cells)[_COL_MAX][CELL_MAX] = calloc(rows ?: 1, sizeof *cells);
        if (!cells)
                return -ENOMEM;

        for (size_t c = 0; c < _COL_MAX; c++)
                widths[c] = strlen(col_names[c]);
        for (size_t i = 0; i < rows; i++) {
                const struct json_value *w = &workers->items[i];
                const struct json_value *m = json_get(w, "memory");
                char (*row)[CELL_MAX] = cells[i];

                if (w->type != JSON_OBJECT)
                        return -EBADMSG;
                snprintf(row[COL_SLOT], CELL_MAX, "%.0f", json_get_number(w, "slot", -1));
                /* pid 0: a worker a template has not forked yet. */
                double pid = json_get_number(w, "pid", 0);
                if (pid > 0)
                        snprintf(row[COL_PID], CELL_MAX, "%.0f", pid);
                else
                        snprintf(row[COL_PID], CELL_MAX, "-");
                snprintf(row[COL_GEN], CELL_MAX, "%.0f", json_get_number(w, "generation", 0));
                sanitize(row[COL_STATE], CELL_MAX, json_get_string(w, "state", "?"));
                const char *role = json_get_string(w, "role", "active");
                if (!streq(role, "active")) {
                        char r[21];
                        size_t n = strlen(row[COL_STATE]);
                        snprintf(row[COL_STATE] + n, CELL_MAX - n, " (%s)", sanitize(r, sizeof r, role));
                }
                status_format_age(row[COL_AGE], CELL_MAX, json_get_number(w, "age_seconds", 0));
                snprintf(row[COL_REQUESTS], CELL_MAX, "%.0f", json_get_number(w, "requests", 0));
                bool sampled = json_get(m, "sampled") && json_get(m, "sampled")->boolean;
                status_format_bytes(row[COL_ANON], CELL_MAX, sampled ? number_or_absent(m, "anon") : -1);
                status_format_bytes(row[COL_RETAINED], CELL_MAX, number_or_absent(m, "retained"));
                const char *pending = json_get_string(w, "recycle", NULL);
                if (pending) {
                        char r[31];
                        snprintf(row[COL_LAST], CELL_MAX, "now: %s", sanitize(r, sizeof r, pending));
                } else
                        sanitize(row[COL_LAST], CELL_MAX, json_get_string(w, "last_recycle", "-"));
                sanitize(row[COL_STATUS], 41, json_get_string(w, "status", ""));
                for (size_t c = 0; c < _COL_MAX; c++)
                        if (strlen(row[c]) > widths[c])
                                widths[c] = strlen(row[c]);
        }

        char version[CELL_MAX], health[96], accounting[CELL_MAX], metric[CELL_MAX];
        fprintf(f, "memward %s (pid %.0f): %s, accounting %s, metric %s\n",
                sanitize(version, sizeof version, json_get_string(doc, "version", "?")),
                json_get_number(doc, "pid", 0), sanitize(health, sizeof health, json_get_string(doc, "health", "?")),
                sanitize(accounting, sizeof accounting, json_get_string(doc, "accounting", "?")),
                sanitize(metric, sizeof metric, json_get_string(doc, "metric", "?")));
        const struct json_value *t = json_get(doc, "template");
        if (t && t->type == JSON_OBJECT) {
                /* Template mode: the process the workers are forked from, a row of its own. */
                const struct json_value *tm = json_get(t, "memory");
                bool sampled = json_get(tm, "sampled") && json_get(tm, "sampled")->boolean;
                char phase[CELL_MAX], runtime[64], age[32], current[32], anon[32], pss[32];
                const char *rt = json_get_string(t, "runtime", "");
                fprintf(f, "template: pid %.0f, generation %.0f, %s, up %s, runtime %s, restarts %.0f, memory %s "
                        "(anon %s, pss %s)\n",
                        json_get_number(t, "pid", 0), json_get_number(t, "generation", 0),
                        sanitize(phase, sizeof phase, json_get_string(t, "phase", "?")),
                        status_format_age(age, sizeof age, json_get_number(t, "age_seconds", 0)),
                        sanitize(runtime, sizeof runtime, *rt ? rt : "-"),
                        json_get_number(t, "restarts", 0),
                        status_format_bytes(current, sizeof current, sampled ? number_or_absent(tm, "current") : -1),
                        status_format_bytes(anon, sizeof anon, sampled ? number_or_absent(tm, "anon") : -1),
                        status_format_bytes(pss, sizeof pss, sampled ? number_or_absent(tm, "pss") : -1));
        }
        const struct json_value *reload = json_get(doc, "reload");
        if (reload && reload->type == JSON_OBJECT && json_get_string(reload, "last_attempt", NULL)) {
                char when[CELL_MAX], error[CELL_MAX], ok[CELL_MAX];
                const struct json_value *last = json_get(reload, "last_successful");
                if (last && last->type == JSON_BOOL && last->boolean)
                        fprintf(f, "last reload: applied at %s\n",
                                sanitize(ok, sizeof ok, json_get_string(reload, "last_success", "?")));
                else
                        fprintf(f, "last reload: FAILED at %s (%s); running the configuration of %s\n",
                                sanitize(when, sizeof when, json_get_string(reload, "last_attempt", "?")),
                                sanitize(error, sizeof error, json_get_string(reload, "last_error", "?")),
                                sanitize(ok, sizeof ok, json_get_string(reload, "last_success", "?")));
        }
        for (size_t r = 0; r <= rows; r++) {
                char line[_COL_MAX * (CELL_MAX + 2) + 1];
                size_t n = 0;
                for (size_t c = 0; c < _COL_MAX; c++) {
                        const char *text = r == 0 ? col_names[c] : cells[r - 1][c];
                        n += (size_t) snprintf(line + n, sizeof line - n, col_right[c] ? "%*s  " : "%-*s  ",
                                               (int) widths[c], text);
                }
                while (n > 0 && line[n - 1] == ' ')
                        n--;
                fprintf(f, "%.*s\n", (int) n, line);
        }

        const struct json_value *recycles = json_get(doc, "recycles");
        if (recycles && recycles->type == JSON_ARRAY && recycles->n_items > 0) {
                char age[32], anon[32], retained[32];
                size_t shown = recycles->n_items < 5 ? recycles->n_items : 5;
                fprintf(f, "\nlast %zu of %zu recent recycles:\n", shown, recycles->n_items);
                for (size_t i = 0; i < shown; i++) {
                        const struct json_value *r = &recycles->items[i];
                        char when[CELL_MAX], reason[CELL_MAX];
                        sanitize(when, sizeof when, json_get_string(r, "time", "?"));
                        sanitize(reason, sizeof reason, json_get_string(r, "reason", "?"));
                        fprintf(f, "  %s  slot %.0f  pid %.0f  %-12s  requests %.0f  age %s  anon %s  retained %s\n",
                                when, json_get_number(r, "slot", -1), json_get_number(r, "pid", 0), reason,
                                json_get_number(r, "requests", 0),
                                status_format_age(age, sizeof age, json_get_number(r, "age_seconds", 0)),
                                status_format_bytes(anon, sizeof anon, number_or_absent(r, "anon")),
                                status_format_bytes(retained, sizeof retained, number_or_absent(r, "retained")));
                }
        }
        return ferror(f) ? -EIO : 0;
}

/* ---- the subcommand -------------------------------------------------------------- */

static void status_help(void) {
        printf("Usage: memward status [--url URL | -c FILE] [--json]\n"
               "\n"
               "Show the workers of a running memward, from its metrics endpoint's /status.\n"
               "\n"
               "      --url URL     http://HOST:PORT, http://[V6]:PORT or unix:PATH\n"
               "                    (default: metrics.listen of -c FILE, else %s)\n"
               "  -c, --config FILE take the address from this file's metrics.listen\n"
               "      --json        print the JSON document instead of the table\n"
               "  -h, --help        print this help and exit\n"
               "\n"
               "Exit codes: 0 shown, 1 memward cannot be reached or answered wrongly, 2 bad usage.\n",
               STATUS_DEFAULT_URL);
}

/* metrics.listen of a config file, as a URL. */
static int url_from_config(const char *path, char **ret) {
        struct config_diagnostics diag = {};
        _cleanup_config_free_ struct memward_config *c = NULL;

        int r = config_load_file(path, NULL, &c, &diag);
        if (r < 0) {
                config_diagnostics_print(&diag, stderr);
                config_diagnostics_clear(&diag);
                return r;
        }
        config_diagnostics_clear(&diag);
        if (!c->metrics.listen) {
                fprintf(stderr, "memward status: %s: metrics.listen is not set, the endpoint is off\n", path);
                return -ENOENT;
        }
        const char *l = c->metrics.listen;
        if (startswith_lit(l, "unix:"))
                *ret = strdup(l);
        else if (asprintf(ret, "http://%s", startswith_lit(l, "tcp://") ? l + strlen("tcp://") : l) < 0)
                *ret = NULL;
        return *ret ? 0 : -ENOMEM;
}

int status_main(int argc, char *argv[]) {
        enum { ARG_URL = 0x100, ARG_JSON };
        static const struct option longopts[] = {
                { "url", required_argument, NULL, ARG_URL },
                { "config", required_argument, NULL, 'c' },
                { "json", no_argument, NULL, ARG_JSON },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_free_ char *from_config = NULL, *body = NULL;
        const char *url = NULL, *config = NULL;
        bool json = false;
        struct status_url u;
        unsigned status = 0;
        size_t length = 0;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) >= 0) {
                switch (c) {
                case ARG_URL:
                        url = optarg;
                        break;
                case 'c':
                        config = optarg;
                        break;
                case ARG_JSON:
                        json = true;
                        break;
                case 'h':
                        status_help();
                        return 0;
                default:
                        fprintf(stderr, "Try 'memward status --help'.\n");
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "memward status: unexpected argument \"%s\"\n", argv[optind]);
                return 2;
        }
        if (url && config) {
                fprintf(stderr, "memward status: --url and -c are alternatives\n");
                return 2;
        }
        if (config) {
                r = url_from_config(config, &from_config);
                if (r < 0)
                        return 2;
                url = from_config;
        }
        if (!url)
                url = STATUS_DEFAULT_URL;
        if (status_url_parse(url, &u) < 0) {
                fprintf(stderr, "memward status: invalid URL \"%s\": expected http://HOST:PORT or unix:PATH\n", url);
                return 2;
        }

        char where[sizeof u.host + sizeof u.unix_path + sizeof u.path + 32];
        if (u.unix_path[0])
                snprintf(where, sizeof where, "%s on unix:%s", u.path, u.unix_path);
        else
                snprintf(where, sizeof where, strchr(u.host, ':') ? "http://[%s]:%s%s" : "http://%s:%s%s", u.host,
                         u.port, u.path);

        r = status_fetch(&u, &status, &body, &length);
        if (r < 0) {
                fprintf(stderr, "memward status: cannot get %s: %s%s\n", where, strerror(-r),
                        r == -ECONNREFUSED || r == -ENOENT
                                ? " (is memward running, with metrics.listen set to this address?)"
                                : "");
                return 1;
        }
        if (status != 200) {
                char text[201];
                fprintf(stderr, "memward status: %s answered HTTP %u: %s\n", where, status,
                        sanitize(text, sizeof text, body));
                return 1;
        }
        if (json) {
                fwrite(body, 1, length, stdout);
                return fflush(stdout) == 0 ? 0 : 1;
        }

        struct json_value *doc = NULL;
        r = json_parse(body, length, &doc);
        if (r >= 0) {
                r = status_print_table(doc, stdout);
                json_free(doc);
        }
        if (r < 0) {
                fprintf(stderr, "memward status: %s: not a memward /status document (%s)\n", where, strerror(-r));
                return 1;
        }
        return fflush(stdout) == 0 ? 0 : 1;
}
