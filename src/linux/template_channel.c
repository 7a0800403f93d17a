/* See template_channel.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "memward/base/macro.h"
#include "memward/base/utf8.h"
#include "memward/linux/template_channel.h"
#include "memward/linux/unix_receive.h"

static const char *const type_names[_TEMPLATE_MESSAGE_TYPE_MAX] = {
        [TEMPLATE_READY] = "READY",
        [TEMPLATE_SPAWNED] = "SPAWNED",
        [TEMPLATE_SPAWN_FAILED] = "SPAWN_FAILED",
        [TEMPLATE_PLACE] = "PLACE",
};

const char *template_message_type_to_string(enum template_message_type t) {
        if ((unsigned) t >= _TEMPLATE_MESSAGE_TYPE_MAX)
                return "unknown";
        return type_names[t];
}

/* ---- parsing ------------------------------------------------------------------------- */

/* Every key version 1 defines, in either direction; each type allows some of them. */
enum key {
        KEY_PROTOCOL,
        KEY_RUNTIME,
        KEY_SLOT,
        KEY_GENERATION,
        KEY_PID,
        KEY_ERRNO,
        KEY_MESSAGE,
        KEY_CGROUP,
        KEY_ENV,
        KEY_PLACE,
        _KEY_MAX,
};

static const char *const key_names[_KEY_MAX] = {
        [KEY_PROTOCOL] = "PROTOCOL", [KEY_RUNTIME] = "RUNTIME", [KEY_SLOT] = "SLOT",
        [KEY_GENERATION] = "GENERATION", [KEY_PID] = "PID", [KEY_ERRNO] = "ERRNO",
        [KEY_MESSAGE] = "MESSAGE", [KEY_CGROUP] = "CGROUP", [KEY_ENV] = "ENV",
        [KEY_PLACE] = "PLACE",
};

#define BIT(k) (1U << (k))

/* The types of §2: which keys each defines, which it requires. A key another type
 * defines is an unknown key here, ignored like any other. */
enum kind { KIND_READY, KIND_SPAWNED, KIND_SPAWN_FAILED, KIND_PLACE, KIND_SPAWN, KIND_PLACED, _KIND_MAX };

static const struct {
        const char *name;
        unsigned defined, required;
} kinds[_KIND_MAX] = {
        [KIND_READY] = { "READY", BIT(KEY_PROTOCOL) | BIT(KEY_RUNTIME) | BIT(KEY_PLACE), BIT(KEY_PROTOCOL) },
        [KIND_SPAWNED] = { "SPAWNED", BIT(KEY_SLOT) | BIT(KEY_GENERATION) | BIT(KEY_PID),
                           BIT(KEY_SLOT) | BIT(KEY_GENERATION) | BIT(KEY_PID) },
        [KIND_SPAWN_FAILED] = { "SPAWN_FAILED",
                                BIT(KEY_SLOT) | BIT(KEY_GENERATION) | BIT(KEY_ERRNO) | BIT(KEY_MESSAGE),
                                BIT(KEY_SLOT) | BIT(KEY_GENERATION) | BIT(KEY_ERRNO) },
        [KIND_PLACE] = { "PLACE", BIT(KEY_SLOT) | BIT(KEY_GENERATION) | BIT(KEY_PID),
                         BIT(KEY_SLOT) | BIT(KEY_GENERATION) | BIT(KEY_PID) },
        [KIND_SPAWN] = { "SPAWN",
                         BIT(KEY_SLOT) | BIT(KEY_GENERATION) | BIT(KEY_CGROUP) | BIT(KEY_ENV) | BIT(KEY_PLACE),
                         BIT(KEY_SLOT) | BIT(KEY_GENERATION) | BIT(KEY_CGROUP) },
        [KIND_PLACED] = { "PLACED", BIT(KEY_SLOT) | BIT(KEY_GENERATION) | BIT(KEY_ERRNO),
                          BIT(KEY_SLOT) | BIT(KEY_GENERATION) },
};

/* The kinds each public parser accepts: the rest are unknown types to it. */
#define KINDS_FROM_TEMPLATE (BIT(KIND_READY) | BIT(KIND_SPAWNED) | BIT(KIND_SPAWN_FAILED) | BIT(KIND_PLACE))

/* What any parser produces, before it is copied out on success. */
struct parsed {
        enum kind kind;
        struct template_message message;
        struct template_spawn spawn;
        struct template_placed placed;
};

/* Sender's bytes quoted in an error text are cut to this, between characters. */
#define QUOTE_MAX 32

static int fail(struct template_parse_error *error, int r, const char *what, const char *format, ...)
        _printf_(4, 5);
static int fail(struct template_parse_error *error, int r, const char *what, const char *format, ...) {
        char tmp[TEMPLATE_PARSE_ERROR_MAX + 4]; /* the character the cut falls in, whole */
        va_list ap;

        if (!error)
                return r;
        va_start(ap, format);
        int n = vsnprintf(tmp, sizeof tmp, format, ap);
        va_end(ap);
        size_t len = n < 0 ? 0 : (size_t) n < sizeof tmp ? (size_t) n : sizeof tmp - 1;
        /* What is quoted is the sender's: cut between characters, as notify's STATUS is. */
        len = utf8_truncate(tmp, len, sizeof error->text - 1);
        memcpy(error->text, tmp, len);
        error->text[len] = '\0';
        error->what = what;
        return r;
}

static int quote_len(const char *s, size_t n) {
        return (int) utf8_truncate(s, n, QUOTE_MAX);
}

/* Strict decimal: one or more ASCII digits, nothing else. *ret is left alone unless the
 * value fits 64 bits. */
static bool parse_decimal(const char *s, size_t n, uint64_t *ret) {
        uint64_t v = 0;

        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                unsigned d = (unsigned) (s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        *ret = v;
        return true;
}

static bool all_digits(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

static bool key_valid(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                        return false;
        return true;
}

static bool is(const char *s, size_t n, const char *word) {
        return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* The line that starts at *pos: its length without the '\n'; *pos moves past the '\n'.
 * A last line without one ends at length. */
static size_t next_line(const char *buf, size_t length, size_t *pos) {
        const char *line = buf + *pos;
        const char *nl = memchr(line, '\n', length - *pos);
        size_t n = nl ? (size_t) (nl - line) : length - *pos;
        *pos += n + (nl ? 1 : 0);
        return n;
}

/* NAME=VALUE with a NAME, as setenv() needs one. */
static bool env_entry_valid(const char *s, size_t n) {
        const char *eq = memchr(s, '=', n);
        return eq && eq > s;
}

static void copy_text(char *dst, size_t size, const char *s, size_t n) {
        n = utf8_truncate(s, n, size - 1);
        memcpy(dst, s, n);
        dst[n] = '\0';
}

/* A READY for another protocol version: the first PROTOCOL line, if it holds a decimal
 * that is not 1. Looked for before the grammar is judged, since that grammar may be
 * another version's. */
static int check_protocol(const char *buf, size_t length, size_t pos, struct template_parse_error *error) {
        while (pos < length) {
                const char *line = buf + pos;
                size_t n = next_line(buf, length, &pos);
                if (n < strlen("PROTOCOL=") || memcmp(line, "PROTOCOL=", strlen("PROTOCOL=")) != 0)
                        continue;
                const char *value = line + strlen("PROTOCOL=");
                size_t value_len = n - strlen("PROTOCOL=");
                uint64_t v;
                if (!all_digits(value, value_len))
                        return 0; /* malformed, which the grammar says */
                if (parse_decimal(value, value_len, &v) && v == TEMPLATE_PROTOCOL_VERSION)
                        return 0;
                return fail(error, -EPROTONOSUPPORT, "unsupported_protocol", "PROTOCOL=%.*s, memward speaks %u",
                            quote_len(value, value_len), value, TEMPLATE_PROTOCOL_VERSION);
        }
        return 0;
}

/* Reads one defined key's value into p. Returns 0, -EBADMSG or -E2BIG (ENV). */
static int parse_value(struct parsed *p, enum key k, const char *value, size_t n, unsigned number,
                       struct template_parse_error *error) {
        uint64_t v = 0;
        bool ok;

        switch (k) {
        case KEY_PROTOCOL:
                /* check_protocol() let through only 1 and what is not a decimal. */
                ok = parse_decimal(value, n, &v) && v == TEMPLATE_PROTOCOL_VERSION;
                if (!ok)
                        break;
                return 0;
        case KEY_RUNTIME:
                copy_text(p->message.runtime, sizeof p->message.runtime, value, n);
                return 0;
        case KEY_MESSAGE:
                copy_text(p->message.message, sizeof p->message.message, value, n);
                return 0;
        case KEY_SLOT:
                ok = parse_decimal(value, n, &v) && v <= TEMPLATE_SLOT_MAX;
                if (!ok)
                        break;
                p->message.slot = p->spawn.slot = p->placed.slot = (unsigned) v;
                return 0;
        case KEY_GENERATION:
                ok = parse_decimal(value, n, &v) && v >= 1;
                if (!ok)
                        break;
                p->message.generation = p->spawn.generation = p->placed.generation = v;
                return 0;
        case KEY_PID:
                /* pid 1 is init (or memward itself as PID 1): never a worker. */
                ok = parse_decimal(value, n, &v) && v > 1 && v <= INT32_MAX;
                if (!ok)
                        break;
                p->message.pid = (pid_t) v;
                return 0;
        case KEY_ERRNO:
                ok = parse_decimal(value, n, &v) && v >= 1 && v <= TEMPLATE_ERRNO_MAX;
                if (!ok)
                        break;
                p->message.error = p->placed.error = (int) v;
                return 0;
        case KEY_PLACE:
                ok = n == 1 && (value[0] == '0' || value[0] == '1');
                if (!ok)
                        break;
                p->message.place = p->spawn.place = value[0] == '1';
                return 0;
        case KEY_CGROUP:
                ok = n == 1 && (value[0] == '0' || value[0] == '1');
                if (!ok)
                        break;
                p->spawn.cgroup = value[0] == '1';
                return 0;
        case KEY_ENV:
                ok = env_entry_valid(value, n);
                if (!ok)
                        break;
                if (p->spawn.n_env >= TEMPLATE_SPAWN_ENV_MAX)
                        return fail(error, -E2BIG, "too_many_env", "line %u: more than %u ENV lines", number,
                                    TEMPLATE_SPAWN_ENV_MAX);
                p->spawn.env[p->spawn.n_env++] = (struct template_env) { .entry = value, .length = n };
                return 0;
        default:
                abort(); /* parse() passes defined keys only */
        }
        return fail(error, -EBADMSG, "bad_value", "line %u: %s=%.*s out of range", number, key_names[k],
                    quote_len(value, n), value);
}

/* The parser of both directions: accepted (BIT(kind)s) picks which types exist. p is the
 * caller's scratch, written whatever the outcome. */
static int parse(const char *buf, size_t length, unsigned accepted, struct parsed *p,
                 struct template_parse_error *error) {
        const char *nul;
        size_t pos = 0;
        unsigned seen = 0, number = 1;
        int r;

        *p = (struct parsed) {};

        if (length > TEMPLATE_MESSAGE_MAX)
                return fail(error, -EMSGSIZE, "oversized", "%zu bytes, more than %u", length, TEMPLATE_MESSAGE_MAX);
        nul = memchr(buf, '\0', length);
        if (nul)
                return fail(error, -EBADMSG, "nul_byte", "NUL byte at offset %zu", (size_t) (nul - buf));

        const char *type = buf;
        size_t type_len = next_line(buf, length, &pos);
        bool known = false;
        for (enum kind k = 0; k < _KIND_MAX; k++)
                if ((accepted & BIT(k)) && is(type, type_len, kinds[k].name)) {
                        p->kind = k;
                        known = true;
                }
        if (!known)
                return fail(error, -EBADMSG, "unknown_type", "unknown type \"%.*s\"", quote_len(type, type_len), type);

        if (p->kind == KIND_READY) {
                r = check_protocol(buf, length, pos, error);
                if (r < 0)
                        return r;
        }

        while (pos < length) {
                const char *line = buf + pos;
                size_t n = next_line(buf, length, &pos);
                number++;

                const char *eq = memchr(line, '=', n);
                if (!eq)
                        return fail(error, -EBADMSG, "no_equals", "line %u: no '=' in \"%.*s\"", number,
                                    quote_len(line, n), line);
                size_t key_len = (size_t) (eq - line);
                if (!key_valid(line, key_len))
                        return fail(error, -EBADMSG, "bad_key", "line %u: key \"%.*s\" is not [A-Z0-9_]+", number,
                                    quote_len(line, key_len), line);

                enum key k = _KEY_MAX;
                for (enum key i = 0; i < _KEY_MAX; i++)
                        if ((kinds[p->kind].defined & BIT(i)) && is(line, key_len, key_names[i]))
                                k = i;
                if (k == _KEY_MAX)
                        continue; /* not this version's, or not this type's: ignored, §2 */
                if ((seen & BIT(k)) && k != KEY_ENV)
                        return fail(error, -EBADMSG, "repeated_key", "line %u: %s repeated", number, key_names[k]);
                seen |= BIT(k);

                r = parse_value(p, k, eq + 1, n - key_len - 1, number, error);
                if (r < 0)
                        return r;
        }

        unsigned missing = kinds[p->kind].required & ~seen;
        if (missing != 0)
                return fail(error, -EBADMSG, "missing_key", "%s without %s", kinds[p->kind].name,
                            key_names[__builtin_ctz(missing)]);
        /* The fd and memward's own move are two answers to one question: who places. */
        if (p->kind == KIND_SPAWN && p->spawn.cgroup && p->spawn.place)
                return fail(error, -EBADMSG, "conflicting_keys", "SPAWN with both CGROUP=1 and PLACE=1");

        if (p->kind == KIND_READY)
                p->message.type = TEMPLATE_READY;
        else if (p->kind == KIND_SPAWNED)
                p->message.type = TEMPLATE_SPAWNED;
        else if (p->kind == KIND_SPAWN_FAILED)
                p->message.type = TEMPLATE_SPAWN_FAILED;
        else if (p->kind == KIND_PLACE)
                p->message.type = TEMPLATE_PLACE;
        return 0;
}

int template_message_parse(const char *buf, size_t length, struct template_message *ret,
                           struct template_parse_error *error) {
        struct parsed p;
        int r;

        r = parse(buf, length, KINDS_FROM_TEMPLATE, &p, error);
        if (r < 0)
                return r;
        *ret = p.message;
        return 0;
}

int template_spawn_parse(const char *buf, size_t length, struct template_spawn *ret,
                         struct template_parse_error *error) {
        struct parsed p;
        int r;

        r = parse(buf, length, BIT(KIND_SPAWN), &p, error);
        if (r < 0)
                return r;
        *ret = p.spawn;
        return 0;
}

int template_placed_parse(const char *buf, size_t length, struct template_placed *ret,
                          struct template_parse_error *error) {
        struct parsed p;
        int r;

        r = parse(buf, length, BIT(KIND_PLACED), &p, error);
        if (r < 0)
                return r;
        *ret = p.placed;
        return 0;
}

/* ---- formatting ---------------------------------------------------------------------- */

/* Appends to buf while it fits and counts on past it, so one pass measures and the next
 * writes: nothing is written unless the whole message fits. buf NULL: measure only. */
struct writer {
        char *buf;
        size_t size;
        size_t n;
};

static void put(struct writer *w, const char *s, size_t n) {
        if (w->buf && w->n + n <= w->size)
                memcpy(w->buf + w->n, s, n);
        w->n += n;
}

static void putf(struct writer *w, const char *format, ...) _printf_(2, 3);
static void putf(struct writer *w, const char *format, ...) {
        char tmp[64]; /* numbers and keys only */
        va_list ap;

        va_start(ap, format);
        int n = vsnprintf(tmp, sizeof tmp, format, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= sizeof tmp)
                abort();
        put(w, tmp, (size_t) n);
}

static void write_spawn(struct writer *w, unsigned slot, uint64_t generation, enum template_placement placement,
                        char *const *env) {
        putf(w, "SPAWN\nSLOT=%u\nGENERATION=%" PRIu64 "\nCGROUP=%d\n", slot, generation,
             placement == TEMPLATE_PLACEMENT_TEMPLATE ? 1 : 0);
        if (placement == TEMPLATE_PLACEMENT_MEMWARD)
                put(w, "PLACE=1\n", 8);
        for (char *const *e = env; e && *e; e++) {
                put(w, "ENV=", 4);
                put(w, *e, strlen(*e));
                put(w, "\n", 1);
        }
}

/* The common end of both formatters: measure, check, write. */
static int finish(struct writer *w, size_t size, size_t *ret_length) {
        if (w->n > TEMPLATE_MESSAGE_MAX)
                return -EMSGSIZE;
        if (w->n > size)
                return -ENOBUFS;
        *ret_length = w->n;
        return 0;
}

int template_spawn_format(unsigned slot, uint64_t generation, enum template_placement placement, char *const *env,
                          char *buf, size_t size, size_t *ret_length) {
        struct writer w = {};
        size_t n_env = 0;
        int r;

        if (slot > TEMPLATE_SLOT_MAX || generation == 0 || (unsigned) placement > TEMPLATE_PLACEMENT_MEMWARD)
                return -EINVAL;
        for (char *const *e = env; e && *e; e++, n_env++) {
                size_t n = strlen(*e);
                if (memchr(*e, '\n', n) || !env_entry_valid(*e, n))
                        return -EINVAL;
        }
        if (n_env > TEMPLATE_SPAWN_ENV_MAX)
                return -E2BIG;

        write_spawn(&w, slot, generation, placement, env);
        r = finish(&w, size, ret_length);
        if (r < 0)
                return r;
        w = (struct writer) { .buf = buf, .size = size };
        write_spawn(&w, slot, generation, placement, env);
        return 0;
}

static void write_placed(struct writer *w, const struct template_placed *p) {
        putf(w, "PLACED\nSLOT=%u\nGENERATION=%" PRIu64 "\n", p->slot, p->generation);
        if (p->error != 0)
                putf(w, "ERRNO=%d\n", p->error);
}

int template_placed_format(const struct template_placed *p, char *buf, size_t size, size_t *ret_length) {
        struct writer w = {};
        int r;

        if (p->slot > TEMPLATE_SLOT_MAX || p->generation == 0 || p->error < 0 || p->error > TEMPLATE_ERRNO_MAX)
                return -EINVAL;
        write_placed(&w, p);
        r = finish(&w, size, ret_length);
        if (r < 0)
                return r;
        w = (struct writer) { .buf = buf, .size = size };
        write_placed(&w, p);
        return 0;
}

/* A text field fit to be sent: NUL-terminated within its array, on one line. */
static bool text_valid(const char *s, size_t size) {
        const char *end = memchr(s, '\0', size);
        return end && !memchr(s, '\n', (size_t) (end - s));
}

static void write_message(struct writer *w, const struct template_message *m) {
        put(w, type_names[m->type], strlen(type_names[m->type]));
        put(w, "\n", 1);
        switch (m->type) {
        case TEMPLATE_READY:
                putf(w, "PROTOCOL=%u\n", TEMPLATE_PROTOCOL_VERSION);
                if (m->runtime[0]) {
                        put(w, "RUNTIME=", 8);
                        put(w, m->runtime, strlen(m->runtime));
                        put(w, "\n", 1);
                }
                if (m->place)
                        put(w, "PLACE=1\n", 8);
                break;
        case TEMPLATE_SPAWNED:
        case TEMPLATE_PLACE:
                putf(w, "SLOT=%u\nGENERATION=%" PRIu64 "\nPID=%d\n", m->slot, m->generation, (int) m->pid);
                break;
        case TEMPLATE_SPAWN_FAILED:
                putf(w, "SLOT=%u\nGENERATION=%" PRIu64 "\nERRNO=%d\n", m->slot, m->generation, m->error);
                if (m->message[0]) {
                        put(w, "MESSAGE=", 8);
                        put(w, m->message, strlen(m->message));
                        put(w, "\n", 1);
                }
                break;
        default:
                abort();
        }
}

int template_message_format(const struct template_message *m, char *buf, size_t size, size_t *ret_length) {
        struct writer w = {};
        int r;

        switch (m->type) {
        case TEMPLATE_READY:
                if (!text_valid(m->runtime, sizeof m->runtime))
                        return -EINVAL;
                break;
        case TEMPLATE_SPAWNED:
        case TEMPLATE_PLACE:
                if (m->slot > TEMPLATE_SLOT_MAX || m->generation == 0 || m->pid <= 1)
                        return -EINVAL;
                break;
        case TEMPLATE_SPAWN_FAILED:
                if (m->slot > TEMPLATE_SLOT_MAX || m->generation == 0 || m->error < 1 ||
                    m->error > TEMPLATE_ERRNO_MAX || !text_valid(m->message, sizeof m->message))
                        return -EINVAL;
                break;
        default:
                return -EINVAL;
        }

        write_message(&w, m);
        r = finish(&w, size, ret_length);
        if (r < 0)
                return r;
        w = (struct writer) { .buf = buf, .size = size };
        write_message(&w, m);
        return 0;
}

/* ---- the socket ---------------------------------------------------------------------- */

int template_channel_open(int ret_fds[2]) {
        _cleanup_close_ int ours = -1, theirs = -1;
        int sv[2], one = 1;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return negative_errno();
        ours = sv[0];
        theirs = sv[1];

        /* Only our end: the template reads with a blocking loop and nothing else to do. */
        int flags = fcntl(ours, F_GETFL);
        if (flags < 0 || fcntl(ours, F_SETFL, flags | O_NONBLOCK) < 0)
                return negative_errno();
        if (setsockopt(ours, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
                return negative_errno();

        ret_fds[0] = TAKE_FD(ours);
        ret_fds[1] = TAKE_FD(theirs);
        return 0;
}

int template_channel_send(int fd, const char *buf, size_t length, int fd_to_pass) {
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = length };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (length > TEMPLATE_MESSAGE_MAX)
                return -EMSGSIZE;
        if (fd_to_pass >= 0) {
                memset(&control, 0, sizeof control);
                mh.msg_control = &control;
                mh.msg_controllen = sizeof control;
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd_to_pass, sizeof(int));
        }

        ssize_t n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0)
                return errno == EWOULDBLOCK ? -EAGAIN : negative_errno();
        /* A SOCK_SEQPACKET packet goes whole or not at all. */
        if ((size_t) n != length)
                return -EIO;
        return 0;
}

/* recvmsg() returns 0 both for an empty packet and at the end of the stream: a peer that
 * hung up is what tells them apart. */
static bool peer_hung_up(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };

        if (poll(&p, 1, 0) < 0)
                return false;
        return p.revents & (POLLHUP | POLLRDHUP);
}

int template_channel_stop_receiving(int fd) {
        return shutdown(fd, SHUT_RD) < 0 ? negative_errno() : 0;
}

int template_channel_receive(int fd, struct template_packet *ret) {
        struct unix_received received;

        int r = unix_receive_with_credentials(fd, ret->data, sizeof ret->data, &received);
        if (r < 0)
                return r;
        /* Nothing at all, not even credentials: an empty packet or the end of the stream. */
        if (received.length == 0 && !received.truncated && received.n_fds == 0 && !received.has_credentials &&
            peer_hung_up(fd))
                return -ECONNRESET;

        ret->truncated = received.truncated;
        ret->length = received.length;
        ret->n_fds = received.n_fds;
        ret->has_credentials = received.has_credentials;
        ret->pid = received.credentials.pid; /* all 0 without credentials */
        ret->uid = received.credentials.uid;
        ret->gid = received.credentials.gid;
        return 0;
}
