/* Signal names and numbers: what the config accepts (workers.stop_signal), what the
 * config dump and the log write (a worker killed by SIGSEGV, a signal memward got).
 * Names are glibc's with "SIG" in front; real-time signals are SIGRTMIN+n. */
#pragma once

/* "SIGTERM", "TERM", "sigterm", "15" (and "SIG15"), glibc's aliases such as "SIGPOLL"
 * and "IOT", "SIGRTMIN+2", "RTMAX-1" → the signal number. -EINVAL for anything else,
 * and for numbers outside 1..NSIG-1. */
int signal_from_string(const char *s);

/* The name of sig ("SIGTERM", "SIGRTMIN+5"; "SIG32" and "SIG33" for the two glibc keeps
 * for itself), which signal_from_string() parses back to sig; NULL for a number that is
 * no signal. */
const char *signal_to_string(int sig);
