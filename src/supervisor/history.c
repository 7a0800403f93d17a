/* See history.h. */
#include "memward/supervisor/history.h"

static const char *const exit_how_names[_WORKER_EXIT_MAX] = {
        [WORKER_EXIT_EXIT] = "exit",
        [WORKER_EXIT_SIGNAL] = "signal",
        [WORKER_EXIT_OOM] = "oom",
};

const char *worker_exit_how_to_string(enum worker_exit_how h) {
        return h >= 0 && h < _WORKER_EXIT_MAX ? exit_how_names[h] : "unknown";
}

void recycle_history_push(struct recycle_history *h, const struct recycle_record *r) {
        h->records[h->total % RECYCLE_HISTORY_MAX] = *r;
        h->total++;
}

const struct recycle_record *recycle_history_get(const struct recycle_history *h, size_t i) {
        if (i >= RECYCLE_HISTORY_MAX || i >= h->total)
                return NULL;
        return &h->records[(h->total - 1 - i) % RECYCLE_HISTORY_MAX];
}
