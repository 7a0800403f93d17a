/* See exposition.h.
 *
 * Counters carry slot labels, not pids, so the number of series stays bounded by the
 * worker count however many workers come and go; only the memory gauges name the pid,
 * and only of workers alive now. */
#include <errno.h>
#include <inttypes.h>

#include "memward/base/log.h"
#include "memward/base/macro.h"
#include "memward/base/text_buffer.h"
#include "memward/endpoint/exposition.h"
#include "memward/linux/proc.h"
#include "memward/supervisor/supervisor.h"

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
                 * or a baseline of our own, which could disagree with the recycle it led to. */
                { "retained", w->figure.source != POLICY_FLOOR_NONE, w->figure.floor },
                { "baseline", w->figure.has_baseline, w->figure.baseline },
                { "peak", true, m->peak },
        };

        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (kinds[i].present)
                        text_buffer_printf(b,
                                           "memward_worker_memory_bytes{slot=\"%u\",pid=\"%d\",kind=\"%s\"} %" PRIu64
                                           "\n",
                                           w->slot, (int) w->pid, kinds[i].kind, kinds[i].value);
}

/* Template mode: the template that forks the workers (docs/fork-server.md §6). */
static void render_template(const struct supervisor *s, struct text_buffer *b) {
        const struct template_process *t = s->template;
        const struct template_counters *c = &s->template_counters;

        family(b, "memward_template_info", "gauge",
               "The fork-server template (workers.mode: template): its generation (one more for every template "
               "started) and phase (starting, ready, dead, stopping); always 1.");
        text_buffer_printf(b, "memward_template_info{generation=\"%llu\",phase=\"%s\"} 1\n", t->generation,
                           template_process_phase(t));
        if (t->mem.sampled && t->pid > 0) {
                family(b, "memward_template_memory_bytes", "gauge",
                       "Memory of the template at the last sample, by kind: current and anon from its cgroup leaf, "
                       "or Rss and anonymous pages of its process tree in procfs mode (then also rss and pss). "
                       "What the forked workers share with it is counted here, not in their own memory.");
                text_buffer_printf(b, "memward_template_memory_bytes{kind=\"current\"} %" PRIu64 "\n", t->mem.current);
                text_buffer_printf(b, "memward_template_memory_bytes{kind=\"anon\"} %" PRIu64 "\n", t->mem.anon);
                if (t->leaf.dir_fd < 0) {
                        text_buffer_printf(b, "memward_template_memory_bytes{kind=\"rss\"} %" PRIu64 "\n", t->mem.rss);
                        text_buffer_printf(b, "memward_template_memory_bytes{kind=\"pss\"} %" PRIu64 "\n", t->mem.pss);
                }
        }
        family(b, "memward_template_restarts_total", "counter",
               "Templates that had to be started again, by reason: exited (on its own), start_failed, or the fault "
               "it was killed for (ready_timeout, fork_timeout, malformed, bad_pid, ...).");
        sample_str(b, "memward_template_restarts_total", "reason", "exited", c->exited);
        sample_str(b, "memward_template_restarts_total", "reason", "start_failed", c->start_failed);
        for (unsigned f = 0; f < _TEMPLATE_FAULT_MAX; f++)
                sample_str(b, "memward_template_restarts_total", "reason", template_fault_to_string(f), c->faults[f]);
}

void exposition_render(const struct supervisor *s, const struct proc_self *self, usec_t now, usec_t realtime,
                       struct text_buffer *b) {
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

        _cleanup_free_ const struct worker **sorted = NULL;
        if (worker_list_sorted(s->workers, &sorted, &n) < 0)
                text_buffer_fail(b, -ENOMEM);
        family(b, "memward_worker_memory_bytes", "gauge",
               "Memory of each live worker at the last sample, by kind; retained is the floor memward judges it by "
               "(its request-end readings while fresh, else the floor over memory.retained_window; once a recycle "
               "is decided, the floor that decided it), baseline the window's floor after warmup (as it judges it: once "
               "a recycle is decided, the one it was decided with).");
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

        family(b, "memward_config_last_reload_successful", "gauge",
               "Whether the last reload (SIGHUP) was applied: 1, or 0 when it was refused and the previous "
               "configuration runs on. 1 before the first reload.");
        text_buffer_printf(b, "memward_config_last_reload_successful %d\n", s->reload.last_successful ? 1 : 0);
        family(b, "memward_config_last_reload_success_timestamp_seconds", "gauge",
               "Unix time of the last successful reload, or of start-up before the first.");
        text_buffer_printf(b, "memward_config_last_reload_success_timestamp_seconds %.3f\n",
                           (double) s->reload.last_success / (double) USEC_PER_SEC);
        family(b, "memward_config_reloads_total", "counter", "Reloads (SIGHUP), by result.");
        text_buffer_printf(b, "memward_config_reloads_total{result=\"success\"} %" PRIu64 "\n", s->reload.successes);
        text_buffer_printf(b, "memward_config_reloads_total{result=\"failure\"} %" PRIu64 "\n", s->reload.failures);

        family(b, "memward_spawn_failures_total", "counter", "Worker spawns that failed (fork, exec, cgroup).");
        text_buffer_printf(b, "memward_spawn_failures_total %" PRIu64 "\n", s->spawn_failures);
        family(b, "memward_orphans_killed_total", "counter",
               "Processes re-parented to memward that no live worker's process group held, killed.");
        text_buffer_printf(b, "memward_orphans_killed_total %" PRIu64 "\n", s->orphans_killed);

        if (s->template)
                render_template(s, b);

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

        family(b, "memward_log_dropped_total", "counter",
               "Log lines dropped because their reader (stderr's pipe, terminal or socket, journald) could not take "
               "them at once or the write failed.");
        for (enum log_sink k = 0; k < _LOG_SINK_MAX; k++)
                sample_str(b, "memward_log_dropped_total", "sink", log_sink_to_string(k), log_dropped_total(k));

        if (self) {
                family(b, "process_resident_memory_bytes", "gauge", "Resident memory of the memward process.");
                text_buffer_printf(b, "process_resident_memory_bytes %" PRIu64 "\n", self->resident);
                family(b, "process_cpu_seconds_total", "counter", "User and system CPU time of the memward process.");
                text_buffer_printf(b, "process_cpu_seconds_total %.2f\n", self->cpu_seconds);
                family(b, "process_start_time_seconds", "gauge", "Unix time the memward process started.");
                text_buffer_printf(b, "process_start_time_seconds %.2f\n", self->start_time);
        }
}
