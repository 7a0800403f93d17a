/* See worker.h. */
#include <errno.h>
#include <signal.h>

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

/* The worker is our unreaped child, so its pid cannot have been reused: kill() is safe. */
int worker_signal(const struct worker *w, int sig) {
        if (kill(w->pid, sig) < 0)
                return negative_errno();
        return 0;
}

int worker_kill_group(const struct worker *w) {
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
