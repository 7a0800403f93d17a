/* See reconcile.h.
 *
 * The planner works on a copy of the view (the plan's workers and slots) and applies each
 * action it plans to that copy at once, so every later rule sees the world as the earlier
 * ones left it -- exactly as the old pass, which acted as it went, saw it. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "memward/supervisor/reconcile.h"

static const char *const action_kind_names[_RECONCILE_ACTION_KIND_MAX] = {
        [RECONCILE_READY] = "ready",
        [RECONCILE_MARK_RECYCLE] = "mark_recycle",
        [RECONCILE_STOP] = "stop",
        [RECONCILE_SPAWN] = "spawn",
        [RECONCILE_START_RECYCLE] = "start_recycle",
        [RECONCILE_CANCEL_RECYCLE] = "cancel_recycle",
};

const char *reconcile_action_kind_to_string(enum reconcile_action_kind k) {
        if ((unsigned) k >= _RECONCILE_ACTION_KIND_MAX)
                return "unknown";
        return action_kind_names[k];
}

static const char *const stop_names[_RECONCILE_STOP_MAX] = {
        [RECONCILE_STOP_SCALE_DOWN] = "scale_down",
        [RECONCILE_STOP_READY_TIMEOUT] = "ready_timeout",
        [RECONCILE_STOP_GRACEFUL_TIMEOUT] = "graceful_timeout",
        [RECONCILE_STOP_FIRST] = "stop_first",
};

const char *reconcile_stop_to_string(enum reconcile_stop s) {
        if ((unsigned) s >= _RECONCILE_STOP_MAX)
                return "unknown";
        return stop_names[s];
}

int reconcile_plan_reserve(struct reconcile_plan *p, size_t n_workers, size_t n_slots) {
        /* The plan's workers also hold the ones it spawns: at most one per slot. */
        size_t workers = n_workers + n_slots, actions = RECONCILE_ACTIONS_MAX(n_workers, n_slots);

        if (p->worker_capacity < workers) {
                struct reconcile_worker *w = reallocarray(p->workers, workers, sizeof *w);
                if (!w)
                        return -ENOMEM;
                p->workers = w;
                p->worker_capacity = workers;
        }
        if (p->slot_capacity < n_slots) {
                struct reconcile_slot *s = reallocarray(p->slots, n_slots, sizeof *s);
                if (!s)
                        return -ENOMEM;
                p->slots = s;
                p->slot_capacity = n_slots;
        }
        if (p->action_capacity < actions) {
                struct reconcile_action *a = reallocarray(p->actions, actions, sizeof *a);
                if (!a)
                        return -ENOMEM;
                p->actions = a;
                p->action_capacity = actions;
        }
        return 0;
}

void reconcile_plan_free(struct reconcile_plan *p) {
        free(p->actions);
        free(p->workers);
        free(p->slots);
        *p = (struct reconcile_plan) {};
}

static usec_t min_usec(usec_t a, usec_t b) {
        return a < b ? a : b;
}

static bool reason_is_memory(enum recycle_reason r) {
        return r == RECYCLE_RETAINED || r == RECYCLE_GROWTH || r == RECYCLE_PRESSURE || r == RECYCLE_GROUP_HIGH;
}

/* The reasons a queued recycle is judged again for at its turn: pressure stands, it was
 * true when it fired. */
static bool reason_is_rejudged(enum recycle_reason r) {
        return r == RECYCLE_RETAINED || r == RECYCLE_GROWTH || r == RECYCLE_GROUP_HIGH;
}

static unsigned in_flight(const struct reconcile_worker *workers, size_t n_workers, const struct reconcile_slot *slots,
                          size_t n_slots, unsigned target) {
        unsigned n = 0;

        for (size_t i = 0; i < n_workers; i++) {
                const struct reconcile_worker *w = &workers[i];
                if (!w->recycle_started)
                        continue;
                if (w->slot < n_slots && slots[w->slot].recycle_at_limit && slots[w->slot].active == i)
                        continue; /* stopped at its request limit */
                n++;
        }
        for (size_t i = 0; i < n_slots && i < target; i++) {
                const struct reconcile_slot *slot = &slots[i];
                if (!slot->recycle_pending || slot->recycle_at_limit)
                        continue;
                if (slot->active != RECONCILE_NONE) {
                        const struct reconcile_worker *a = &workers[slot->active];
                        if (a->recycle_started || a->state == WORKER_READY)
                                continue; /* counted above, or serving again */
                }
                n++;
        }
        return n;
}

unsigned reconcile_recycles_in_flight(const struct reconcile_view *v) {
        return in_flight(v->workers, v->n_workers, v->slots, v->n_slots, v->target);
}

static struct policy_worker_view policy_view(const struct reconcile_worker *w, const struct reconcile_config *c,
                                             usec_t now) {
        return (struct policy_worker_view) {
                .now = now,
                .spawned_at = w->spawned_at,
                .last_watchdog = w->last_watchdog,
                .requests = w->requests,
                .request_limit = w->request_limit,
                .lifetime_limit = w->lifetime_limit,
                .watchdog = c->watchdog,
        };
}

/* The planner's working state: the view, and the plan it fills in. */
struct planner {
        const struct reconcile_view *v;
        struct reconcile_plan *p;
        bool scaled_down;               /* the plan stops workers for a scale-down */
};

static struct reconcile_action *push(struct planner *pl, enum reconcile_action_kind kind, size_t worker, unsigned slot) {
        struct reconcile_plan *p = pl->p;

        /* reconcile_plan() checked the room: RECONCILE_ACTIONS_MAX is a bound, not a guess. */
        assert(p->n_actions < p->action_capacity);
        struct reconcile_action *a = &p->actions[p->n_actions++];
        *a = (struct reconcile_action) { .kind = kind, .worker = worker, .slot = slot };
        return a;
}

/* What a stop does to the worker, in the plan's copy. */
static void stop_effect(struct planner *pl, size_t i, enum reconcile_stop how) {
        struct reconcile_worker *w = &pl->p->workers[i];
        const struct reconcile_config *c = &pl->v->config;

        switch (how) {
        case RECONCILE_STOP_READY_TIMEOUT:
                w->state = WORKER_STOPPING;
                w->kill_at = pl->v->now;
                w->killed = true;
                break;
        case RECONCILE_STOP_GRACEFUL_TIMEOUT:
                w->killed = true;
                break;
        case RECONCILE_STOP_SCALE_DOWN:
        case RECONCILE_STOP_FIRST:
                w->state = WORKER_STOPPING;
                w->kill_at = pl->v->now + c->graceful_timeout;
                break;
        default:
                assert(false);
        }
}

static void plan_stop(struct planner *pl, size_t i, enum reconcile_stop how) {
        push(pl, RECONCILE_STOP, i, pl->p->workers[i].slot)->stop = how;
        stop_effect(pl, i, how);
}

/* Stops a worker at its request limit before its replacement is ready. */
static void plan_stop_at_limit(struct planner *pl, size_t i) {
        unsigned slot = pl->p->workers[i].slot;

        plan_stop(pl, i, RECONCILE_STOP_FIRST);
        pl->p->actions[pl->p->n_actions - 1].at_limit = true;
        pl->p->slots[slot].recycle_at_limit = true;
}

/* A worker the plan spawns: starting from now, in the plan's workers after the view's. */
static size_t plan_spawned(struct planner *pl, unsigned slot) {
        struct reconcile_plan *p = pl->p;

        assert(p->n_workers < p->worker_capacity);
        p->workers[p->n_workers] = (struct reconcile_worker) {
                .slot = slot,
                .state = WORKER_STARTING,
                .spawned_at = pl->v->now,
        };
        return p->n_workers++;
}

/* What the supervisor does when a worker becomes ready: a replacement takes over its slot
 * and the old worker is stopped; a slot's own worker ends the slot's pending recycle. */
static void plan_ready(struct planner *pl, size_t i) {
        struct reconcile_worker *w = &pl->p->workers[i];

        push(pl, RECONCILE_READY, i, w->slot);
        w->state = WORKER_READY;
        w->last_watchdog = pl->v->now;
        if (w->slot >= pl->p->n_slots)
                return;
        struct reconcile_slot *slot = &pl->p->slots[w->slot];
        if (slot->replacement != i) {
                if (slot->active == i)
                        slot->recycle_pending = slot->recycle_at_limit = false;
                return;
        }
        size_t old = slot->active;
        slot->active = i;
        slot->replacement = RECONCILE_NONE;
        slot->recycle_pending = slot->recycle_at_limit = false;
        if (old != RECONCILE_NONE && pl->p->workers[old].state != WORKER_STOPPING)
                stop_effect(pl, old, RECONCILE_STOP_FIRST);
}

static void plan_mark(struct planner *pl, size_t i, enum recycle_reason reason, usec_t limit_expected_at) {
        struct reconcile_worker *w = &pl->p->workers[i];
        struct reconcile_action *a = push(pl, RECONCILE_MARK_RECYCLE, i, w->slot);

        a->reason = reason;
        a->limit_expected_at = limit_expected_at;
        w->recycle_reason = reason;
        if (w->recycle_due_at == 0)
                w->recycle_due_at = pl->v->now;
}

static bool at_request_limit(const struct reconcile_worker *w) {
        return w->request_limit > 0 && w->requests >= w->request_limit;
}

/* Step 1: each worker's deadlines, and the policy rules of the ready ones. */
static void plan_workers(struct planner *pl) {
        const struct reconcile_view *v = pl->v;
        const struct reconcile_config *c = &v->config;
        usec_t now = v->now;

        for (size_t i = 0; i < v->n_workers; i++) {
                struct reconcile_worker *w = &pl->p->workers[i];
                switch (w->state) {
                case WORKER_STARTING:
                        if (w->unforked || w->exited)
                                break;
                        if (c->ready == READY_DELAY && now >= w->spawned_at + c->ready_delay) {
                                plan_ready(pl, i);
                                break;
                        }
                        if (now >= w->spawned_at + c->ready_timeout && !v->shutting_down)
                                plan_stop(pl, i, RECONCILE_STOP_READY_TIMEOUT);
                        break;
                case WORKER_READY: {
                        if (v->shutting_down || w->recycle_reason != RECYCLE_NONE)
                                break;
                        struct policy_worker_view pv = policy_view(w, c, now);
                        enum recycle_reason r = policy_evaluate(&pv);
                        usec_t in;
                        if (r != RECYCLE_NONE)
                                plan_mark(pl, i, r, 0);
                        else if (w->slot < pl->p->n_slots &&
                                 policy_prestart_due(w->requests, w->request_limit, &w->request_rate,
                                                     pl->p->slots[w->slot].startup, &in))
                                plan_mark(pl, i, RECYCLE_MAX_REQUESTS, now + in);
                        break;
                }
                case WORKER_STOPPING:
                        if (!w->killed && now >= w->kill_at)
                                plan_stop(pl, i, RECONCILE_STOP_GRACEFUL_TIMEOUT);
                        break;
                default:
                        break;
                }
        }
}

/* Step 2: a worker at its request limit whose replacement is still starting (it was
 * started ahead, but the start-up took longer than the last) stops now: its limit is a
 * bound. Its replacement takes the slot when it is ready. */
static void plan_limits(struct planner *pl) {
        struct reconcile_plan *p = pl->p;

        for (unsigned i = 0; i < p->n_slots; i++) {
                const struct reconcile_slot *slot = &p->slots[i];
                if (slot->active == RECONCILE_NONE || slot->replacement == RECONCILE_NONE ||
                    p->workers[slot->replacement].state != WORKER_STARTING)
                        continue;
                const struct reconcile_worker *w = &p->workers[slot->active];
                if (w->state == WORKER_READY && w->recycle_started && at_request_limit(w))
                        plan_stop_at_limit(pl, slot->active);
        }
}

/* Step 3: slots that should not exist any more (SIGTTOU, a lower workers.count). Scaling
 * down must not take the pool to no capacity at all: when the wanted slots have no ready
 * worker (slot 0 backing off after a crash, or still starting), the last ready worker
 * serves on from its unwanted slot until one of them is ready, which is an event, and
 * goes then. */
static void plan_scale_down(struct planner *pl) {
        const struct reconcile_view *v = pl->v;
        struct reconcile_plan *p = pl->p;
        size_t first = p->n_actions;
        unsigned ready = 0;

        for (size_t i = 0; i < v->n_workers; i++)
                if (p->workers[i].state == WORKER_READY)
                        ready++;
        /* The stops are decided on the slots as they are before any of them, so that
         * removing a slot is one recycle (scale_down): its serving worker's, or its
         * replacement's when nothing serves there any more (stopped first). */
        for (size_t i = 0; i < v->n_workers; i++) {
                const struct reconcile_worker *w = &p->workers[i];
                if (w->slot < v->target || w->state == WORKER_STOPPING)
                        continue;
                if (w->state == WORKER_READY) {
                        if (ready <= 1)
                                continue;
                        ready--;
                }
                const struct reconcile_slot *slot = w->slot < p->n_slots ? &p->slots[w->slot] : NULL;
                struct reconcile_action *a = push(pl, RECONCILE_STOP, i, w->slot);
                a->stop = RECONCILE_STOP_SCALE_DOWN;
                a->counts = slot && (slot->active == i ||
                                     (slot->replacement == i && (slot->active == RECONCILE_NONE ||
                                                                 p->workers[slot->active].state == WORKER_STOPPING)));
        }
        for (size_t a = first; a < p->n_actions; a++)
                stop_effect(pl, p->actions[a].worker, RECONCILE_STOP_SCALE_DOWN);
        pl->scaled_down = p->n_actions > first;
}

/* A group_high recycle's still_due was judged on the group as the view shows it, with
 * the workers this plan stops for a scale-down: their memory is about to be given back,
 * and without it the group may be under its budget. */
static bool waits_for_scale_down(const struct planner *pl, size_t i) {
        return pl->scaled_down && pl->p->workers[i].recycle_reason == RECYCLE_GROUP_HIGH;
}

/* Step 4: empty slots up to the target, each once its backoff is over. */
static void plan_fill(struct planner *pl) {
        const struct reconcile_view *v = pl->v;
        struct reconcile_plan *p = pl->p;

        for (unsigned i = 0; i < v->target; i++) {
                struct reconcile_slot *slot = &p->slots[i];
                if (slot->active != RECONCILE_NONE || slot->replacement != RECONCILE_NONE)
                        continue;
                if (v->now < slot->respawn_at) {
                        p->next = min_usec(p->next, slot->respawn_at);
                        continue;
                }
                push(pl, RECONCILE_SPAWN, RECONCILE_NONE, i);
                slot->active = plan_spawned(pl, i);
        }
}

/* Workers ready and not being stopped, as the plan leaves them so far. */
static unsigned ready_workers(const struct reconcile_plan *p) {
        unsigned n = 0;

        for (size_t i = 0; i < p->n_workers; i++)
                if (p->workers[i].state == WORKER_READY)
                        n++;
        return n;
}

/* Starts the recycle of the worker at index i, whose slot has no replacement. */
static void plan_start(struct planner *pl, size_t i) {
        struct reconcile_worker *w = &pl->p->workers[i];
        struct reconcile_slot *slot = &pl->p->slots[w->slot];

        push(pl, RECONCILE_START_RECYCLE, i, w->slot);
        w->recycle_started = true;
        slot->replacement = plan_spawned(pl, w->slot);
        slot->recycle_pending = true;
        slot->recycle_at_limit = false;
}

static void plan_cancel(struct planner *pl, size_t i) {
        struct reconcile_worker *w = &pl->p->workers[i];

        push(pl, RECONCILE_CANCEL_RECYCLE, i, w->slot);
        w->recycle_reason = RECYCLE_NONE;
        w->recycle_due_at = 0;
}

/* The ready, unstarted, queued recycle of slot i's worker, or RECONCILE_NONE. */
static size_t queued(const struct planner *pl, unsigned i) {
        const struct reconcile_slot *slot = &pl->p->slots[i];

        if (slot->active == RECONCILE_NONE || slot->replacement != RECONCILE_NONE)
                return RECONCILE_NONE;
        const struct reconcile_worker *w = &pl->p->workers[slot->active];
        if (w->state != WORKER_READY || w->recycle_reason == RECYCLE_NONE || w->recycle_started)
                return RECONCILE_NONE;
        return slot->active;
}

/* Step 5: due recycles. A worker at its request limit goes now, stopped first: its limit
 * is a bound, and stopping first adds no worker, so max_concurrent does not hold it back.
 * The others at most max_concurrent in flight, in the order they became due: under
 * sustained load every slot gets its turn. A queued memory recycle is judged again when
 * its turn comes (the pick runs), so a worker is not restarted for memory it no longer
 * holds, or for a group budget the group no longer exceeds once a scale-down's stops
 * are carried out. */
static void plan_recycles(struct planner *pl) {
        const struct reconcile_view *v = pl->v;
        struct reconcile_plan *p = pl->p;

        for (unsigned i = 0; i < v->target; i++) {
                size_t q = queued(pl, i);
                if (q == RECONCILE_NONE || !at_request_limit(&p->workers[q]))
                        continue;
                if (v->now < p->slots[i].respawn_at) {
                        p->next = min_usec(p->next, p->slots[i].respawn_at);
                        continue;
                }
                /* Queued for memory it no longer holds, or for a group budget this plan's
                 * scale-down may meet: its limit is reason enough, and the one it is
                 * counted under. */
                if (reason_is_rejudged(p->workers[q].recycle_reason) &&
                    (!p->workers[q].still_due || waits_for_scale_down(pl, q))) {
                        plan_cancel(pl, q);
                        plan_mark(pl, q, RECYCLE_MAX_REQUESTS, 0);
                }
                plan_start(pl, q);
                plan_stop_at_limit(pl, q);
        }

        unsigned n = in_flight(p->workers, p->n_workers, p->slots, p->n_slots, v->target);

        while (n < v->config.max_concurrent) {
                size_t pick = RECONCILE_NONE;
                for (unsigned i = 0; i < v->target; i++) {
                        size_t q = queued(pl, i);
                        if (q == RECONCILE_NONE)
                                continue;
                        struct reconcile_worker *w = &p->workers[q];
                        if (reason_is_rejudged(w->recycle_reason) && !w->still_due) {
                                plan_cancel(pl, q);
                                continue;
                        }
                        if (v->now < p->slots[i].respawn_at) {
                                p->next = min_usec(p->next, p->slots[i].respawn_at);
                                continue;
                        }
                        if (pick == RECONCILE_NONE || w->recycle_due_at < p->workers[pick].recycle_due_at)
                                pick = q;
                }
                if (pick == RECONCILE_NONE)
                        break;
                /* Its turn is the next plan's, which judges it on the group without the
                 * workers stopped here (the caller plans again at once after a plan with
                 * actions); the pick stops here, so that no later-due recycle takes its
                 * place meanwhile. */
                if (waits_for_scale_down(pl, pick)) {
                        p->next = v->now;
                        break;
                }

                plan_start(pl, pick);
                /* Memory matters more than one slot's capacity for a moment: the old
                 * worker goes now, the replacement takes the slot when it is ready. But
                 * not the last ready worker, which a scale-down in this same plan may
                 * have made it: then it waits for its replacement like any recycle. */
                if (v->config.memory_stop_first && reason_is_memory(p->workers[pick].recycle_reason) &&
                    ready_workers(p) > 1)
                        plan_stop(pl, pick, RECONCILE_STOP_FIRST);
                n++;
        }
}

/* The next per-worker deadline: ready delay and timeout, policy limits, the SIGKILL after
 * graceful_timeout; of the workers as the plan leaves them. */
static usec_t worker_deadlines(const struct planner *pl) {
        const struct reconcile_view *v = pl->v;
        const struct reconcile_config *c = &v->config;
        usec_t next = USEC_INFINITY;

        for (size_t i = 0; i < pl->p->n_workers; i++) {
                const struct reconcile_worker *w = &pl->p->workers[i];
                switch (w->state) {
                case WORKER_STARTING:
                        /* Seen exited: plan_workers() plans nothing for it, so its passed
                         * delay or timeout here would fire the timer again and again. */
                        if (v->shutting_down || w->unforked || w->exited)
                                break;
                        next = min_usec(next, w->spawned_at + c->ready_timeout);
                        if (c->ready == READY_DELAY)
                                next = min_usec(next, w->spawned_at + c->ready_delay);
                        break;
                case WORKER_READY:
                        if (!v->shutting_down && w->recycle_reason == RECYCLE_NONE) {
                                struct policy_worker_view pv = policy_view(w, c, v->now);
                                next = min_usec(next, policy_next_deadline(&pv));
                        }
                        break;
                case WORKER_STOPPING:
                        if (!w->killed)
                                next = min_usec(next, w->kill_at);
                        break;
                default:
                        break;
                }
        }
        return next;
}

int reconcile_plan(const struct reconcile_view *v, struct reconcile_plan *p) {
        assert(v);
        assert(p);
        assert(v->target <= v->n_slots);
        assert(v->config.max_concurrent >= 1);

        if (p->worker_capacity < v->n_workers + v->n_slots || p->slot_capacity < v->n_slots ||
            p->action_capacity < RECONCILE_ACTIONS_MAX(v->n_workers, v->n_slots))
                return -ENOBUFS;
        if (v->n_workers > 0)
                memcpy(p->workers, v->workers, v->n_workers * sizeof *p->workers);
        if (v->n_slots > 0)
                memcpy(p->slots, v->slots, v->n_slots * sizeof *p->slots);
        p->n_workers = v->n_workers;
        p->n_slots = v->n_slots;
        p->n_actions = 0;
        p->next = USEC_INFINITY;

        struct planner pl = { .v = v, .p = p };
        plan_workers(&pl);
        if (!v->shutting_down) {
                plan_limits(&pl);
                plan_scale_down(&pl);
                plan_fill(&pl);
                plan_recycles(&pl);
        }
        p->next = min_usec(p->next, worker_deadlines(&pl));
        return 0;
}
