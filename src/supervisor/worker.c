/* See worker.h. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "memward/base/macro.h"
#include "memward/supervisor/worker.h"

static const char *const state_names[_WORKER_STATE_MAX] = {
        [WORKER_STARTING] = "starting",
        [WORKER_READY] = "ready",
        [WORKER_STOPPING] = "stopping",
};

const char *worker_state_to_string(enum worker_state s) {
        if ((unsigned) s >= _WORKER_STATE_MAX)
                return "unknown";
        return state_names[s];
}

static const char *const reading_names[_MEMORY_READING_MAX] = {
        [MEMORY_READING_NONE] = "none",
        [MEMORY_READING_CGROUP] = "memory.stat",
        [MEMORY_READING_PSS_ANON] = "pss_anon",
        [MEMORY_READING_USS] = "uss",
        [MEMORY_READING_ANONYMOUS] = "anonymous",
        [MEMORY_READING_STATM] = "statm_private",
};

const char *memory_reading_to_string(enum memory_reading r) {
        if ((unsigned) r >= _MEMORY_READING_MAX)
                return "unknown";
        return reading_names[r];
}

/* The worker is our unreaped child, so its pid cannot have been reused: kill() is safe. */
int worker_signal(const struct worker *w, int sig) {
        if (w->pid <= 0)
                return -ESRCH; /* not forked yet (template mode): kill(0, …) would be our own group */
        if (kill(w->pid, sig) < 0)
                return negative_errno();
        return 0;
}

int worker_kill_group(const struct worker *w) {
        if (w->pid <= 0)
                return -ESRCH;
        if (kill(-w->pid, SIGKILL) < 0)
                return negative_errno();
        return 0;
}

void worker_stop(struct worker *w, int sig, usec_t now, usec_t timeout) {
        if (w->state == WORKER_STOPPING)
                return;
        w->state = WORKER_STOPPING;
        w->kill_at = now + timeout;
        (void) worker_signal(w, sig);
}

static int compare_workers(const void *a, const void *b) {
        const struct worker *x = *(const struct worker *const *) a, *y = *(const struct worker *const *) b;

        if (x->slot != y->slot)
                return x->slot < y->slot ? -1 : 1;
        if (x->generation != y->generation)
                return x->generation < y->generation ? -1 : 1;
        return 0;
}

int worker_list_sorted(const struct worker *head, const struct worker ***ret, size_t *ret_n) {
        const struct worker **l = NULL;
        size_t n = 0;

        for (const struct worker *w = head; w; w = w->next)
                n++;
        if (n > 0) {
                l = malloc(n * sizeof *l);
                if (!l)
                        return -ENOMEM;
                n = 0;
                for (const struct worker *w = head; w; w = w->next)
                        l[n++] = w;
                qsort(l, n, sizeof *l, compare_workers);
        }
        *ret = l;
        *ret_n = n;
        return 0;
}
