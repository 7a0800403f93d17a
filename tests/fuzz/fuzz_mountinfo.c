/* /proc/self/mountinfo (mountinfo_find_cgroup): where cgroup2 is mounted, and the v1
 * mount of a controller on hybrid hosts. Mount points are chosen by whoever mounts
 * things, octal escapes included. Each input is tried with the caller's buffer size
 * and with a small one, for the -ENAMETOOLONG path. */
#include <errno.h>
#include <limits.h>

#include "fuzz.h"
#include "memward/linux/cgroup.h"

static void find(const char *text, size_t length, const char *controller, size_t size) {
        char *buf = malloc(size); /* exactly size bytes: ASan sees a write past it */
        int r;

        if (!buf)
                abort();
        memset(buf, FUZZ_POISON, size);
        r = mountinfo_find_cgroup(text, length, controller, buf, size);
        FUZZ_CHECK(r == 0 || r == -ENOENT || r == -ENAMETOOLONG);
        if (r == 0)
                FUZZ_CHECK(fuzz_terminated(buf, size));
        free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const controllers[] = { NULL, "memory", "pids" };

        for (size_t i = 0; i < sizeof controllers / sizeof controllers[0]; i++) {
                find((const char *) data, size, controllers[i], PATH_MAX / 2);
                find((const char *) data, size, controllers[i], 16);
                find((const char *) data, size, controllers[i], 1);
        }
        return 0;
}
