/* Reading /proc. Parsers take text and are pure; readers take the proc root
 * ("/proc", or a fixture tree in tests) so nothing is tied to the live system. */
#pragma once

#include <sys/types.h>

/* Extracts the parent pid from the text of /proc/PID/stat. The command name may
 * contain spaces and parentheses, so the fields are found after the last ')'.
 * Returns 0 or -EBADMSG. */
int proc_stat_parse_ppid(const char *text, size_t length, pid_t *ret);

/* Reads PROC_ROOT/PID/stat and returns its parent pid. -ESRCH when the process is gone. */
int proc_get_ppid(const char *proc_root, pid_t pid, pid_t *ret);
