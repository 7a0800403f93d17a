/* See orphans.h. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "memward/base/macro.h"
#include "memward/linux/proc.h"
#include "memward/supervisor/orphans.h"

enum orphan_verdict orphan_judge(bool known, pid_t pgid, bool group_alive, bool at_exit) {
        if (known && !at_exit)
                return ORPHAN_OURS;
        if (at_exit)
                return ORPHAN_KILL;
        if (pgid < 0)
                return ORPHAN_KEEP; /* gone already: its SIGCHLD is on the way */
        return group_alive ? ORPHAN_KEEP : ORPHAN_KILL;
}

static int compare_pids(const void *a, const void *b) {
        pid_t x = *(const pid_t *) a, y = *(const pid_t *) b;
        return x < y ? -1 : x > y;
}

bool orphan_set_contains(const struct orphan_set *set, pid_t pid) {
        return set->n > 0 && bsearch(&pid, set->pids, set->n, sizeof *set->pids, compare_pids);
}

bool orphan_set_remove(struct orphan_set *set, pid_t pid) {
        pid_t *p = set->n > 0 ? bsearch(&pid, set->pids, set->n, sizeof *set->pids, compare_pids) : NULL;
        if (!p)
                return false;
        memmove(p, p + 1, (size_t) (set->pids + set->n - (p + 1)) * sizeof *p);
        set->n--;
        return true;
}

void orphan_set_free(struct orphan_set *set) {
        free(set->pids);
        *set = (struct orphan_set) {};
}

static int orphan_set_reserve(struct orphan_set *set, size_t more) {
        if (set->n + more <= set->allocated)
                return 0;
        size_t want = set->n + more < 64 ? 64 : 2 * (set->n + more);
        pid_t *grown = reallocarray(set->pids, want, sizeof *grown);
        if (!grown)
                return -ENOMEM;
        set->pids = grown;
        set->allocated = want;
        return 0;
}

int orphans_sweep(const char *proc_root, pid_t self, orphan_classify_t classify, void *userdata,
                  unsigned max_kill, struct orphan_set *killed, struct orphan_sweep *ret) {
        usec_t started = now_monotonic();
        _cleanup_free_ pid_t *pids = NULL;
        struct orphan_sweep sw = {};

        int n = proc_list_children(proc_root, self, &pids);
        if (n < 0)
                return n;
        /* Room for every child now: a kill is never left out of the set. */
        int r = orphan_set_reserve(killed, (size_t) n);
        if (r < 0)
                return r;
        size_t before = killed->n;
        sw.children = (unsigned) n;
        for (int i = 0; i < n; i++) {
                if (orphan_set_contains(killed, pids[i])) {
                        sw.dying++;
                        continue;
                }
                switch (classify(userdata, pids[i])) {
                case ORPHAN_OURS:
                        break;
                case ORPHAN_KEEP:
                        sw.kept++;
                        break;
                case ORPHAN_KILL:
                        if (sw.killed == max_kill) {
                                sw.deferred++;
                                break;
                        }
                        /* Its group when it leads one (a group of another id may be one it
                         * joined, setpgid(), that is not ours to kill); itself otherwise. */
                        if (kill(-pids[i], SIGKILL) < 0)
                                (void) kill(pids[i], SIGKILL);
                        if (!sw.first_killed)
                                sw.first_killed = pids[i];
                        sw.killed++;
                        /* Appended past the sorted part, which the lookups above use. */
                        killed->pids[before + sw.killed - 1] = pids[i];
                        break;
                }
        }
        if (sw.killed > 0) {
                killed->n = before + sw.killed;
                qsort(killed->pids, killed->n, sizeof *killed->pids, compare_pids);
        }
        sw.took = now_monotonic() - started;
        *ret = sw;
        return 0;
}
