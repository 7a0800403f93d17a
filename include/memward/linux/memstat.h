/* Parsers for the kernel's memory accounting files. All pure: they take the
 * text the kernel wrote (read by the caller with pread into a small buffer)
 * and fill a struct in bytes. Unknown lines are skipped, as the kernel adds
 * new ones over time; a missing required line is -EBADMSG. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* cgroup v2 memory.stat (bytes). */
struct memory_stat {
        uint64_t anon;
        uint64_t file;
        uint64_t kernel;        /* "kernel" (5.18+), else kernel_stack + pagetables + slab */
        uint64_t shmem;
        uint64_t sock;
};
int memory_stat_parse(const char *text, size_t length, struct memory_stat *ret);

/* cgroup v2 memory.events (counters). */
struct memory_events {
        uint64_t low;
        uint64_t high;
        uint64_t max;
        uint64_t oom;
        uint64_t oom_kill;
        uint64_t oom_group_kill;
};
int memory_events_parse(const char *text, size_t length, struct memory_events *ret);

/* /proc/PID/smaps_rollup (kB lines, returned in bytes). */
struct smaps_rollup {
        uint64_t rss;
        uint64_t pss;
        uint64_t anonymous;
        /* Pss_Anon (Linux 5.3+, optional: has_pss_anon): the anonymous pages, each divided
         * by the number of processes that map it. Summed over the processes that share a
         * page, it counts the page once. */
        bool has_pss_anon;
        uint64_t pss_anon;
        /* Private_Clean + Private_Dirty: the USS, pages only this process maps. Optional
         * (has_private): a forked worker's private memory, without what it shares with
         * its template. */
        bool has_private;
        uint64_t private_bytes;
};
int smaps_rollup_parse(const char *text, size_t length, struct smaps_rollup *ret);

/* /proc/PID/statm: resident and shared, in bytes. resident − shared approximates the
 * process's private memory in O(1), without walking page tables as smaps does. */
int statm_parse(const char *text, size_t length, uint64_t page_size, uint64_t *ret_resident,
                uint64_t *ret_shared);

/* /proc/meminfo: MemTotal and MemAvailable in bytes. */
int meminfo_parse(const char *text, size_t length, uint64_t *ret_total, uint64_t *ret_available);

/* The unsigned decimal number s[0..n) starts with: 0 with *ret and *ret_used (the digits
 * it took; ret_used may be NULL), -EBADMSG when s does not start with a digit, -ERANGE
 * when the number does not fit in 64 bits. For the kernel's numbers: no sign, no spaces. */
int parse_u64_prefix(const char *s, size_t n, uint64_t *ret, size_t *ret_used);

/* A file holding one unsigned number, or "max" (= UINT64_MAX): memory.current,
 * memory.max, memory.peak, v1 memory.usage_in_bytes. */
int parse_u64_file(const char *text, size_t length, uint64_t *ret);
