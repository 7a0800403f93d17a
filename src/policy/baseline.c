/* See baseline.h. */
#include <assert.h>

#include "memward/policy/baseline.h"

void baseline_add(struct baseline *b, usec_t now, usec_t spawned_at, uint64_t sample, usec_t warmup, usec_t window) {
        assert(b);

        if (b->known || now < spawned_at || now - spawned_at < warmup)
                return;
        if (!b->started) {
                b->started = now;
                b->running_min = sample;
        } else if (sample < b->running_min)
                b->running_min = sample;
        if (now - b->started >= window) {
                b->known = true;
                b->value = b->running_min;
        }
}
