/* PSI text (psi_parse): a cgroup's memory.pressure or /proc/pressure/memory. */
#include <errno.h>

#include "fuzz.h"
#include "memward/linux/psi.h"

static bool percent(double v) {
        return v >= 0 && v <= 100;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct psi_stats s, before;
        int r;

        memset(&s, FUZZ_POISON, sizeof s);
        before = s;
        r = psi_parse((const char *) data, size, &s);
        FUZZ_CHECK(r == 0 || r == -EBADMSG);
        if (r < 0) {
                FUZZ_CHECK(memcmp(&s, &before, sizeof s) == 0);
                return 0;
        }
        FUZZ_CHECK(percent(s.some.avg10) && percent(s.some.avg60) && percent(s.some.avg300));
        if (s.has_full)
                FUZZ_CHECK(percent(s.full.avg10) && percent(s.full.avg60) && percent(s.full.avg300));
        return 0;
}
