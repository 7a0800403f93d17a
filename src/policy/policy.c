/* See policy.h. */
#include <signal.h>
#include <sys/wait.h>

#include "memward/base/macro.h"
#include "memward/policy/policy.h"

static const char *const reason_names[_RECYCLE_REASON_MAX] = {
        [RECYCLE_NONE] = "none",
        [RECYCLE_MAX_REQUESTS] = "max_requests",
        [RECYCLE_MAX_LIFETIME] = "max_lifetime",
        [RECYCLE_WATCHDOG] = "watchdog",
        [RECYCLE_RELOAD] = "reload",
        [RECYCLE_RETAINED] = "retained",
        [RECYCLE_GROWTH] = "growth",
        [RECYCLE_PRESSURE] = "pressure",
        [RECYCLE_GROUP_HIGH] = "group_high",
        [RECYCLE_OOM] = "oom",
        [RECYCLE_SCALE_DOWN] = "scale_down",
        [RECYCLE_CGROUP_LOST] = "cgroup_lost",
};

const char *recycle_reason_to_string(enum recycle_reason r) {
        if ((unsigned) r >= _RECYCLE_REASON_MAX)
                return "unknown";
        return reason_names[r];
}

static usec_t add_saturating(usec_t a, usec_t b) {
        return a > USEC_INFINITY - b ? USEC_INFINITY : a + b;
}

enum recycle_reason policy_evaluate(const struct policy_worker_view *v) {
        if (v->watchdog > 0 && v->now >= add_saturating(v->last_watchdog, v->watchdog))
                return RECYCLE_WATCHDOG;
        if (v->request_limit > 0 && v->requests >= v->request_limit)
                return RECYCLE_MAX_REQUESTS;
        if (v->lifetime_limit > 0 && v->now >= add_saturating(v->spawned_at, v->lifetime_limit))
                return RECYCLE_MAX_LIFETIME;
        return RECYCLE_NONE;
}

usec_t policy_next_deadline(const struct policy_worker_view *v) {
        usec_t next = USEC_INFINITY;

        if (v->watchdog > 0) {
                usec_t t = add_saturating(v->last_watchdog, v->watchdog);
                if (t < next)
                        next = t;
        }
        if (v->lifetime_limit > 0) {
                usec_t t = add_saturating(v->spawned_at, v->lifetime_limit);
                if (t < next)
                        next = t;
        }
        return next;
}

void policy_rate_update(struct policy_rate *r, usec_t now, uint64_t requests) {
        if (r->since == 0 || now < r->since || requests < r->since_requests) {
                r->since = now;
                r->since_requests = requests;
                return;
        }
        usec_t dt = now - r->since;
        if (dt < POLICY_RATE_INTERVAL_USEC)
                return;
        double seconds = (double) dt / (double) USEC_PER_SEC;
        double sample = (double) (requests - r->since_requests) / seconds;
        if (!r->known) {
                r->per_second = sample;
                r->known = true;
        } else {
                double weight = seconds / (seconds + 1.0);
                r->per_second += weight * (sample - r->per_second);
        }
        r->since = now;
        r->since_requests = requests;
}

bool policy_prestart_due(uint64_t requests, uint64_t limit, const struct policy_rate *rate, usec_t startup,
                         usec_t *ret_in) {
        if (limit == 0 || requests >= limit || !rate->known || !(rate->per_second > 0))
                return false;
        double in = (double) (limit - requests) / rate->per_second * (double) USEC_PER_SEC;
        double lead = (double) startup * POLICY_PRESTART_MARGIN + (double) POLICY_PRESTART_SLACK_USEC;
        if (in > lead)
                return false;
        *ret_in = (usec_t) in;
        return true;
}

uint64_t policy_draw_limit(uint64_t base, uint64_t jitter, uint64_t random) {
        if (base == 0)
                return 0;
        if (jitter == 0)
                return base;
        /* jitter + 1 values; the modulo bias is < 2^-40 for any jitter a config allows. */
        uint64_t span = jitter == UINT64_MAX ? UINT64_MAX : jitter + 1;
        uint64_t extra = random % span;
        return base > UINT64_MAX - extra ? UINT64_MAX : base + extra;
}

uint64_t policy_random_next(uint64_t *state) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

usec_t policy_backoff(usec_t initial, usec_t max, unsigned failures) {
        usec_t d = initial;

        if (failures == 0)
                return 0;
        for (unsigned i = 1; i < failures && d < max; i++)
                d = d > max / 2 ? max : d * 2;
        return d < max ? d : max;
}

struct policy_start_limit_verdict policy_start_limit(unsigned burst, usec_t interval, const usec_t *failed_at,
                                                     size_t n, unsigned ready_workers, usec_t now) {
        struct policy_start_limit_verdict v = {};
        usec_t oldest = now;

        for (size_t i = 0; i < n; i++)
                if (failed_at[i] <= now && now - failed_at[i] < interval) {
                        v.failures++;
                        if (failed_at[i] < oldest)
                                oldest = failed_at[i];
                }
        v.span = v.failures > 0 ? now - oldest : 0;
        v.hit = burst > 0 && ready_workers == 0 && v.failures >= burst;
        return v;
}

static const char *const floor_source_names[_POLICY_FLOOR_SOURCE_MAX] = {
        [POLICY_FLOOR_NONE] = "none",
        [POLICY_FLOOR_WINDOW] = "window",
        [POLICY_FLOOR_REQUEST_END] = "request_end",
};

const char *policy_floor_source_to_string(enum policy_floor_source s) {
        if ((unsigned) s >= _POLICY_FLOOR_SOURCE_MAX)
                return "unknown";
        return floor_source_names[s];
}

/* The floor the rules judge by; see policy_judge_memory() in policy.h for why the
 * request-end floor wins while it is fresh. */
static struct policy_memory_figure memory_figure(const struct policy_memory_input *in) {
        struct policy_memory_figure f = {
                .has_baseline = in->has_baseline,
                .baseline = in->has_baseline ? in->baseline : 0,
        };
        bool fresh = in->request_end_at > 0 && in->now >= in->request_end_at &&
                     in->now - in->request_end_at <= in->retained_window;

        if (in->has_request_end && fresh) {
                f.source = POLICY_FLOOR_REQUEST_END;
                f.floor = in->request_end;
        } else if (in->has_window) {
                f.source = POLICY_FLOOR_WINDOW;
                f.floor = in->window;
        }
        if (f.source != POLICY_FLOOR_NONE && f.has_baseline && f.baseline > 0)
                f.ratio = (double) f.floor / (double) f.baseline;
        return f;
}

struct policy_memory_verdict policy_judge_memory(const struct policy_memory_input *in) {
        struct policy_memory_verdict v = { .reason = RECYCLE_NONE, .figure = memory_figure(in) };
        const struct policy_memory_figure *f = &v.figure;

        if (f->source == POLICY_FLOOR_NONE)
                return v;
        if (in->retained_max > 0 && f->floor > in->retained_max)
                v.reason = RECYCLE_RETAINED;
        else if (in->growth_max > 0 && f->has_baseline && f->baseline > 0 &&
                 (double) f->floor > in->growth_max * (double) f->baseline)
                v.reason = RECYCLE_GROWTH;
        return v;
}

bool policy_group_over_high(uint64_t total, uint64_t worker, uint64_t group_high) {
        uint64_t sum = total > UINT64_MAX - worker ? UINT64_MAX : total + worker;
        return group_high > 0 && sum > group_high;
}

struct policy_pressure_verdict policy_judge_avg10(double avg10, usec_t stall, usec_t window) {
        struct policy_pressure_verdict v = {};

        if (window == 0)
                return v;
        v.threshold = 100.0 * (double) stall / (double) window;
        v.over = avg10 >= v.threshold;
        return v;
}

bool policy_victim_offer(struct policy_victim *v, const struct policy_candidate *c, uint64_t min_retained) {
        if (!c->eligible || !c->has_floor || c->floor < min_retained)
                return false;
        if (v->found && (c->floor < v->floor || (c->floor == v->floor && c->spawned_at >= v->spawned_at)))
                return false;
        *v = (struct policy_victim) { .found = true, .floor = c->floor, .spawned_at = c->spawned_at };
        return true;
}

bool policy_cooldown_passed(usec_t now, usec_t last, usec_t cooldown) {
        return last == 0 || now >= last + cooldown;
}

bool policy_boundary_accept(bool has_inflight, uint64_t inflight, usec_t now, usec_t last, usec_t min_interval) {
        if (has_inflight && inflight > 0)
                return false;
        return last == 0 || now >= last + min_interval;
}

bool policy_exit_is_oom(int wait_status, bool leaf_oom_kill_seen, bool sigkill_sent) {
        return WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL && leaf_oom_kill_seen && !sigkill_sent;
}

bool policy_exit_at_request_limit(int wait_status, uint64_t requests, uint64_t request_limit) {
        return request_limit > 0 && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0 &&
               requests > 0 && requests >= request_limit - 1;
}
