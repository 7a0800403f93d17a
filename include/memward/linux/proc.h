/* Reading /proc. Parsers take text and are pure; readers take the proc root
 * ("/proc", or a fixture tree in tests) so nothing is tied to the live system. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The fields of /proc/PID/stat that memward reads. */
struct proc_stat {
        pid_t ppid;                     /* field 4 */
        uint64_t cpu_ticks;             /* utime + stime (fields 14, 15), clock ticks */
        uint64_t start_ticks;           /* starttime (field 22), clock ticks after boot */
};

/* Parses the text of /proc/PID/stat, up to field 22 (what follows is not looked at).
 * The command name (field 2) is the process's choice and may contain spaces and
 * parentheses, so the fields are counted after the last ')'. Returns 0, or -EBADMSG
 * when a field up to 22 is missing, the state is not one character, a number we read
 * is not an unsigned decimal that fits, or the ppid is beyond PID_MAX_LIMIT; *ret is
 * written only on success. */
int proc_stat_parse(const char *text, size_t length, struct proc_stat *ret);

/* The boot time of the "btime N" line of /proc/stat text, in seconds since the epoch.
 * Returns 0, or -EBADMSG when there is no such line or N is not a number. */
int proc_stat_btime_parse(const char *text, size_t length, uint64_t *ret_btime);

/* Reads PROC_ROOT/PID/stat and returns its parent pid. -ESRCH when the process is gone. */
int proc_get_ppid(const char *proc_root, pid_t pid, pid_t *ret);

/* The lines of /proc/PID/status that memward reads. */
struct proc_status {
        pid_t ppid;                     /* PPid: */
        uid_t uid[4];                   /* Uid: real, effective, saved set, filesystem */
};

/* Parses the text of /proc/PID/status: the first "PPid:" and "Uid:" lines (the kernel
 * escapes a newline in the Name: line, so a process cannot forge one). Returns 0, or
 * -EBADMSG when either is missing, or is not (four) unsigned decimals separated by
 * blanks, or the ppid is beyond PID_MAX_LIMIT; *ret is written only on success. */
int proc_status_parse(const char *text, size_t length, struct proc_status *ret);

/* Reads PROC_ROOT/PID/status. -ESRCH when the process is gone. */
int proc_get_status(const char *proc_root, pid_t pid, struct proc_status *ret);

/* Parses the text of /proc/PID/task/TID/children: decimal pids, each followed by one
 * space ("12 345 "). Returns the number of pids (0 for empty text) and *ret, a new array
 * the caller frees (NULL when there are none); -EBADMSG when a word is not a pid in
 * 1..PID_MAX_LIMIT; -ENOMEM. *ret is written only on success. */
int proc_children_parse(const char *text, size_t length, pid_t **ret);

/* The children of pid, for finding the orphans re-parented to memward without a walk
 * of every process on the machine: PROC_ROOT/PID/task/PID/children, one read whatever
 * the number of processes (the children of pid's main thread: memward has no other).
 * On a kernel without that file (CONFIG_PROC_CHILDREN=n), every PROC_ROOT/N/stat whose
 * ppid is pid. Either may miss a child forked, re-parented or reaped while it is read
 * (the kernel says so of the children file): callers that must catch every child look
 * again. Returns the number of children and *ret (caller frees; NULL when none);
 * -ENOMEM, -EBADMSG, or the errno of reading the proc root. */
int proc_list_children(const char *proc_root, pid_t pid, pid_t **ret);

/* Whether two readings of one process's status agree on its parent and its four uids:
 * what a process to be moved is checked for before and after the move. */
bool proc_status_same(const struct proc_status *a, const struct proc_status *b);

/* A pidfd (O_CLOEXEC) for pid: it names that process, not the number, for as long as
 * it is open, so a reading of /proc/PID taken while proc_pidfd_exited() still says
 * false is that process's. Returns the fd, -ESRCH when there is no such process, or the
 * negative errno of pidfd_open(2) (-ENOSYS before Linux 5.3). */
int proc_pidfd_open(pid_t pid);

/* 1 when the process of pidfd has exited (a zombie counts: its number may be handed
 * out again once it is reaped), 0 when it is alive, a negative errno when the fd cannot
 * be polled. Never waits. */
int proc_pidfd_exited(int pidfd);

/* Whether pid, a child of this process, has exited, asked without reaping it and without
 * waiting: waitid(P_PID, WEXITED | WNOHANG | WNOWAIT), which leaves the zombie and its
 * status to the caller's waitpid(). Returns 1 when it has exited (a zombie not reaped
 * yet), 0 when it has not (running or stopped), -ECHILD when pid is no child of this
 * process (never was, not re-parented to it yet, or reaped already), -EINVAL when
 * pid <= 0. */
int proc_child_exited(pid_t pid);

/* What this process uses, for process_* metrics. */
struct proc_self {
        uint64_t resident;              /* bytes, PROC_ROOT/self/statm */
        double cpu_seconds;             /* utime + stime */
        double start_time;              /* Unix time, seconds */
};

/* Reads the numbers above for this process from PROC_ROOT/self/stat, self/statm and, once
 * per process (boot time does not change), PROC_ROOT/stat. Returns 0, or the negative
 * errno of a file that cannot be read, -EBADMSG for one that does not parse. */
int proc_self_read(const char *proc_root, struct proc_self *ret);
