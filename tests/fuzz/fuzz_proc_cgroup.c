/* /proc/PID/cgroup lines: the v2 "0::/path" line (cgroup_parse_self_v2) and a v1
 * controller's line, "4:memory:/docker/abc" or "3:cpu,cpuacct:/x" (cgroup_parse_self_v1).
 * Path names inside are chosen by whoever created the cgroups. Tried with the caller's
 * buffer size and with small ones. */
#include <errno.h>
#include <limits.h>

#include "fuzz.h"
#include "memward/linux/cgroup.h"

static void v2(const char *text, size_t length, size_t size) {
        char *buf = malloc(size);
        int r;

        if (!buf)
                abort();
        memset(buf, FUZZ_POISON, size);
        r = cgroup_parse_self_v2(text, length, buf, size);
        FUZZ_CHECK(r == 0 || r == -ENOENT || r == -ENAMETOOLONG);
        if (r == 0)
                FUZZ_CHECK(fuzz_terminated(buf, size) && buf[0] == '/');
        free(buf);
}

static void v1(const char *text, size_t length, const char *controller, size_t size) {
        char *buf = malloc(size);
        int r;

        if (!buf)
                abort();
        memset(buf, FUZZ_POISON, size);
        r = cgroup_parse_self_v1(text, length, controller, buf, size);
        FUZZ_CHECK(r == 0 || r == -ENOENT || r == -ENAMETOOLONG);
        if (r == 0)
                FUZZ_CHECK(fuzz_terminated(buf, size));
        free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const controllers[] = { "memory", "pids", "name=systemd" };
        const char *text = (const char *) data;

        v2(text, size, PATH_MAX / 2);
        v2(text, size, 8);
        v2(text, size, 1);
        for (size_t i = 0; i < sizeof controllers / sizeof controllers[0]; i++) {
                v1(text, size, controllers[i], PATH_MAX / 2);
                v1(text, size, controllers[i], 8);
                v1(text, size, controllers[i], 1);
        }
        return 0;
}
