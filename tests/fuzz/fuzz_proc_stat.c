/* /proc/PID/stat through its one parser (proc_stat_parse: the parent pid, which decides
 * whether a notify sender descends from a worker, and the CPU and start times of the
 * process_* metrics); also "btime" of /proc/stat (proc_stat_btime_parse). The command
 * name between the parentheses is chosen by the process itself: it may hold spaces, ')'
 * and anything but NUL, up to 15 bytes (16 with prctl). */
#include <errno.h>

#include "fuzz.h"
#include "memward/linux/proc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *text = (const char *) data;
        struct proc_stat st = { .ppid = -7, .cpu_ticks = 7, .start_ticks = 7 };
        uint64_t btime = 7;
        int r;

        r = proc_stat_parse(text, size, &st);
        FUZZ_CHECK(r == 0 || r == -EBADMSG);
        if (r < 0)
                FUZZ_CHECK(st.ppid == -7 && st.cpu_ticks == 7 && st.start_ticks == 7);
        else
                FUZZ_CHECK(st.ppid >= 0 && st.ppid <= 4194304); /* PID_MAX_LIMIT */

        r = proc_stat_btime_parse(text, size, &btime);
        FUZZ_CHECK(r == 0 || r == -EBADMSG);
        if (r < 0)
                FUZZ_CHECK(btime == 7);
        return 0;
}
