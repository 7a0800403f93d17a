/* See metrics.h.
 *
 * Everything here reads the supervisor as the last event left it; the only I/O is
 * process_self_read() (our own /proc/self, never a cgroup file) and metrics_start().
 * Counters carry slot labels, not pids, so the number of series stays bounded by the
 * worker count however many workers come and go; only the memory gauges name the pid,
 * and only of workers alive now. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memward/base/log.h"
#include "memward/base/macro.h"
#include "memward/base/utf8.h"
#include "memward/endpoint/http.h"
#include "memward/endpoint/metrics.h"
#include "memward/supervisor/supervisor.h"

/* ---- text buffer ------------------------------------------------------------------- */

#define TEXT_BUFFER_INITIAL 4096U

void text_buffer_init(struct text_buffer *b, size_t limit) {
        *b = (struct text_buffer) { .limit = limit };
}

void text_buffer_done(struct text_buffer *b) {
        free(b->data);
        *b = (struct text_buffer) {};
}

/* Room for n more bytes and the terminating NUL. */
static bool text_buffer_reserve(struct text_buffer *b, size_t n) {
        if (b->error)
                return false;
        if (n >= b->limit || b->length + n + 1 > b->limit) {
                b->error = -E2BIG;
                return false;
        }
        size_t need = b->length + n + 1;
        if (need <= b->allocated)
                return true;
        size_t a = b->allocated ?: TEXT_BUFFER_INITIAL;
        while (a < need)
                a *= 2;
        if (a > b->limit)
                a = b->limit;
        char *p = realloc(b->data, a);
        if (!p) {
                b->error = -ENOMEM;
                return false;
        }
        b->data = p;
        b->allocated = a;
        return true;
}

void text_buffer_append(struct text_buffer *b, const char *s, size_t n) {
        if (!text_buffer_reserve(b, n))
                return;
        memcpy(b->data + b->length, s, n);
        b->length += n;
        b->data[b->length] = '\0';
}

void text_buffer_printf(struct text_buffer *b, const char *format, ...) {
        va_list ap;
        int n;

        if (b->error)
                return;
        /* Try the room there is first: nearly every line fits without a second pass. */
        size_t room = b->allocated > b->length ? b->allocated - b->length : 0;
        va_start(ap, format);
        n = vsnprintf(room ? b->data + b->length : NULL, room, format, ap);
        va_end(ap);
        if (n < 0) {
                b->error = -EINVAL;
                return;
        }
        if ((size_t) n < room) {
                b->length += (size_t) n;
                return;
        }
        if (!text_buffer_reserve(b, (size_t) n))
                return;
        va_start(ap, format);
        (void) vsnprintf(b->data + b->length, (size_t) n + 1, format, ap);
        va_end(ap);
        b->length += (size_t) n;
}


static void text_buffer_write(void *userdata, const char *s, size_t n) {
        text_buffer_append(userdata, s, n);
}

void text_buffer_json_string(struct text_buffer *b, const char *s) {
        utf8_json_string(s, text_buffer_write, b);
}

int text_buffer_finish(struct text_buffer *b, char **ret_data, size_t *ret_length) {
        if (!b->error && !b->data)
                text_buffer_append(b, "", 0);
        if (b->error) {
                int r = b->error;
                text_buffer_done(b);
                return r;
        }
        *ret_data = TAKE_PTR(b->data);
        *ret_length = b->length;
        *b = (struct text_buffer) {};
        return 0;
}

/* ---- the process itself ------------------------------------------------------------ */

int proc_stat_times_parse(const char *text, size_t length, uint64_t *ret_cpu_ticks, uint64_t *ret_start_ticks) {
        char buf[1024];
        unsigned long long utime, stime, start;

        if (length >= sizeof buf)
                length = sizeof buf - 1;
        memcpy(buf, text, length);
        buf[length] = '\0';
        /* comm may contain spaces and parentheses: fields count from the last ')'. */
        const char *p = strrchr(buf, ')');
        if (!p)
                return -EBADMSG;
        /* After ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
         * utime(14) stime(15) cutime cstime priority nice num_threads itrealvalue starttime(22). */
        if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu",
                   &utime, &stime, &start) != 3)
                return -EBADMSG;
        *ret_cpu_ticks = utime + stime;
        *ret_start_ticks = start;
        return 0;
}

int proc_stat_btime_parse(const char *text, size_t length, uint64_t *ret_btime) {
        for (const char *p = text, *end = text + length; p < end;) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);
                if (n > 6 && strncmp(p, "btime ", 6) == 0) {
                        char num[32];
                        char *e;
                        if (n - 6 >= sizeof num)
                                return -EBADMSG;
                        memcpy(num, p + 6, n - 6);
                        num[n - 6] = '\0';
                        errno = 0;
                        unsigned long long v = strtoull(num, &e, 10);
                        if (errno || e == num || *e)
                                return -EBADMSG;
                        *ret_btime = v;
                        return 0;
                }
                p += n + 1;
        }
        return -EBADMSG;
}

static ssize_t read_file(const char *proc_root, const char *name, char *buf, size_t size) {
        char path[256];

        snprintf(path, sizeof path, "%s/%s", proc_root, name);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        ssize_t n = read(fd, buf, size - 1);
        if (n < 0)
                return negative_errno();
        buf[n] = '\0';
        return n;
}

int process_self_read(const char *proc_root, struct process_self *ret) {
        /* Boot time does not change: /proc/stat, which grows with the number of CPUs and
         * interrupts, is read once. */
        static uint64_t btime;
        char buf[1024];
        uint64_t cpu, start;
        unsigned long long resident;
        long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
        ssize_t n;
        int r;

        if (ticks <= 0 || page <= 0)
                return -EINVAL;

        n = read_file(proc_root, "self/stat", buf, sizeof buf);
        if (n < 0)
                return (int) n;
        r = proc_stat_times_parse(buf, (size_t) n, &cpu, &start);
        if (r < 0)
                return r;

        n = read_file(proc_root, "self/statm", buf, sizeof buf);
        if (n < 0)
                return (int) n;
        if (sscanf(buf, "%*u %llu", &resident) != 1)
                return -EBADMSG;

        if (btime == 0) {
                char path[256];
                _cleanup_free_ char *line = NULL;
                size_t size = 0;
                ssize_t len;

                snprintf(path, sizeof path, "%s/stat", proc_root);
                _cleanup_fclose_ FILE *f = fopen(path, "re");
                if (!f)
                        return negative_errno();
                /* Line by line: the "intr" line before btime can be longer than any fixed buffer
                 * on a machine with many interrupts. */
                r = -EBADMSG;
                while (r < 0 && (len = getline(&line, &size, f)) > 0)
                        if (startswith_lit(line, "btime "))
                                r = proc_stat_btime_parse(line, (size_t) len, &btime);
                if (r < 0)
                        return r;
        }

        *ret = (struct process_self) {
                .resident = (uint64_t) resident * (uint64_t) page,
                .cpu_seconds = (double) cpu / (double) ticks,
                .start_time = (double) btime + (double) start / (double) ticks,
        };
        return 0;
}

/* ---- Prometheus exposition --------------------------------------------------------- */

static void family(struct text_buffer *b, const char *name, const char *type, const char *help) {
        text_buffer_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values escape '\\', '"' and newline (exposition format 0.0.4). */
static void label_value(struct text_buffer *b, const char *s) {
        for (const char *p = s; *p; p++) {
                if (*p == '\\')
                        text_buffer_append(b, "\\\\", 2);
                else if (*p == '"')
                        text_buffer_append(b, "\\\"", 2);
                else if (*p == '\n')
                        text_buffer_append(b, "\\n", 2);
                else
                        text_buffer_append(b, p, 1);
        }
}

static void sample_str(struct text_buffer *b, const char *name, const char *label, const char *value, uint64_t v) {
        text_buffer_printf(b, "%s{%s=\"", name, label);
        label_value(b, value);
        text_buffer_printf(b, "\"} %" PRIu64 "\n", v);
}

static int compare_workers(const void *a, const void *b) {
        const struct worker *x = *(const struct worker *const *) a, *y = *(const struct worker *const *) b;

        if (x->slot != y->slot)
                return x->slot < y->slot ? -1 : 1;
        if (x->generation != y->generation)
                return x->generation < y->generation ? -1 : 1;
        return 0;
}

/* Every live worker, ordered by slot and generation, so output is stable. NULL with
 * *ret_n 0 when there are none; the buffer is marked failed when malloc fails. */
static const struct worker **sorted_workers(const struct supervisor *s, struct text_buffer *b, size_t *ret_n) {
        size_t n = 0;

        *ret_n = 0;
        for (const struct worker *w = s->workers; w; w = w->next)
                n++;
        if (n == 0)
                return NULL;
        const struct worker **l = malloc(n * sizeof *l);
        if (!l) {
                b->error = b->error ?: -ENOMEM;
                return NULL;
        }
        n = 0;
        for (const struct worker *w = s->workers; w; w = w->next)
                l[n++] = w;
        qsort(l, n, sizeof *l, compare_workers);
        *ret_n = n;
        return l;
}

/* The worker that serves slot i now (or its first start), NULL when none. */
static const struct worker *slot_worker(const struct supervisor *s, unsigned i) {
        return i < s->n_slots ? s->slots[i].active : NULL;
}

static double unix_time(usec_t mono, usec_t now, usec_t realtime) {
        /* CLOCK_MONOTONIC stamps are turned into wall-clock time through the offset between
         * the two clocks now; a clock step since then shifts old stamps with it. */
        usec_t ago = now > mono ? now - mono : 0;
        return realtime > ago ? (double) (realtime - ago) / (double) USEC_PER_SEC : 0.0;
}

static void render_worker_memory(const struct worker *w, struct text_buffer *b) {
        const struct worker_memory *m = &w->mem;
        struct {
                const char *kind;
                bool present;
                uint64_t value;
        } kinds[] = {
                { "current", true, m->current },
                { "anon", true, m->anon },
                { "file", true, m->file },
                { "kernel", true, m->kernel },
                /* What memward judges the worker by, as it last judged it: never a floor
                 * of our own, which could disagree with the recycle it led to. */
                { "retained", w->figure.source != POLICY_FLOOR_NONE, w->figure.floor },
                { "baseline", m->has_baseline, m->baseline },
                { "peak", true, m->peak },
        };

        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (kinds[i].present)
                        text_buffer_printf(b,
                                           "memward_worker_memory_bytes{slot=\"%u\",pid=\"%d\",kind=\"%s\"} %" PRIu64
                                           "\n",
                                           w->slot, (int) w->pid, kinds[i].kind, kinds[i].value);
}

void metrics_render_prometheus(const struct supervisor *s, const struct process_self *self, usec_t now,
                               usec_t realtime, struct text_buffer *b) {
        unsigned by_state[_WORKER_STATE_MAX] = {};
        size_t n;

        family(b, "memward_build_info", "gauge", "memward's version; always 1.");
        sample_str(b, "memward_build_info", "version", MEMWARD_VERSION, 1);

        family(b, "memward_mode_info", "gauge",
               "Where worker memory is read from: cgroup (a leaf per worker) or procfs (/proc per process tree); "
               "always 1.");
        sample_str(b, "memward_mode_info", "accounting", accounting_mode_to_string(s->monitor.cgroup.mode), 1);

        family(b, "memward_workers_target", "gauge", "Workers memward keeps running (workers.count, SIGTTIN/SIGTTOU).");
        text_buffer_printf(b, "memward_workers_target %u\n", s->target);

        for (const struct worker *w = s->workers; w; w = w->next)
                if (w->state < _WORKER_STATE_MAX)
                        by_state[w->state]++;
        family(b, "memward_workers", "gauge", "Worker processes by state.");
        for (unsigned i = 0; i < _WORKER_STATE_MAX; i++)
                sample_str(b, "memward_workers", "state", worker_state_to_string(i), by_state[i]);

        _cleanup_free_ const struct worker **sorted = sorted_workers(s, b, &n);
        family(b, "memward_worker_memory_bytes", "gauge",
               "Memory of each live worker at the last sample, by kind; retained is the floor memward judges it by "
               "(its request-end readings while fresh, else the floor over memory.retained_window; once a recycle "
               "is decided, the floor that decided it), baseline the window's floor after warmup.");
        for (size_t i = 0; i < n; i++)
                if (sorted[i]->mem.sampled)
                        render_worker_memory(sorted[i], b);

        family(b, "memward_worker_requests_total", "counter",
               "Requests the slot's serving worker reported (X_REQUESTS=); starts again at 0 when the slot's worker "
               "is replaced.");
        for (unsigned i = 0; i < s->n_slots && i < s->target; i++) {
                const struct worker *w = slot_worker(s, i);
                if (w)
                        text_buffer_printf(b, "memward_worker_requests_total{slot=\"%u\"} %" PRIu64 "\n", i,
                                           w->requests);
        }

        family(b, "memward_worker_start_time_seconds", "gauge", "Unix time the slot's serving worker was spawned.");
        for (unsigned i = 0; i < s->n_slots && i < s->target; i++) {
                const struct worker *w = slot_worker(s, i);
                if (w)
                        text_buffer_printf(b, "memward_worker_start_time_seconds{slot=\"%u\"} %.3f\n", i,
                                           unix_time(w->spawned_at, now, realtime));
        }

        family(b, "memward_worker_generation", "gauge",
               "Spawns into the slot so far; rises by one with every replacement (for annotations).");
        for (unsigned i = 0; i < s->n_slots && i < s->target; i++)
                text_buffer_printf(b, "memward_worker_generation{slot=\"%u\"} %llu\n", i, s->slots[i].generation);

        family(b, "memward_recycles_total", "counter", "Worker recycles started, by reason.");
        for (unsigned r = RECYCLE_NONE + 1; r < _RECYCLE_REASON_MAX; r++)
                sample_str(b, "memward_recycles_total", "reason", recycle_reason_to_string(r), s->recycles[r]);

        family(b, "memward_worker_exits_total", "counter",
               "Worker processes that ended: by exit(), by a signal, or OOM-killed.");
        for (unsigned h = 0; h < _WORKER_EXIT_MAX; h++)
                sample_str(b, "memward_worker_exits_total", "how", worker_exit_how_to_string(h), s->exits[h]);

        family(b, "memward_spawn_failures_total", "counter", "Worker spawns that failed (fork, exec, cgroup).");
        text_buffer_printf(b, "memward_spawn_failures_total %" PRIu64 "\n", s->spawn_failures);

        if (s->monitor.has_psi) {
                const struct psi_stats *p = &s->monitor.psi;
                family(b, "memward_pressure_avg10", "gauge",
                       "Memory pressure of the workers' group over the last 10 s, in percent as the kernel's "
                       "memory.pressure reports it.");
                text_buffer_printf(b, "memward_pressure_avg10{kind=\"some\"} %.2f\n", p->some.avg10);
                if (p->has_full)
                        text_buffer_printf(b, "memward_pressure_avg10{kind=\"full\"} %.2f\n", p->full.avg10);
                family(b, "memward_pressure_stall_seconds_total", "counter",
                       "Time tasks of the workers' group stalled on memory (PSI total).");
                text_buffer_printf(b, "memward_pressure_stall_seconds_total{kind=\"some\"} %.6f\n",
                                   (double) p->some.total / (double) USEC_PER_SEC);
                if (p->has_full)
                        text_buffer_printf(b, "memward_pressure_stall_seconds_total{kind=\"full\"} %.6f\n",
                                           (double) p->full.total / (double) USEC_PER_SEC);
        }

        family(b, "memward_pressure_events_total", "counter",
               "PSI trigger events (or avg10 threshold crossings when polling).");
        text_buffer_printf(b, "memward_pressure_events_total %" PRIu64 "\n", s->pressure_events);

        if (s->monitor.group_usage > 0) {
                family(b, "memward_group_memory_bytes", "gauge",
                       "Memory use of the group: the cgroup's memory.current, v1 usage, or MemTotal - MemAvailable.");
                text_buffer_printf(b, "memward_group_memory_bytes %" PRIu64 "\n", s->monitor.group_usage);
        }
        if (s->monitor.group_limit > 0) {
                family(b, "memward_group_memory_limit_bytes", "gauge",
                       "The memory limit of the group (base of percentages in memory:).");
                text_buffer_printf(b, "memward_group_memory_limit_bytes %" PRIu64 "\n", s->monitor.group_limit);
        }

        family(b, "memward_notify_rejected_total", "counter", "Notify datagrams rejected, by why.");
        for (unsigned w = 0; w < _NOTIFY_REJECT_MAX; w++)
                sample_str(b, "memward_notify_rejected_total", "why", notify_reject_reason_to_string(w),
                           s->notify_rejected[w]);

        if (self) {
                family(b, "process_resident_memory_bytes", "gauge", "Resident memory of the memward process.");
                text_buffer_printf(b, "process_resident_memory_bytes %" PRIu64 "\n", self->resident);
                family(b, "process_cpu_seconds_total", "counter", "User and system CPU time of the memward process.");
                text_buffer_printf(b, "process_cpu_seconds_total %.2f\n", self->cpu_seconds);
                family(b, "process_start_time_seconds", "gauge", "Unix time the memward process started.");
                text_buffer_printf(b, "process_start_time_seconds %.2f\n", self->start_time);
        }
}

/* ---- /healthz ---------------------------------------------------------------------- */

bool metrics_healthy(const struct supervisor *s, char *reason, size_t size) {
        unsigned ready = 0;

        for (unsigned i = 0; i < s->target && i < s->n_slots; i++) {
                const struct worker *w = s->slots[i].active;
                if (w && w->state == WORKER_READY)
                        ready++;
        }
        if (s->shutting_down) {
                snprintf(reason, size, "shutting down, %u/%u workers ready", ready, s->target);
                return false;
        }
        snprintf(reason, size, "%u/%u workers ready", ready, s->target);
        return ready >= s->target;
}

/* ---- /status ----------------------------------------------------------------------- */

static void json_key(struct text_buffer *b, bool *first, const char *key) {
        text_buffer_printf(b, "%s\"%s\":", *first ? "" : ",", key);
        *first = false;
}

static void json_u64(struct text_buffer *b, bool *first, const char *key, uint64_t v) {
        json_key(b, first, key);
        text_buffer_printf(b, "%" PRIu64, v);
}

static void json_u64_or_null(struct text_buffer *b, bool *first, const char *key, bool present, uint64_t v) {
        json_key(b, first, key);
        if (present)
                text_buffer_printf(b, "%" PRIu64, v);
        else
                text_buffer_append(b, "null", 4);
}

static void json_str(struct text_buffer *b, bool *first, const char *key, const char *v) {
        json_key(b, first, key);
        if (v)
                text_buffer_json_string(b, v);
        else
                text_buffer_append(b, "null", 4);
}

/* "retained" and "retained_source" of a worker or a recycle record: the figure memward
 * judged by, null when it had no floor. */
static void json_figure(struct text_buffer *b, bool *first, const struct policy_memory_figure *f) {
        bool known = f->source != POLICY_FLOOR_NONE;
        json_u64_or_null(b, first, "retained", known, f->floor);
        json_str(b, first, "retained_source", known ? policy_floor_source_to_string(f->source) : NULL);
}

static void json_seconds(struct text_buffer *b, bool *first, const char *key, usec_t v) {
        json_key(b, first, key);
        text_buffer_printf(b, "%.3f", (double) v / (double) USEC_PER_SEC);
}

static const char *format_utc(char *buf, size_t size, usec_t t) {
        time_t sec = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        if (!gmtime_r(&sec, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
                snprintf(buf, size, "1970-01-01T00:00:00.000Z");
                return buf;
        }
        size_t n = strlen(buf);
        snprintf(buf + n, size - n, ".%03uZ", (unsigned) ((t % USEC_PER_SEC) / USEC_PER_MSEC));
        return buf;
}

static const char *worker_role(const struct supervisor *s, const struct worker *w) {
        if (w->slot < s->n_slots) {
                if (s->slots[w->slot].active == w)
                        return "active";
                if (s->slots[w->slot].replacement == w)
                        return "replacement";
        }
        return "retiring";
}

static void render_status_worker(const struct supervisor *s, const struct worker *w, usec_t now,
                                 struct text_buffer *b) {
        const struct worker_memory *m = &w->mem;
        bool first = true, mfirst = true;
        enum recycle_reason last = w->slot < s->n_slots ? s->slots[w->slot].last_recycle : RECYCLE_NONE;

        text_buffer_append(b, "{", 1);
        json_u64(b, &first, "slot", w->slot);
        json_u64(b, &first, "pid", (uint64_t) w->pid);
        json_u64(b, &first, "generation", w->generation);
        json_str(b, &first, "state", worker_state_to_string(w->state));
        json_str(b, &first, "role", worker_role(s, w));
        json_seconds(b, &first, "age_seconds", now > w->spawned_at ? now - w->spawned_at : 0);
        json_u64(b, &first, "requests", w->requests);
        json_u64_or_null(b, &first, "request_limit", w->request_limit > 0, w->request_limit);
        json_str(b, &first, "recycle", w->recycle_reason != RECYCLE_NONE ? recycle_reason_to_string(w->recycle_reason)
                                                                          : NULL);
        json_str(b, &first, "last_recycle", last != RECYCLE_NONE ? recycle_reason_to_string(last) : NULL);
        json_str(b, &first, "status", w->status);

        json_key(b, &first, "memory");
        text_buffer_append(b, "{", 1);
        json_key(b, &mfirst, "sampled");
        text_buffer_printf(b, "%s", m->sampled ? "true" : "false");
        json_u64(b, &mfirst, "current", m->current);
        json_u64(b, &mfirst, "anon", m->anon);
        json_u64(b, &mfirst, "file", m->file);
        json_u64(b, &mfirst, "kernel", m->kernel);
        json_u64(b, &mfirst, "peak", m->peak);
        json_u64(b, &mfirst, "metric", m->metric);
        json_figure(b, &mfirst, &w->figure);
        json_u64_or_null(b, &mfirst, "baseline", m->has_baseline, m->baseline);
        text_buffer_append(b, "}}", 2);
}

void metrics_render_status(const struct supervisor *s, usec_t now, usec_t realtime, struct text_buffer *b) {
        char reason[96], when[40];
        bool first = true;
        size_t n;

        bool healthy = metrics_healthy(s, reason, sizeof reason);
        unsigned ready = 0;
        for (unsigned i = 0; i < s->target && i < s->n_slots; i++)
                if (s->slots[i].active && s->slots[i].active->state == WORKER_READY)
                        ready++;

        text_buffer_append(b, "{", 1);
        json_str(b, &first, "version", MEMWARD_VERSION);
        json_u64(b, &first, "pid", (uint64_t) getpid());
        json_str(b, &first, "accounting", accounting_mode_to_string(s->monitor.cgroup.mode));
        json_str(b, &first, "metric", memory_metric_to_string(s->config->memory.metric));
        json_u64(b, &first, "target", s->target);
        json_u64(b, &first, "ready", ready);
        json_key(b, &first, "healthy");
        text_buffer_printf(b, "%s", healthy ? "true" : "false");
        json_str(b, &first, "health", reason);
        json_key(b, &first, "shutting_down");
        text_buffer_printf(b, "%s", s->shutting_down ? "true" : "false");
        json_str(b, &first, "time", format_utc(when, sizeof when, realtime));

        json_key(b, &first, "workers");
        text_buffer_append(b, "[", 1);
        _cleanup_free_ const struct worker **sorted = sorted_workers(s, b, &n);
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        text_buffer_append(b, ",", 1);
                render_status_worker(s, sorted[i], now, b);
        }
        text_buffer_append(b, "]", 1);

        json_key(b, &first, "recycles");
        text_buffer_append(b, "[", 1);
        for (size_t i = 0;; i++) {
                const struct recycle_record *r = recycle_history_get(&s->recycle_history, i);
                bool rfirst = true;
                if (!r)
                        break;
                text_buffer_append(b, i > 0 ? ",{" : "{", i > 0 ? 2 : 1);
                json_str(b, &rfirst, "time", format_utc(when, sizeof when, r->at));
                json_u64(b, &rfirst, "slot", r->slot);
                json_u64(b, &rfirst, "pid", (uint64_t) r->pid);
                json_u64(b, &rfirst, "generation", r->generation);
                json_str(b, &rfirst, "reason", recycle_reason_to_string(r->reason));
                json_u64(b, &rfirst, "requests", r->requests);
                json_seconds(b, &rfirst, "age_seconds", r->age);
                json_u64(b, &rfirst, "anon", r->anon);
                json_figure(b, &rfirst, &r->figure);
                text_buffer_append(b, "}", 1);
        }
        text_buffer_append(b, "]", 1);

        json_key(b, &first, "recycles_total");
        text_buffer_append(b, "{", 1);
        bool tfirst = true;
        for (unsigned r = RECYCLE_NONE + 1; r < _RECYCLE_REASON_MAX; r++)
                json_u64(b, &tfirst, recycle_reason_to_string(r), s->recycles[r]);
        text_buffer_append(b, "}}\n", 3);
}

/* ---- the endpoint ------------------------------------------------------------------ */

#define CONTENT_TYPE_TEXT "text/plain; charset=utf-8"
#define CONTENT_TYPE_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TYPE_JSON "application/json"

static int reply_text(struct http_reply *ret, unsigned status, const char *content_type, const char *format, ...)
        _printf_(4, 5);
static int reply_text(struct http_reply *ret, unsigned status, const char *content_type, const char *format, ...) {
        va_list ap;
        char *body;
        int n;

        va_start(ap, format);
        n = vasprintf(&body, format, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        *ret = (struct http_reply) {
                .status = status,
                .content_type = content_type,
                .body = body,
                .length = (size_t) n,
        };
        return 0;
}

static int reply_buffer(struct http_reply *ret, struct text_buffer *b, const char *content_type) {
        char *data;
        size_t length;

        int r = text_buffer_finish(b, &data, &length);
        if (r < 0)
                return r;
        *ret = (struct http_reply) {
                .status = 200,
                .content_type = content_type,
                .body = data,
                .length = length,
        };
        return 0;
}

int metrics_handle_request(void *userdata, const char *method, const char *path, struct http_reply *ret) {
        const struct supervisor *s = userdata;
        struct text_buffer b;
        char reason[96];
        enum { METRICS, HEALTHZ, STATUS } what;

        if (streq(path, "/metrics"))
                what = METRICS;
        else if (streq(path, "/healthz"))
                what = HEALTHZ;
        else if (streq(path, "/status"))
                what = STATUS;
        else
                return reply_text(ret, 404, CONTENT_TYPE_TEXT, "not found: try /metrics, /healthz or /status\n");

        if (!streq(method, "GET") && !streq(method, "HEAD")) {
                int r = reply_text(ret, 405, CONTENT_TYPE_TEXT, "method not allowed: use GET\n");
                ret->allow = "GET, HEAD";
                return r;
        }

        usec_t now = now_monotonic(), realtime = now_realtime();
        switch (what) {
        case HEALTHZ: {
                bool ok = metrics_healthy(s, reason, sizeof reason);
                return reply_text(ret, ok ? 200 : 503, CONTENT_TYPE_TEXT, "%s: %s\n", ok ? "ok" : "unavailable",
                                  reason);
        }
        case METRICS: {
                struct process_self self;
                bool has_self = process_self_read("/proc", &self) >= 0;
                text_buffer_init(&b, METRICS_RENDER_MAX);
                metrics_render_prometheus(s, has_self ? &self : NULL, now, realtime, &b);
                return reply_buffer(ret, &b, CONTENT_TYPE_PROMETHEUS);
        }
        case STATUS:
                text_buffer_init(&b, METRICS_RENDER_MAX);
                metrics_render_status(s, now, realtime, &b);
                return reply_buffer(ret, &b, CONTENT_TYPE_JSON);
        }
        return -EINVAL;
}

int metrics_start(struct supervisor *s, struct http_server **ret) {
        const struct memward_config *c = s->config;

        *ret = NULL;
        if (!c->metrics.listen || !c->metrics.listen[0])
                return 0;
        /* The sample tick keeps these fresh; read them once now so that a scrape before
         * the first tick already has every family. */
        (void) cgroup_group_usage(&s->monitor.cgroup, s->monitor.proc_root, &s->monitor.group_usage);
        (void) monitor_read_pressure(&s->monitor);
        struct http_options o = {
                .address = c->metrics.listen,
                .max_connections = c->metrics.max_connections,
                .timeout = c->metrics.timeout,
        };
        return http_server_new(s->loop, &o, metrics_handle_request, s, ret);
}
