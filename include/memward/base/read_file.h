/* Reading files into memory: the kernel's small files under /proc and /sys, which give
 * their text in one read (memory.current, memory.stat, /proc/PID/stat, a pressure file),
 * and the files memward reads whole (the config, /proc/self/mountinfo).
 *
 * Every fd is O_CLOEXEC. Errors are the negative errno of openat() or read() as the
 * kernel gave it, never translated, so that the caller can say what it means where it
 * knows: ENOENT for a file that is not there (a process or cgroup that is gone, a kernel
 * without the file), ENODEV for a file of a cgroup that was removed under an open fd,
 * ESRCH for a process that died while we read its file. */
#pragma once

#include <stddef.h>

/* Reads path (relative to dir_fd; AT_FDCWD or an absolute path as with openat()) with one
 * read of at most size - 1 bytes at offset 0 and NUL-terminates it in buf, which must hold
 * at least one byte. Returns 0 when the text ended within buf; 1 when it filled buf
 * (size - 1 bytes: the file may go on and the text is cut there, which the caller
 * decides whether it can live with); or a negative errno. *ret_length (may be NULL) is
 * the number of bytes read, set on success only; buf is written on success only. */
int read_small_file_at(int dir_fd, const char *path, char *buf, size_t size, size_t *ret_length);

/* read_small_file_at() through an fd that is kept open and read again and again (a
 * worker's memory.current, a trigger's pressure file): pread() at offset 0, so nothing
 * else needs to rewind it. Same returns. */
int pread_small_file(int fd, char *buf, size_t size, size_t *ret_length);

/* Reads all of the regular file path (relative to dir_fd) into a new NUL-terminated
 * buffer, for files that can be large or are not the kernel's (the config, mountinfo).
 * Never blocks on what is not a regular file: a FIFO is opened non-blocking and, like a
 * device or a socket, refused with -EBADFD before any read (a FIFO with no writer would
 * stop the supervisor's loop for good, /dev/zero never ends). Returns 0 with *ret (the
 * caller frees it; "" for an empty file) and *ret_length; -EFBIG as soon as the file is
 * longer than max bytes, without reading the rest; -EISDIR for a directory; -EBADFD;
 * -ENOMEM; or the errno of openat()/fstat()/read(). Nothing is written on failure. */
int read_full_file_at(int dir_fd, const char *path, size_t max, char **ret, size_t *ret_length);
