/* See notify.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "memward/base/macro.h"
#include "memward/base/utf8.h"
#include "memward/linux/notify.h"
#include "memward/linux/unix_receive.h"

static const char *const reject_names[_NOTIFY_REJECT_MAX] = {
        [NOTIFY_REJECT_MALFORMED] = "malformed",
        [NOTIFY_REJECT_OVERSIZED] = "oversized",
        [NOTIFY_REJECT_FOREIGN] = "foreign",
        [NOTIFY_REJECT_NO_CREDENTIALS] = "no_credentials",
        [NOTIFY_REJECT_FDS] = "fds",
};

const char *notify_reject_reason_to_string(enum notify_reject_reason r) {
        if ((unsigned) r >= _NOTIFY_REJECT_MAX)
                return "unknown";
        return reject_names[r];
}

/* Strict decimal: digits only, no sign, no spaces, no overflow. */
static int parse_counter(const char *s, size_t n, uint64_t *ret) {
        uint64_t v = 0;

        if (n == 0 || n > 20)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EBADMSG;
                unsigned d = (unsigned) (s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -EBADMSG;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

static bool key_is(const char *line, size_t key_len, const char *key) {
        return strlen(key) == key_len && memcmp(line, key, key_len) == 0;
}

int notify_message_parse(const char *buf, size_t length, struct notify_message *ret) {
        struct notify_message m = {};

        if (memchr(buf, '\0', length))
                return -EBADMSG;

        for (size_t pos = 0; pos < length;) {
                const char *line = buf + pos;
                const char *nl = memchr(line, '\n', length - pos);
                size_t line_len = nl ? (size_t) (nl - line) : length - pos;
                pos += line_len + 1;

                if (line_len == 0)
                        continue; /* trailing or doubled newline */

                const char *eq = memchr(line, '=', line_len);
                if (!eq || eq == line) {
                        m.bad_lines++;
                        continue;
                }
                size_t key_len = (size_t) (eq - line);
                const char *value = eq + 1;
                size_t value_len = line_len - key_len - 1;

                if (key_is(line, key_len, "READY") || key_is(line, key_len, "WATCHDOG") ||
                    key_is(line, key_len, "STOPPING")) {
                        /* Only "1" means anything; WATCHDOG=trigger is systemd's "fail now". */
                        bool one = value_len == 1 && value[0] == '1';
                        if (key_is(line, key_len, "READY"))
                                m.ready = m.ready || one;
                        else if (key_is(line, key_len, "STOPPING"))
                                m.stopping = m.stopping || one;
                        else
                                m.watchdog = m.watchdog || one;
                } else if (key_is(line, key_len, "STATUS")) {
                        size_t n = utf8_truncate(value, value_len, NOTIFY_STATUS_MAX - 1);
                        memcpy(m.status, value, n);
                        m.status[n] = '\0';
                        m.has_status = true;
                } else if (key_is(line, key_len, "X_REQUESTS")) {
                        if (parse_counter(value, value_len, &m.requests) < 0)
                                m.bad_lines++;
                        else
                                m.has_requests = true;
                } else if (key_is(line, key_len, "X_INFLIGHT")) {
                        if (parse_counter(value, value_len, &m.inflight) < 0)
                                m.bad_lines++;
                        else
                                m.has_inflight = true;
                }
                /* Anything else (MAINPID=, ERRNO=, FDSTORE=, …) is not ours to act on. */
        }

        *ret = m;
        return 0;
}

void notify_message_merge(struct notify_message *into, const struct notify_message *later) {
        into->ready = into->ready || later->ready;
        into->watchdog = into->watchdog || later->watchdog;
        into->stopping = into->stopping || later->stopping;
        if (later->has_status) {
                memcpy(into->status, later->status, sizeof into->status);
                into->has_status = true;
        }
        if (later->has_requests) {
                into->requests = later->requests;
                into->has_requests = true;
        }
        /* X_INFLIGHT describes the moment of its datagram's X_REQUESTS: never paired with
         * an older count. */
        if (later->has_requests) {
                into->inflight = later->inflight;
                into->has_inflight = later->has_inflight;
        }
        into->bad_lines += later->bad_lines;
}

int notify_socket_open(char *ret_address, size_t size) {
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        uint64_t nonce = 0;
        int one = 1;

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
                return negative_errno();

        /* A random part so a stale memward in the same network namespace cannot collide. */
        if (getrandom(&nonce, sizeof nonce, GRND_NONBLOCK) < 0)
                nonce = (uint64_t) getpid() * 2654435761U;

        /* Abstract namespace: nothing to clean up on disk, and no writable directory needed
         * (containers often have none). */
        int n = snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "memward/%d/%016" PRIx64, (int) getpid(),
                         nonce);
        if (n < 0 || (size_t) n + 2 > size)
                return -ENAMETOOLONG;
        if (bind(fd, (struct sockaddr *) &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + (size_t) n)) < 0)
                return negative_errno();

        snprintf(ret_address, size, "@%s", sa.sun_path + 1);
        return TAKE_FD(fd);
}

int notify_socket_receive(int fd, struct notify_datagram *ret) {
        struct unix_received received;

        int r = unix_receive_with_credentials(fd, ret->data, sizeof ret->data, &received);
        if (r < 0)
                return r;

        ret->length = received.length;
        ret->truncated = received.truncated;
        ret->pid = received.credentials.pid; /* 0 without credentials */
        ret->n_fds = received.n_fds;
        return 0;
}
