/* See memstat.h. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "memward/base/macro.h"
#include "memward/linux/memstat.h"

/* Walks "key value" lines (separator: spaces, tabs or ':'). Calls fn for each line
 * whose value is a valid unsigned number. */
typedef void (*line_fn)(const char *key, size_t key_len, uint64_t value, void *userdata);

int parse_u64_prefix(const char *s, size_t n, uint64_t *ret, size_t *ret_used) {
        uint64_t v = 0;
        size_t i = 0;

        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
                unsigned d = (unsigned) (s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        if (i == 0)
                return -EBADMSG;
        *ret = v;
        if (ret_used)
                *ret_used = i;
        return 0;
}

static void for_each_line(const char *text, size_t length, line_fn fn, void *userdata) {
        for (size_t pos = 0; pos < length;) {
                const char *line = text + pos;
                const char *nl = memchr(line, '\n', length - pos);
                size_t n = nl ? (size_t) (nl - line) : length - pos;
                pos += n + 1;

                size_t k = 0;
                while (k < n && line[k] != ' ' && line[k] != '\t' && line[k] != ':')
                        k++;
                if (k == 0 || k == n)
                        continue;
                size_t v = k;
                while (v < n && (line[v] == ' ' || line[v] == '\t' || line[v] == ':'))
                        v++;
                uint64_t value;
                if (parse_u64_prefix(line + v, n - v, &value, NULL) < 0)
                        continue;
                fn(line, k, value, userdata);
        }
}

#define KEY_IS(key, key_len, lit) ((key_len) == sizeof(lit) - 1 && memcmp((key), (lit), sizeof(lit) - 1) == 0)

struct stat_acc {
        struct memory_stat s;
        bool has_anon, has_kernel;
        uint64_t kernel_parts;
};

static void on_stat(const char *key, size_t n, uint64_t v, void *userdata) {
        struct stat_acc *a = userdata;
        if (KEY_IS(key, n, "anon"))
                a->s.anon = v, a->has_anon = true;
        else if (KEY_IS(key, n, "file"))
                a->s.file = v;
        else if (KEY_IS(key, n, "kernel"))
                a->s.kernel = v, a->has_kernel = true;
        else if (KEY_IS(key, n, "kernel_stack") || KEY_IS(key, n, "pagetables") || KEY_IS(key, n, "slab") ||
                 KEY_IS(key, n, "percpu"))
                a->kernel_parts += v;
        else if (KEY_IS(key, n, "shmem"))
                a->s.shmem = v;
        else if (KEY_IS(key, n, "sock"))
                a->s.sock = v;
}

int memory_stat_parse(const char *text, size_t length, struct memory_stat *ret) {
        struct stat_acc a = {};

        for_each_line(text, length, on_stat, &a);
        if (!a.has_anon)
                return -EBADMSG;
        if (!a.has_kernel)
                a.s.kernel = a.kernel_parts;
        *ret = a.s;
        return 0;
}

struct events_acc {
        struct memory_events e;
        bool has_oom_kill;
};

static void on_events(const char *key, size_t n, uint64_t v, void *userdata) {
        struct events_acc *a = userdata;
        if (KEY_IS(key, n, "low"))
                a->e.low = v;
        else if (KEY_IS(key, n, "high"))
                a->e.high = v;
        else if (KEY_IS(key, n, "max"))
                a->e.max = v;
        else if (KEY_IS(key, n, "oom"))
                a->e.oom = v;
        else if (KEY_IS(key, n, "oom_kill"))
                a->e.oom_kill = v, a->has_oom_kill = true;
        else if (KEY_IS(key, n, "oom_group_kill"))
                a->e.oom_group_kill = v;
}

int memory_events_parse(const char *text, size_t length, struct memory_events *ret) {
        struct events_acc a = {};

        for_each_line(text, length, on_events, &a);
        if (!a.has_oom_kill)
                return -EBADMSG;
        *ret = a.e;
        return 0;
}

struct smaps_acc {
        struct smaps_rollup r;
        unsigned seen;
        unsigned private_seen;
};

static void on_smaps(const char *key, size_t n, uint64_t v, void *userdata) {
        struct smaps_acc *a = userdata;
        /* Values are in kB; 2^54 kB would overflow bytes, far beyond any machine. */
        if (v > UINT64_MAX / 1024)
                return;
        if (KEY_IS(key, n, "Rss"))
                a->r.rss = v * 1024, a->seen |= 1;
        else if (KEY_IS(key, n, "Pss"))
                a->r.pss = v * 1024, a->seen |= 2;
        else if (KEY_IS(key, n, "Anonymous"))
                a->r.anonymous = v * 1024, a->seen |= 4;
        else if (KEY_IS(key, n, "Pss_Anon"))
                a->r.pss_anon = v * 1024, a->r.has_pss_anon = true;
        else if (KEY_IS(key, n, "Private_Clean"))
                a->r.private_bytes += v * 1024, a->private_seen |= 1;
        else if (KEY_IS(key, n, "Private_Dirty"))
                a->r.private_bytes += v * 1024, a->private_seen |= 2;
}

int smaps_rollup_parse(const char *text, size_t length, struct smaps_rollup *ret) {
        struct smaps_acc a = {};

        for_each_line(text, length, on_smaps, &a);
        if (a.seen != 7)
                return -EBADMSG;
        a.r.has_private = a.private_seen == 3;
        if (!a.r.has_private)
                a.r.private_bytes = 0;
        *ret = a.r;
        return 0;
}

int statm_parse(const char *text, size_t length, uint64_t page_size, uint64_t *ret_resident, uint64_t *ret_shared) {
        uint64_t v[3];
        size_t pos = 0, used;

        /* size resident shared text lib data dt */
        for (int i = 0; i < 3; i++) {
                while (pos < length && text[pos] == ' ')
                        pos++;
                if (parse_u64_prefix(text + pos, length - pos, &v[i], &used) < 0)
                        return -EBADMSG;
                pos += used;
                if (pos < length && text[pos] != ' ' && text[pos] != '\n')
                        return -EBADMSG;
        }
        if (v[1] > UINT64_MAX / page_size || v[2] > v[1])
                return -EBADMSG;
        *ret_resident = v[1] * page_size;
        *ret_shared = v[2] * page_size;
        return 0;
}

struct meminfo_acc {
        uint64_t total, available;
        unsigned seen;
};

static void on_meminfo(const char *key, size_t n, uint64_t v, void *userdata) {
        struct meminfo_acc *a = userdata;
        if (v > UINT64_MAX / 1024)
                return;
        if (KEY_IS(key, n, "MemTotal"))
                a->total = v * 1024, a->seen |= 1;
        else if (KEY_IS(key, n, "MemAvailable"))
                a->available = v * 1024, a->seen |= 2;
}

int meminfo_parse(const char *text, size_t length, uint64_t *ret_total, uint64_t *ret_available) {
        struct meminfo_acc a = {};

        for_each_line(text, length, on_meminfo, &a);
        if (a.seen != 3)
                return -EBADMSG;
        *ret_total = a.total;
        *ret_available = a.available;
        return 0;
}

int parse_u64_file(const char *text, size_t length, uint64_t *ret) {
        size_t used;

        while (length > 0 && (text[length - 1] == '\n' || text[length - 1] == ' '))
                length--;
        if (length == 3 && memcmp(text, "max", 3) == 0) {
                *ret = UINT64_MAX;
                return 0;
        }
        int r = parse_u64_prefix(text, length, ret, &used);
        if (r < 0)
                return r == -ERANGE ? -ERANGE : -EBADMSG;
        return used == length ? 0 : -EBADMSG;
}
