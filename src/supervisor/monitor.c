/* See monitor.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/base/read_file.h"
#include "memward/supervisor/monitor.h"

struct pending_leaf {
        struct pending_leaf *next;
        struct cgroup_leaf leaf;
        unsigned tries;
        bool spare;                     /* removed once empty, never killed (monitor_leaf_release_spare()) */
};

/* Give up on a leaf after this many attempts; its processes are stuck (D state). */
#define PENDING_TRIES_MAX 600

int monitor_resolve_limits(struct monitor *m, const struct memward_config *c, const char **ret_key) {
        const struct {
                const char *key;
                const struct size_or_percent *value;
                uint64_t *target;
        } sizes[] = {
                { "memory.worker_high", &c->memory.worker_high, &m->worker_high },
                { "memory.worker_max",  &c->memory.worker_max,  &m->worker_max  },
                { "memory.group_high",  &c->memory.group_high,  &m->group_high  },
        };
        uint64_t limit = 0, resolved[ELEMENTSOF(sizes)];
        int r;

        r = cgroup_group_limit(&m->cgroup, m->proc_root, &limit, m->group_limit_source,
                               sizeof m->group_limit_source);
        m->group_limit_error = r < 0 ? r : 0;
        if (r < 0)
                limit = 0;

        /* All or nothing: a reload that cannot be resolved leaves the running values. */
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                r = size_or_percent_resolve(sizes[i].value, limit, &resolved[i]);
                if (r < 0) {
                        if (ret_key)
                                *ret_key = sizes[i].key;
                        return r;
                }
        }
        m->group_limit = limit;
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++)
                *sizes[i].target = resolved[i];
        return 0;
}

int monitor_init(struct monitor *m, const struct memward_config *c, const char *proc_root, const char **ret_key) {
        *m = (struct monitor) { .proc_root = proc_root, .psi_fd = -1 };
        cgroup_setup_init(&m->cgroup, proc_root);
        return monitor_resolve_limits(m, c, ret_key);
}

void monitor_done(struct monitor *m) {
        while (m->pending) {
                struct pending_leaf *p = m->pending;
                m->pending = p->next;
                cgroup_leaf_close(&p->leaf);
                free(p);
        }
        m->psi_fd = safe_close(m->psi_fd);
        cgroup_setup_done(&m->cgroup);
}

int monitor_open_pressure(struct monitor *m, const struct memward_config *c) {
        m->psi_fd = safe_close(m->psi_fd);
        m->psi_polling = false;
        if (!c->pressure.enabled)
                return 0;

        int fd = psi_trigger_open(m->cgroup.pressure_path, c->pressure.kind, c->pressure.stall, c->pressure.window,
                                  &m->psi_stall, &m->psi_window);
        if (fd < 0) {
                m->psi_polling = true;
                m->psi_stall = c->pressure.stall;
                m->psi_window = c->pressure.window;
                return fd;
        }
        m->psi_fd = fd;
        m->psi_lost = false;
        return fd;
}

void monitor_pressure_lost(struct monitor *m, usec_t now) {
        /* The old fd never works again: kernfs deactivated the file under it. */
        m->psi_fd = safe_close(m->psi_fd);
        m->psi_lost = true;
        m->psi_retries = 0;
        m->psi_lost_at = m->psi_retry_at = now;
}

int monitor_pressure_retry(struct monitor *m, const struct memward_config *c, usec_t now) {
        if (!m->psi_lost || now < m->psi_retry_at)
                return -EAGAIN;
        int fd = monitor_open_pressure(m, c);
        if (fd < 0) {
                m->psi_retries++;
                m->psi_retry_at = now + policy_backoff(c->memory.sample_interval, PSI_RETRY_MAX_USEC, m->psi_retries);
                return fd == -EAGAIN ? -ENOENT : fd; /* -EAGAIN tells the caller "not due" */
        }
        m->psi_lost = false;
        return fd;
}

int monitor_read_pressure(struct monitor *m) {
        char buf[512];
        size_t n;
        m->has_psi = false;
        int r = read_small_file_at(AT_FDCWD, m->cgroup.pressure_path, buf, sizeof buf, &n);
        if (r < 0)
                return r;
        r = psi_parse(buf, n, &m->psi);
        m->has_psi = r >= 0;
        return r;
}

int monitor_worker_prepare(struct monitor *m, struct worker *w, const struct memward_config *c) {
        w->mem.leaf = (struct cgroup_leaf) CGROUP_LEAF_INIT;
        w->mem.events_source.fd = -1;
        floor_window_init(&w->mem.floor, c->memory.retained_window);

        if (m->cgroup.mode != ACCOUNTING_CGROUP)
                return -1;
        int r = cgroup_leaf_create(&m->cgroup, w->slot, w->generation, m->worker_high, m->worker_max, &w->mem.leaf);
        if (r < 0) {
                w->mem.leaf = (struct cgroup_leaf) CGROUP_LEAF_INIT;
                return r;
        }
        /* Baseline for the oom_kill counter: a reused leaf name starts from what is there. */
        (void) cgroup_leaf_read_events(&w->mem.leaf, &w->mem.events);
        return w->mem.leaf.dir_fd;
}

uint64_t monitor_metric(const struct worker_memory *mem, enum memory_metric metric) {
        switch (metric) {
        case MEMORY_METRIC_ANON:
                return mem->anon;
        case MEMORY_METRIC_CURRENT:
                return mem->current;
        case MEMORY_METRIC_RSS:
                return mem->rss;
        case MEMORY_METRIC_PSS:
                return mem->pss;
        }
        return mem->anon;
}

int monitor_worker_sample(struct monitor *m, struct worker *w, const struct memward_config *c, usec_t now) {
        struct worker_memory *mem = &w->mem;
        bool procfs = mem->leaf.dir_fd < 0;
        bool need_tree = procfs || c->memory.metric == MEMORY_METRIC_RSS || c->memory.metric == MEMORY_METRIC_PSS;
        int r;

        if (!procfs) {
                struct memory_stat st;
                r = cgroup_leaf_read(&mem->leaf, &mem->current, &st);
                if (r < 0) {
                        /* A read through an open fd fails with ENODEV once the directory is
                         * gone: we remove it only after the worker was reaped, so someone
                         * else did, and the worker may well live on elsewhere. */
                        snprintf(m->sample_error_path, sizeof m->sample_error_path, "%s/%s", m->cgroup.group_path,
                                 mem->leaf.name);
                        return r == -ENOENT ? -ESRCH : r;
                }
                mem->anon = st.anon;
                mem->anon_from = MEMORY_READING_CGROUP;
                mem->file = st.file;
                mem->kernel = st.kernel;
                mem->shmem = st.shmem;
                mem->sock = st.sock;
                uint64_t peak;
                if (cgroup_leaf_read_peak(&mem->leaf, &peak) >= 0)
                        mem->peak = peak;
        }
        if (need_tree) {
                struct smaps_rollup t;
                r = procfs_tree_memory(m->proc_root, w->pid, &t);
                if (r < 0) {
                        snprintf(m->sample_error_path, sizeof m->sample_error_path, "%s/%d/smaps_rollup",
                                 m->proc_root, (int) w->pid);
                        return r;
                }
                mem->rss = t.rss;
                mem->pss = t.pss;
                if (procfs) {
                        /* Without a cgroup, "current" is what the tree has resident and
                         * "anon" its anonymous pages: the part a restart gives back,
                         * counted as a leaf's memory.stat anon would count it, so that
                         * one threshold means the same in both modes:
                         *   - exec'd: the sum of Pss_Anon. A gunicorn arbiter and its
                         *     worker share their copy-on-write pages; Anonymous counts
                         *     such a page in both (40 MiB for a 24 MiB slot), Pss_Anon
                         *     half in each, so once, as the leaf that holds both does.
                         *     The USS would count it in neither (7 MiB), though it goes
                         *     with the slot. Exec'd slots share no anonymous page with
                         *     each other, so nothing is split across slots.
                         *   - forked from a template: the USS. It maps the template's
                         *     pages until it writes to them; a restart gives none back
                         *     and cgroup mode charges them to the template's leaf (it
                         *     touched them first). Its Pss_Anon would charge it a share
                         *     of them that changes with the number of workers.
                         *   - a kernel before 5.3 has no Pss_Anon: Anonymous, which
                         *     counts pages shared inside the slot in each process. */
                        mem->current = t.rss;
                        if (w->template_generation > 0 && t.has_private) {
                                mem->anon = t.private_bytes;
                                mem->anon_from = MEMORY_READING_USS;
                        } else if (t.has_pss_anon) {
                                mem->anon = t.pss_anon;
                                mem->anon_from = MEMORY_READING_PSS_ANON;
                        } else {
                                mem->anon = t.anonymous;
                                mem->anon_from = MEMORY_READING_ANONYMOUS;
                        }
                        mem->file = t.rss > t.anonymous ? t.rss - t.anonymous : 0;
                        mem->kernel = mem->shmem = mem->sock = 0;
                }
        }
        if (mem->current > mem->peak)
                mem->peak = mem->current;

        mem->metric = monitor_metric(mem, c->memory.metric);
        mem->sampled = true;
        floor_window_add(&mem->floor, now, mem->metric);

        baseline_add(&mem->baseline, now, w->spawned_at, mem->metric, c->memory.warmup, c->memory.retained_window);
        return 0;
}

int monitor_worker_boundary_read(struct monitor *m, struct worker *w, const struct memward_config *c,
                                 uint64_t *ret, enum memory_reading *ret_from, uint64_t *ret_metric) {
        struct worker_memory *mem = &w->mem;
        enum memory_metric metric = c->memory.metric;
        bool procfs = mem->leaf.dir_fd < 0;
        struct smaps_rollup t;
        uint64_t private_bytes;
        unsigned processes;
        int r;

        if (!procfs && metric != MEMORY_METRIC_RSS && metric != MEMORY_METRIC_PSS) {
                struct memory_stat st;
                uint64_t current;
                r = cgroup_leaf_read(&mem->leaf, &current, &st);
                if (r < 0)
                        return r == -ENOENT || r == -ENODEV ? -ESRCH : r;
                *ret = *ret_metric = metric == MEMORY_METRIC_CURRENT ? current : st.anon;
                *ret_from = MEMORY_READING_CGROUP;
                return 1;
        }
        if (w->template_generation > 0) {
                /* Forked from a template: statm's resident minus shared would count every
                 * page the worker still shares with the template (anonymous, so not
                 * "shared" there), the whole preloaded application. Its USS instead, at
                 * the price of a page walk (smaps_rollup), which boundary_min_interval
                 * bounds. The walk has the metric's figure too, as the tick reads it. */
                r = procfs_tree_memory(m->proc_root, w->pid, &t);
                if (r < 0)
                        return r;
                if (t.has_private) {
                        *ret = t.private_bytes;
                        *ret_from = MEMORY_READING_USS;
                        /* current comes here in procfs mode only, where it is the Rss. */
                        *ret_metric = metric == MEMORY_METRIC_PSS ? t.pss
                                      : metric == MEMORY_METRIC_ANON ? t.private_bytes : t.rss;
                        return 1;
                }
        }
        r = procfs_private_memory(m->proc_root, w->pid, &private_bytes, &processes);
        if (r < 0)
                return r;
        /* One exec'd process shares no anonymous page with anyone, so its resident minus
         * shared is its Pss_Anon, read without a page walk. A tree of several (a gunicorn
         * arbiter and its worker) has each copy-on-write page in every process's statm:
         * the sum of Pss_Anon instead, the figure the sample tick judges, at the price of
         * a page walk that boundary_min_interval bounds. */
        if (processes > 1 && w->template_generation == 0 && procfs_tree_memory(m->proc_root, w->pid, &t) >= 0 &&
            t.has_pss_anon) {
                *ret = t.pss_anon;
                *ret_from = MEMORY_READING_PSS_ANON;
        } else {
                *ret = private_bytes;
                *ret_from = MEMORY_READING_STATM;
        }
        /* Either is the tick's anon in procfs mode; the other metrics need the page walk
         * this path avoids. */
        if (!procfs || metric != MEMORY_METRIC_ANON)
                return 0;
        *ret_metric = *ret;
        return 1;
}

void monitor_worker_forget_leaf(struct monitor *m, struct worker *w) {
        (void) m;
        cgroup_leaf_close(&w->mem.leaf);
        w->mem.leaf = (struct cgroup_leaf) CGROUP_LEAF_INIT;
}

int monitor_worker_events(struct monitor *m, struct worker *w) {
        struct memory_events e;
        (void) m;

        if (w->mem.leaf.events_fd < 0)
                return -EBADF;
        int r = cgroup_leaf_read_events(&w->mem.leaf, &e);
        if (r < 0)
                return r;
        bool oom = e.oom_kill > w->mem.events.oom_kill || e.oom_group_kill > w->mem.events.oom_group_kill;
        w->mem.events = e;
        if (oom)
                w->mem.oom_kill_seen = true;
        return oom;
}

static bool try_remove(struct monitor *m, struct cgroup_leaf *l, bool spare) {
        if (!spare)
                (void) cgroup_leaf_kill(&m->cgroup, l);
        int r = cgroup_leaf_remove(&m->cgroup, l);
        return r != -EBUSY;
}

void monitor_worker_release(struct monitor *m, struct worker *w) {
        struct cgroup_leaf *l = &w->mem.leaf;

        if (l->dir_fd < 0)
                return;
        (void) monitor_worker_events(m, w);
        uint64_t peak;
        if (cgroup_leaf_read_peak(l, &peak) >= 0)
                w->mem.peak = peak;

        monitor_leaf_release(m, l);
}

/* Returns true when the leaf is gone now (or there was none), false when it was queued. */
static bool leaf_release(struct monitor *m, struct cgroup_leaf *l, bool spare) {
        if (l->dir_fd < 0)
                return true;
        if (try_remove(m, l, spare)) {
                cgroup_leaf_close(l);
                *l = (struct cgroup_leaf) CGROUP_LEAF_INIT;
                return true;
        }
        /* Processes killed through cgroup.kill are still exiting (or are zombies we have
         * yet to reap as subreaper): try again later. */
        struct pending_leaf *p = calloc(1, sizeof *p);
        if (!p) {
                cgroup_leaf_close(l);
                *l = (struct cgroup_leaf) CGROUP_LEAF_INIT;
                return false;
        }
        p->leaf = *l;
        p->spare = spare;
        /* Only the directory fd is needed to kill what is left. */
        p->leaf.current_fd = safe_close(p->leaf.current_fd);
        p->leaf.stat_fd = safe_close(p->leaf.stat_fd);
        p->leaf.events_fd = safe_close(p->leaf.events_fd);
        p->leaf.peak_fd = safe_close(p->leaf.peak_fd);
        *l = (struct cgroup_leaf) CGROUP_LEAF_INIT;
        p->next = m->pending;
        m->pending = p;
        return false;
}

void monitor_leaf_release(struct monitor *m, struct cgroup_leaf *l) {
        (void) leaf_release(m, l, false);
}

int monitor_leaf_release_spare(struct monitor *m, struct cgroup_leaf *l) {
        return leaf_release(m, l, true) ? 0 : -EBUSY;
}

void monitor_retry_removals(struct monitor *m) {
        for (struct pending_leaf **pp = &m->pending; *pp;) {
                struct pending_leaf *p = *pp;
                if (try_remove(m, &p->leaf, p->spare) || ++p->tries > PENDING_TRIES_MAX) {
                        *pp = p->next;
                        cgroup_leaf_close(&p->leaf);
                        free(p);
                } else
                        pp = &p->next;
        }
}

unsigned monitor_pending_removals(const struct monitor *m) {
        unsigned n = 0;
        for (const struct pending_leaf *p = m->pending; p; p = p->next)
                n++;
        return n;
}
