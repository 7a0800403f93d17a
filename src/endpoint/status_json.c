/* See status_json.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/base/text_buffer.h"
#include "memward/endpoint/metrics.h"
#include "memward/endpoint/status_json.h"
#include "memward/supervisor/supervisor.h"

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
        if (s->template)
                json_u64(b, &first, "template_generation", w->template_generation); /* 0: not forked yet */
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
        json_str(b, &mfirst, "anon_from", m->sampled ? memory_reading_to_string(m->anon_from) : NULL);
        json_u64(b, &mfirst, "file", m->file);
        json_u64(b, &mfirst, "kernel", m->kernel);
        json_u64(b, &mfirst, "peak", m->peak);
        json_u64(b, &mfirst, "metric", m->metric);
        json_figure(b, &mfirst, &w->figure);
        /* The figure's, like retained: for a decided recycle the one it was decided with,
         * as its event=recycle line says, not one the worker's samples found after. */
        json_u64_or_null(b, &mfirst, "baseline", w->figure.has_baseline, w->figure.baseline);
        text_buffer_append(b, "}}", 2);
}

/* Template mode: the template as a row of its own (docs/fork-server.md §6). */
static void render_status_template(const struct supervisor *s, usec_t now, struct text_buffer *b) {
        const struct template_process *t = s->template;
        const struct template_counters *c = &s->template_counters;
        bool first = true, mfirst = true;
        char when[40];
        uint64_t restarts = c->exited + c->start_failed;

        for (unsigned f = 0; f < _TEMPLATE_FAULT_MAX; f++)
                restarts += c->faults[f];
        text_buffer_append(b, "{", 1);
        json_u64(b, &first, "pid", (uint64_t) (t->pid > 0 ? t->pid : 0));
        json_u64(b, &first, "generation", t->generation);
        json_str(b, &first, "phase", template_process_phase(t));
        json_str(b, &first, "runtime", t->runtime);
        json_str(b, &first, "started", t->pid > 0 ? format_utc(when, sizeof when, t->started_realtime) : NULL);
        json_seconds(b, &first, "age_seconds", t->pid > 0 && now > t->started_at ? now - t->started_at : 0);
        json_u64(b, &first, "restarts", restarts);
        json_u64_or_null(b, &first, "reload_generation", s->template_next != NULL,
                         s->template_next ? s->template_next->generation : 0);
        json_key(b, &first, "memory");
        text_buffer_append(b, "{", 1);
        json_key(b, &mfirst, "sampled");
        text_buffer_printf(b, "%s", t->mem.sampled ? "true" : "false");
        json_u64(b, &mfirst, "current", t->mem.current);
        json_u64(b, &mfirst, "anon", t->mem.anon);
        json_u64_or_null(b, &mfirst, "rss", t->leaf.dir_fd < 0, t->mem.rss);
        json_u64_or_null(b, &mfirst, "pss", t->leaf.dir_fd < 0, t->mem.pss);
        text_buffer_append(b, "}}", 2);
}

void status_json_render(const struct supervisor *s, usec_t now, usec_t realtime, struct text_buffer *b) {
        char reason[96], when[40];
        bool first = true;
        size_t n;

        bool healthy = metrics_healthy(s, reason, sizeof reason);
        unsigned ready = supervisor_ready_workers(s);

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
        json_str(b, &first, "mode", workers_mode_to_string(s->config->workers.mode));
        if (s->template) {
                json_key(b, &first, "template");
                render_status_template(s, now, b);
        }

        json_key(b, &first, "reload");
        bool rl = true;
        text_buffer_append(b, "{", 1);
        json_key(b, &rl, "last_successful");
        text_buffer_printf(b, "%s", s->reload.last_successful ? "true" : "false");
        json_str(b, &rl, "last_success", format_utc(when, sizeof when, s->reload.last_success));
        json_str(b, &rl, "last_attempt",
                 s->reload.last_attempt > 0 ? format_utc(when, sizeof when, s->reload.last_attempt) : NULL);
        json_str(b, &rl, "last_error", s->reload.last_error[0] ? s->reload.last_error : NULL);
        json_u64(b, &rl, "successes", s->reload.successes);
        json_u64(b, &rl, "failures", s->reload.failures);
        text_buffer_append(b, "}", 1);

        json_key(b, &first, "workers");
        text_buffer_append(b, "[", 1);
        _cleanup_free_ const struct worker **sorted = NULL;
        if (worker_list_sorted(s->workers, &sorted, &n) < 0)
                text_buffer_fail(b, -ENOMEM);
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
