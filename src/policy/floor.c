/* See floor.h. */
#include <string.h>

#include "memward/policy/floor.h"

void floor_window_init(struct floor_window *f, usec_t window) {
        memset(f, 0, sizeof *f);
        f->window = window > 0 ? window : 1;
        f->bucket_width = f->window / FLOOR_BUCKETS;
        if (f->bucket_width == 0)
                f->bucket_width = 1;
        for (unsigned i = 0; i < FLOOR_BUCKETS; i++)
                f->bucket_index[i] = UINT64_MAX;
}

void floor_window_add(struct floor_window *f, usec_t now, uint64_t value) {
        uint64_t b = now / f->bucket_width;
        unsigned i = (unsigned) (b % FLOOR_BUCKETS);

        if (f->first_sample == 0)
                f->first_sample = now ? now : 1;
        if (f->bucket_index[i] != b) {
                /* The slot held a bucket that has left the window: start it anew. */
                f->bucket_index[i] = b;
                f->bucket_min[i] = value;
        } else if (value < f->bucket_min[i])
                f->bucket_min[i] = value;
}

bool floor_window_get(const struct floor_window *f, usec_t now, uint64_t *ret) {
        if (f->first_sample == 0 || now - f->first_sample < f->window)
                return false;

        uint64_t current = now / f->bucket_width;
        uint64_t oldest = current >= FLOOR_BUCKETS - 1 ? current - (FLOOR_BUCKETS - 1) : 0;
        bool found = false;
        uint64_t m = UINT64_MAX;

        for (unsigned i = 0; i < FLOOR_BUCKETS; i++) {
                uint64_t b = f->bucket_index[i];
                if (b == UINT64_MAX || b < oldest || b > current)
                        continue;
                if (f->bucket_min[i] < m)
                        m = f->bucket_min[i];
                found = true;
        }
        if (!found)
                return false;
        *ret = m;
        return true;
}

void boundary_floor_add(struct boundary_floor *b, uint64_t value) {
        b->values[b->next] = value;
        b->next = (b->next + 1) % BOUNDARY_READINGS_MAX;
        if (b->n < BOUNDARY_READINGS_MAX)
                b->n++;
}

bool boundary_floor_get(const struct boundary_floor *b, unsigned k, uint64_t *ret) {
        if (k == 0 || k > BOUNDARY_READINGS_MAX || b->n < k)
                return false;
        uint64_t m = UINT64_MAX;
        for (unsigned i = 1; i <= k; i++) {
                uint64_t v = b->values[(b->next + BOUNDARY_READINGS_MAX - i) % BOUNDARY_READINGS_MAX];
                if (v < m)
                        m = v;
        }
        *ret = m;
        return true;
}
