/* See cgroup.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/base/read_file.h"
#include "memward/linux/cgroup.h"

/* Kernel files we read are small; memory.stat is the largest at ~1.5 kB on 6.x. */
#define READ_BUF 4096
/* Evacuating a busy cgroup root: processes may fork while we move them. */
#define EVACUATE_ROUNDS 20
/* How deep a worker's process tree is walked in procfs mode. */
#define TREE_DEPTH_MAX 16
#define TREE_PROCS_MAX 512
/* mountinfo is read whole at start-up, up to this much: on a host with thousands of
 * mounts the cgroup2 line can come after the first 64 kB. */
#define MOUNTINFO_MAX (16U * 1024 * 1024)

const char *accounting_mode_to_string(enum accounting_mode m) {
        return m == ACCOUNTING_CGROUP ? "cgroup" : "procfs";
}

/* ---- pure parsers -------------------------------------------------------- */

static int copy_field(const char *s, size_t n, char *ret, size_t size) {
        if (n + 1 > size)
                return -ENAMETOOLONG;
        memcpy(ret, s, n);
        ret[n] = '\0';
        return 0;
}

int cgroup_parse_self_v2(const char *text, size_t length, char *ret_path, size_t size) {
        for (size_t pos = 0; pos < length;) {
                const char *line = text + pos;
                const char *nl = memchr(line, '\n', length - pos);
                size_t n = nl ? (size_t) (nl - line) : length - pos;
                pos += n + 1;

                if (n >= 4 && memcmp(line, "0::/", 4) == 0)
                        return copy_field(line + 3, n - 3, ret_path, size);
        }
        return -ENOENT;
}

bool cgroup_path_is_leaf(const char *path) {
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        return startswith_lit(base, "worker-") || startswith_lit(base, "template-");
}

int cgroup_process_in_leaf(const char *proc_root, pid_t pid) {
        char path[96], text[PATH_MAX], cgroup[PATH_MAX];
        size_t n;

        snprintf(path, sizeof path, "%s/%d/cgroup", proc_root, (int) pid);
        int r = read_small_file_at(AT_FDCWD, path, text, sizeof text, &n);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        r = cgroup_parse_self_v2(text, n, cgroup, sizeof cgroup);
        if (r < 0)
                return r;
        return cgroup_path_is_leaf(cgroup);
}

int cgroup_text_in_leaf(const char *text, size_t length, const char *group_path, const char *leaf_name,
                        char *ret_path, size_t size) {
        int r = cgroup_parse_self_v2(text, length, ret_path, size);
        if (r < 0)
                return r;
        size_t n = strlen(ret_path), ln = strlen(leaf_name), gl = strlen(group_path);
        if (ln == 0 || n < ln + 1 || ret_path[n - ln - 1] != '/' || strcmp(ret_path + n - ln, leaf_name) != 0)
                return 0;
        /* The parent's path: "" for the root, else "/a/b", whose leading '/' makes the
         * comparison with the end of group_path stop at a component's boundary. */
        size_t pl = n - ln - 1;
        return gl >= pl && memcmp(group_path + gl - pl, ret_path, pl) == 0 ? 1 : 0;
}

int cgroup_parse_self_v1(const char *text, size_t length, const char *controller, char *ret_path, size_t size) {
        size_t cl = strlen(controller);

        for (size_t pos = 0; pos < length;) {
                const char *line = text + pos;
                const char *nl = memchr(line, '\n', length - pos);
                size_t n = nl ? (size_t) (nl - line) : length - pos;
                pos += n + 1;

                /* "4:memory:/path" or "3:cpu,cpuacct:/path" */
                const char *c1 = memchr(line, ':', n);
                if (!c1)
                        continue;
                const char *list = c1 + 1;
                const char *c2 = memchr(list, ':', (size_t) (line + n - list));
                if (!c2)
                        continue;
                for (const char *p = list; p < c2;) {
                        const char *comma = memchr(p, ',', (size_t) (c2 - p));
                        const char *end = comma ? comma : c2;
                        if ((size_t) (end - p) == cl && memcmp(p, controller, cl) == 0)
                                return copy_field(c2 + 1, (size_t) (line + n - c2 - 1), ret_path, size);
                        p = end + 1;
                }
        }
        return -ENOENT;
}

/* Decodes mountinfo's octal escapes ("\040" for a space). */
static int unescape_mount(const char *s, size_t n, char *ret, size_t size) {
        size_t o = 0;

        for (size_t i = 0; i < n; i++) {
                if (o + 1 >= size)
                        return -ENAMETOOLONG;
                if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' &&
                    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
                        ret[o++] = (char) ((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
                        i += 3;
                } else
                        ret[o++] = s[i];
        }
        ret[o] = '\0';
        return 0;
}

static bool option_listed(const char *list, size_t n, const char *opt) {
        size_t ol = strlen(opt);
        for (const char *p = list; p < list + n;) {
                const char *comma = memchr(p, ',', (size_t) (list + n - p));
                const char *end = comma ? comma : list + n;
                if ((size_t) (end - p) == ol && memcmp(p, opt, ol) == 0)
                        return true;
                p = end + 1;
        }
        return false;
}

int mountinfo_find_cgroup(const char *text, size_t length, const char *controller, char *ret_mount, size_t size) {
        for (size_t pos = 0; pos < length;) {
                const char *line = text + pos;
                const char *nl = memchr(line, '\n', length - pos);
                size_t n = nl ? (size_t) (nl - line) : length - pos;
                pos += n + 1;

                /* id parent major:minor root mountpoint options [optional...] - fstype source superopts */
                const char *f[5];
                size_t fl[5];
                const char *p = line, *end = line + n;
                int k = 0;
                for (; k < 5 && p < end; k++) {
                        const char *sp = memchr(p, ' ', (size_t) (end - p));
                        f[k] = p;
                        fl[k] = sp ? (size_t) (sp - p) : (size_t) (end - p);
                        p = sp ? sp + 1 : end;
                }
                if (k < 5)
                        continue;
                const char *sep = NULL;
                for (const char *q = p; q + 2 < end; q++)
                        if (q[0] == '-' && q[1] == ' ' && (q == p || q[-1] == ' ')) {
                                sep = q + 2;
                                break;
                        }
                if (!sep)
                        continue;
                const char *fstype = sep;
                const char *sp = memchr(fstype, ' ', (size_t) (end - fstype));
                if (!sp)
                        continue;
                size_t fstype_len = (size_t) (sp - fstype);
                const char *source = sp + 1;
                const char *sp2 = memchr(source, ' ', (size_t) (end - source));
                const char *superopts = sp2 ? sp2 + 1 : end;
                size_t superopts_len = (size_t) (end - superopts);

                bool match;
                if (!controller)
                        match = fstype_len == 7 && memcmp(fstype, "cgroup2", 7) == 0;
                else
                        match = fstype_len == 6 && memcmp(fstype, "cgroup", 6) == 0 &&
                                option_listed(superopts, superopts_len, controller);
                if (match)
                        return unescape_mount(f[4], fl[4], ret_mount, size);
        }
        return -ENOENT;
}

/* ---- file helpers ---------------------------------------------------------- */

static int write_at(int dir_fd, const char *path, const char *text) {
        _cleanup_close_ int fd = openat(dir_fd, path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        size_t n = strlen(text);
        if (write(fd, text, n) != (ssize_t) n)
                return negative_errno();
        return 0;
}

static bool word_listed(const char *text, const char *word) {
        size_t wl = strlen(word);
        for (const char *p = text; (p = strstr(p, word)); p += wl)
                if ((p == text || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == '\n' || p[wl] == '\0'))
                        return true;
        return false;
}

/* ---- discovery and set-up ------------------------------------------------ */

static void set_procfs(struct cgroup_setup *s, const char *reason) {
        s->mode = ACCOUNTING_PROCFS;
        snprintf(s->reason, sizeof s->reason, "%s", reason);
        s->group_fd = safe_close(s->group_fd);
}

static void find_v1_memory(struct cgroup_setup *s, const char *self, size_t self_len, const char *mountinfo,
                           size_t mountinfo_len) {
        char mount[PATH_MAX / 4], path[PATH_MAX / 4];

        if (mountinfo_find_cgroup(mountinfo, mountinfo_len, "memory", mount, sizeof mount) < 0 ||
            cgroup_parse_self_v1(self, self_len, "memory", path, sizeof path) < 0)
                return;
        snprintf(s->v1_memory_path, sizeof s->v1_memory_path, "%s%s", mount, path);
        if (access(s->v1_memory_path, R_OK) < 0) {
                /* In a container the v1 path from /proc/self/cgroup is the host's; the
                 * mount shows our own cgroup at its root. */
                snprintf(s->v1_memory_path, sizeof s->v1_memory_path, "%s", mount);
        }
        char probe[PATH_MAX];
        snprintf(probe, sizeof probe, "%s/memory.usage_in_bytes", s->v1_memory_path);
        if (access(probe, R_OK) < 0)
                s->v1_memory_path[0] = '\0';
}

/* Under systemd a cgroup is ours only with Delegate=yes, which systemd marks with
 * the trusted.delegate xattr (v251+). Writing into an undelegated unit cgroup would
 * fight systemd, so without the mark we stay out. */
static bool systemd_unit_without_delegation(const char *dir, const char *self) {
        if (!getenv("INVOCATION_ID"))
                return false;
        size_t n = strlen(self);
        bool unit = (n > 8 && strcmp(self + n - 8, ".service") == 0) || (n > 6 && strcmp(self + n - 6, ".scope") == 0);
        if (!unit)
                return false;
        char value[8] = "";
        ssize_t r = getxattr(dir, "trusted.delegate", value, sizeof value - 1);
        if (r < 0)
                r = getxattr(dir, "user.delegate", value, sizeof value - 1);
        return !(r > 0 && value[0] == '1');
}

static int move_pid(int dir_fd, const char *leaf, pid_t pid) {
        char path[64], text[24];
        snprintf(path, sizeof path, "%s/cgroup.procs", leaf);
        snprintf(text, sizeof text, "%d", (int) pid);
        return write_at(dir_fd, path, text);
}

/* Moves every process still in the group's own cgroup.procs into "init". */
static int evacuate(struct cgroup_setup *s) {
        char buf[READ_BUF];

        for (int round = 0; round < EVACUATE_ROUNDS; round++) {
                size_t n;
                int r = read_small_file_at(s->group_fd, "cgroup.procs", buf, sizeof buf, &n);
                if (r < 0)
                        return r;
                if (n == 0)
                        return 0;
                if (mkdirat(s->group_fd, "init", 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                for (char *p = buf, *nl; *p; p = nl + 1) {
                        nl = strchr(p, '\n');
                        if (!nl)
                                break;
                        *nl = '\0';
                        pid_t pid = (pid_t) atoi(p);
                        /* Kernel threads and exiting processes cannot move; they do not block us. */
                        if (pid > 0 && move_pid(s->group_fd, "init", pid) >= 0)
                                s->evacuated++;
                }
                /* All of the list fit: see whether it is empty now. */
                if (r == 0 && read_small_file_at(s->group_fd, "cgroup.procs", buf, sizeof buf, &n) >= 0 && n == 0)
                        return 0;
                (void) usleep(10000); /* EBUSY-style churn: let forks settle, then retry */
        }
        return -EBUSY;
}

static void remove_stale_leaves(struct cgroup_setup *s) {
        _cleanup_close_ int fd = openat(s->group_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        DIR *d = fdopendir(fd);
        if (!d)
                return;
        fd = -1; /* owned by d now */
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_type != DT_DIR ||
                    (strncmp(de->d_name, "worker-", 7) != 0 && strncmp(de->d_name, "template-", 9) != 0))
                        continue;
                struct cgroup_leaf l = CGROUP_LEAF_INIT;
                snprintf(l.name, sizeof l.name, "%.47s", de->d_name);
                l.dir_fd = openat(s->group_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (l.dir_fd < 0)
                        continue;
                (void) cgroup_leaf_kill(s, &l);
                for (int i = 0; i < 50; i++) {
                        if (cgroup_leaf_remove(s, &l) != -EBUSY)
                                break;
                        (void) usleep(10000);
                }
                cgroup_leaf_close(&l);
                s->stale_removed++;
        }
        closedir(d);
}

void cgroup_setup_init(struct cgroup_setup *s, const char *proc_root) {
        char path[PATH_MAX], self[PATH_MAX / 4], mount[PATH_MAX / 4], buf[READ_BUF];
        _cleanup_free_ char *mountinfo = NULL;
        size_t self_len = 0, mountinfo_len = 0;
        int r;

        *s = (struct cgroup_setup) { .group_fd = -1 };
        snprintf(s->pressure_path, sizeof s->pressure_path, "%s/pressure/memory", proc_root);

        snprintf(path, sizeof path, "%s/self/cgroup", proc_root);
        r = read_small_file_at(AT_FDCWD, path, buf, sizeof buf, &self_len);
        snprintf(path, sizeof path, "%s/self/mountinfo", proc_root);
        (void) read_full_file_at(AT_FDCWD, path, MOUNTINFO_MAX, &mountinfo, &mountinfo_len);
        if (r < 0 || !mountinfo)
                return set_procfs(s, "cannot read /proc/self/cgroup or /proc/self/mountinfo");

        find_v1_memory(s, buf, self_len, mountinfo, mountinfo_len);

        if (cgroup_parse_self_v2(buf, self_len, self, sizeof self) < 0)
                return set_procfs(s, "no cgroup v2 hierarchy in /proc/self/cgroup");
        if (mountinfo_find_cgroup(mountinfo, mountinfo_len, NULL, mount, sizeof mount) < 0)
                return set_procfs(s, "cgroup2 is not mounted");

        /* Restarted by systemd after a crash, we may start inside our own old supervisor leaf. */
        size_t sl = strlen(self);
        if (sl > 11 && strcmp(self + sl - 11, "/supervisor") == 0)
                self[sl - 11] = '\0';
        snprintf(s->group_path, sizeof s->group_path, "%s%s", mount, strcmp(self, "/") == 0 ? "" : self);

        snprintf(path, sizeof path, "%s/cgroup.controllers", s->group_path);
        if (read_small_file_at(AT_FDCWD, path, buf, sizeof buf, NULL) < 0)
                return set_procfs(s, "cannot read cgroup.controllers of our cgroup");
        if (!word_listed(buf, "memory"))
                return set_procfs(s, "cgroup2 has no memory controller");
        if (systemd_unit_without_delegation(s->group_path, self))
                return set_procfs(s, "systemd unit without Delegate=yes");

        snprintf(path, sizeof path, "%s/cgroup.subtree_control", s->group_path);
        if (access(path, W_OK) < 0)
                return set_procfs(s, "our cgroup is not writable (read-only /sys/fs/cgroup or not delegated)");

        s->group_fd = open(s->group_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->group_fd < 0)
                return set_procfs(s, "cannot open our cgroup directory");

        /* No internal processes: we move into a leaf of our own before enabling
         * controllers for the children. The real root cgroup (no cgroup.type file) is
         * exempt from that rule and holds kernel threads that cannot move, so there we
         * only add leaves. A cgroup namespace root is not exempt: it has cgroup.type. */
        bool real_root = faccessat(s->group_fd, "cgroup.type", F_OK, 0) < 0;
        if (!real_root) {
                if (mkdirat(s->group_fd, "supervisor", 0755) < 0 && errno != EEXIST)
                        return set_procfs(s, "cannot create the supervisor leaf");
                if (move_pid(s->group_fd, "supervisor", 0) < 0)
                        return set_procfs(s, "cannot move memward into its supervisor leaf");
                r = evacuate(s);
                if (r < 0)
                        return set_procfs(s, "other processes in our cgroup could not be moved out");
        }

        if (write_at(s->group_fd, "cgroup.subtree_control", "+memory") < 0)
                return set_procfs(s, "cannot enable the memory controller for worker cgroups");
        (void) write_at(s->group_fd, "cgroup.subtree_control", "+pids"); /* nice to have */

        remove_stale_leaves(s);

        /* The root cgroup's pressure is the system's. */
        if (faccessat(s->group_fd, "memory.pressure", F_OK, 0) >= 0)
                snprintf(s->pressure_path, sizeof s->pressure_path, "%s/memory.pressure", s->group_path);
        s->mode = ACCOUNTING_CGROUP;
        snprintf(s->reason, sizeof s->reason, "delegated cgroup2 subtree with the memory controller");
}

void cgroup_setup_done(struct cgroup_setup *s) {
        s->group_fd = safe_close(s->group_fd);
}

int cgroup_group_limit(const struct cgroup_setup *s, const char *proc_root, uint64_t *ret, char *source,
                       size_t source_size) {
        char buf[READ_BUF], path[PATH_MAX + 32];
        uint64_t v;

        /* Also in procfs mode: a container's read-only cgroup2 mount still shows its
         * memory.max, which is the limit that matters. Every ancestor's limit holds
         * the group too, and a slice's can be tighter than the service's own: the
         * smallest one is what the kernel enforces. */
        if (s->group_path[0]) {
                char dir[sizeof s->group_path], smallest_path[sizeof path];
                uint64_t smallest = UINT64_MAX;
                snprintf(dir, sizeof dir, "%s", s->group_path);
                for (;;) {
                        snprintf(path, sizeof path, "%s/memory.max", dir);
                        size_t n;
                        if (read_small_file_at(AT_FDCWD, path, buf, sizeof buf, &n) < 0)
                                break; /* reached the root, which has no memory.max */
                        if (parse_u64_file(buf, n, &v) == 0 && v < smallest) {
                                smallest = v;
                                snprintf(smallest_path, sizeof smallest_path, "%s", path);
                        }
                        char *slash = strrchr(dir, '/');
                        if (!slash || slash == dir)
                                break;
                        *slash = '\0';
                }
                if (smallest != UINT64_MAX) {
                        if (source)
                                snprintf(source, source_size, "%s", smallest_path);
                        *ret = smallest;
                        return 0;
                }
        }
        if (s->v1_memory_path[0]) {
                snprintf(path, sizeof path, "%s/memory.limit_in_bytes", s->v1_memory_path);
                size_t n = 0;
                /* v1 says "no limit" with a huge page-rounded number. */
                if (read_small_file_at(AT_FDCWD, path, buf, sizeof buf, &n) >= 0 && n > 0 &&
                    parse_u64_file(buf, n, &v) == 0 && v < (1ULL << 62)) {
                        if (source)
                                snprintf(source, source_size, "%s", path);
                        *ret = v;
                        return 0;
                }
        }

        uint64_t total, avail;
        snprintf(path, sizeof path, "%s/meminfo", proc_root);
        if (source)
                snprintf(source, source_size, "%s", path);
        size_t n;
        int r = read_small_file_at(AT_FDCWD, path, buf, sizeof buf, &n);
        if (r < 0)
                return r;
        r = meminfo_parse(buf, n, &total, &avail);
        if (r < 0)
                return r;
        *ret = total;
        return 0;
}

int cgroup_group_usage(const struct cgroup_setup *s, const char *proc_root, uint64_t *ret) {
        char buf[READ_BUF], path[PATH_MAX + 32];
        size_t n = 0;
        int r;

        if (s->group_path[0]) {
                snprintf(path, sizeof path, "%s/memory.current", s->group_path);
                if (read_small_file_at(AT_FDCWD, path, buf, sizeof buf, &n) >= 0)
                        return parse_u64_file(buf, n, ret);
        }
        if (s->v1_memory_path[0]) {
                snprintf(path, sizeof path, "%s/memory.usage_in_bytes", s->v1_memory_path);
                if (read_small_file_at(AT_FDCWD, path, buf, sizeof buf, &n) >= 0 && n > 0)
                        return parse_u64_file(buf, n, ret);
        }

        uint64_t total, avail;
        snprintf(path, sizeof path, "%s/meminfo", proc_root);
        r = read_small_file_at(AT_FDCWD, path, buf, sizeof buf, &n);
        if (r < 0)
                return r;
        r = meminfo_parse(buf, n, &total, &avail);
        if (r < 0)
                return r;
        *ret = total - avail;
        return 0;
}

/* ---- worker leaves --------------------------------------------------------- */

static int open_at(int dir_fd, const char *name) {
        int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

int cgroup_leaf_create(const struct cgroup_setup *s, unsigned slot, unsigned long long generation, uint64_t high,
                       uint64_t max, struct cgroup_leaf *ret) {
        char name[sizeof ret->name];

        snprintf(name, sizeof name, "worker-%u-%llu", slot, generation);
        return cgroup_leaf_create_named(s, name, high, max, ret);
}

int cgroup_leaf_create_named(const struct cgroup_setup *s, const char *name, uint64_t high, uint64_t max,
                             struct cgroup_leaf *ret) {
        struct cgroup_leaf l = CGROUP_LEAF_INIT;
        char num[32];
        int r;

        if (s->mode != ACCOUNTING_CGROUP)
                return -EOPNOTSUPP;

        snprintf(l.name, sizeof l.name, "%s", name);
        if (mkdirat(s->group_fd, l.name, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        l.dir_fd = openat(s->group_fd, l.name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (l.dir_fd < 0) {
                r = negative_errno();
                goto fail;
        }
        if (high > 0) {
                snprintf(num, sizeof num, "%llu", (unsigned long long) high);
                if ((r = write_at(l.dir_fd, "memory.high", num)) < 0)
                        goto fail;
        }
        if (max > 0) {
                snprintf(num, sizeof num, "%llu", (unsigned long long) max);
                if ((r = write_at(l.dir_fd, "memory.max", num)) < 0)
                        goto fail;
                /* An OOM kill takes the whole worker, not one random helper process of it. */
                (void) write_at(l.dir_fd, "memory.oom.group", "1");
        }
        if ((r = l.current_fd = open_at(l.dir_fd, "memory.current")) < 0 ||
            (r = l.stat_fd = open_at(l.dir_fd, "memory.stat")) < 0 ||
            (r = l.events_fd = open_at(l.dir_fd, "memory.events")) < 0)
                goto fail;
        l.peak_fd = open_at(l.dir_fd, "memory.peak");
        if (l.peak_fd < 0)
                l.peak_fd = -1;

        *ret = l;
        return 0;
fail:
        if (l.current_fd < 0)
                l.current_fd = -1;
        if (l.stat_fd < 0)
                l.stat_fd = -1;
        if (l.events_fd < 0)
                l.events_fd = -1;
        (void) cgroup_leaf_remove(s, &l);
        cgroup_leaf_close(&l);
        return r;
}

int cgroup_leaf_read(const struct cgroup_leaf *l, uint64_t *ret_current, struct memory_stat *ret_stat) {
        char buf[READ_BUF];
        size_t n;
        int r;

        r = pread_small_file(l->current_fd, buf, sizeof buf, &n);
        if (r < 0)
                return r;
        r = parse_u64_file(buf, n, ret_current);
        if (r < 0)
                return r;
        r = pread_small_file(l->stat_fd, buf, sizeof buf, &n);
        if (r < 0)
                return r;
        return memory_stat_parse(buf, n, ret_stat);
}

int cgroup_leaf_read_events(const struct cgroup_leaf *l, struct memory_events *ret) {
        char buf[512];
        size_t n;
        int r = pread_small_file(l->events_fd, buf, sizeof buf, &n);
        if (r < 0)
                return r;
        return memory_events_parse(buf, n, ret);
}

int cgroup_leaf_read_peak(const struct cgroup_leaf *l, uint64_t *ret) {
        char buf[64];
        if (l->peak_fd < 0)
                return -EOPNOTSUPP;
        size_t n;
        int r = pread_small_file(l->peak_fd, buf, sizeof buf, &n);
        if (r < 0)
                return r;
        return parse_u64_file(buf, n, ret);
}

int cgroup_leaf_kill(const struct cgroup_setup *s, const struct cgroup_leaf *l) {
        char buf[READ_BUF];
        (void) s;

        if (l->dir_fd < 0)
                return -EBADF;
        int r = write_at(l->dir_fd, "cgroup.kill", "1");
        if (r != -ENOENT)
                return r;

        /* Before 5.14: kill what is listed; a process forking meanwhile is caught by
         * the caller's retry of cgroup_leaf_remove(). */
        r = read_small_file_at(l->dir_fd, "cgroup.procs", buf, sizeof buf, NULL);
        if (r < 0)
                return r;
        for (char *p = buf; *p;) {
                pid_t pid = (pid_t) strtol(p, &p, 10);
                if (pid > 0)
                        (void) kill(pid, SIGKILL);
                while (*p == '\n')
                        p++;
                if (*p && (*p < '0' || *p > '9'))
                        break;
        }
        return 0;
}

void cgroup_leaf_close(struct cgroup_leaf *l) {
        l->current_fd = safe_close(l->current_fd);
        l->stat_fd = safe_close(l->stat_fd);
        l->events_fd = safe_close(l->events_fd);
        l->peak_fd = safe_close(l->peak_fd);
        l->dir_fd = safe_close(l->dir_fd);
}

int cgroup_leaf_remove(const struct cgroup_setup *s, struct cgroup_leaf *l) {
        if (!l->name[0] || s->group_fd < 0)
                return 0;
        if (unlinkat(s->group_fd, l->name, AT_REMOVEDIR) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        return 0;
}

/* ---- per-process accounting ------------------------------------------------ */

/* -ESRCH only when the process is gone (its directory with it): a file this kernel
 * does not have (smaps_rollup before 4.14) stays -ENOENT, so the caller can say so
 * rather than take a live worker for a vanished one. */
static int read_proc_file(const char *proc_root, pid_t pid, const char *name, char *buf, size_t size,
                          size_t *ret_length) {
        char path[96];
        snprintf(path, sizeof path, "%s/%d/%s", proc_root, (int) pid, name);
        int r = read_small_file_at(AT_FDCWD, path, buf, size, ret_length);
        if (r == -ENOENT) {
                snprintf(path, sizeof path, "%s/%d", proc_root, (int) pid);
                if (access(path, F_OK) < 0 && errno == ENOENT)
                        return -ESRCH;
        }
        return r;
}

/* What one process adds to a tree sum; returns what reading it returned, so that the
 * walk can tell a vanished worker from one whose children vanished. */
typedef int (*tree_visit_t)(const char *proc_root, pid_t pid, void *userdata);

struct tree_walk {
        const char *proc_root;
        tree_visit_t visit;
        void *userdata;
        unsigned budget;                /* processes still to visit */
};

static void tree_walk_children(struct tree_walk *tw, pid_t pid, unsigned depth);

static void tree_walk_pid(struct tree_walk *tw, pid_t pid, unsigned depth, int *ret_self) {
        if (depth > TREE_DEPTH_MAX || tw->budget == 0)
                return;
        tw->budget--;
        int r = tw->visit(tw->proc_root, pid, tw->userdata);
        if (ret_self)
                *ret_self = r;
        if (r == -ESRCH)
                return;
        tree_walk_children(tw, pid, depth);
}

static void tree_walk_thread_children(struct tree_walk *tw, int task_fd, const char *tid, unsigned depth) {
        char name[sizeof ((struct dirent64 *) NULL)->d_name + sizeof "/children"], buf[READ_BUF];

        snprintf(name, sizeof name, "%s/children", tid);
        size_t n;
        if (read_small_file_at(task_fd, name, buf, sizeof buf, &n) < 0 || n == 0)
                return;
        for (char *p = buf;;) {
                char *end;
                long child = strtol(p, &end, 10);
                if (end == p)
                        break;
                if (child > 0)
                        tree_walk_pid(tw, (pid_t) child, depth + 1, NULL);
                p = end;
        }
}

/* The kernel lists a child under the thread that forked it, not under the process: a
 * gthread or puma worker that runs a subprocess from a request thread has it in that
 * thread's task/TID/children. So every thread's list is read. getdents64 into a stack
 * buffer rather than opendir(), whose 32 kB buffer would sit in our heap for good. */
static void tree_walk_children(struct tree_walk *tw, pid_t pid, unsigned depth) {
        char path[96];
        _Alignas(struct dirent64) char dents[1024];

        snprintf(path, sizeof path, "%s/%d/task", tw->proc_root, (int) pid);
        _cleanup_close_ int task_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (task_fd < 0)
                return;
        for (;;) {
                ssize_t n = getdents64(task_fd, dents, sizeof dents);
                if (n <= 0)
                        return;
                for (ssize_t off = 0; off < n;) {
                        const struct dirent64 *de = (const struct dirent64 *) (dents + off);
                        off += de->d_reclen;
                        if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
                                tree_walk_thread_children(tw, task_fd, de->d_name, depth);
                }
        }
}

/* Visits pid and every descendant (up to TREE_PROCS_MAX, TREE_DEPTH_MAX deep).
 * -ESRCH when pid itself is gone. */
static int tree_walk(const char *proc_root, pid_t pid, tree_visit_t visit, void *userdata) {
        struct tree_walk tw = {
                .proc_root = proc_root,
                .visit = visit,
                .userdata = userdata,
                .budget = TREE_PROCS_MAX,
        };
        int self = 0;

        tree_walk_pid(&tw, pid, 0, &self);
        return self < 0 ? self : 0;
}

static int visit_smaps_rollup(const char *proc_root, pid_t pid, void *userdata) {
        struct smaps_rollup *sum = userdata, r;
        char buf[READ_BUF];
        size_t n;

        int k = read_proc_file(proc_root, pid, "smaps_rollup", buf, sizeof buf, &n);
        if (k < 0)
                return k;
        if (smaps_rollup_parse(buf, n, &r) >= 0) {
                sum->rss += r.rss;
                sum->pss += r.pss;
                sum->anonymous += r.anonymous;
                /* Like the USS below: the tree's Pss_Anon only if every process has one. */
                sum->has_pss_anon = sum->has_pss_anon && r.has_pss_anon;
                sum->pss_anon += r.pss_anon;
                /* The tree has a USS only if every process in it has one. */
                sum->has_private = sum->has_private && r.has_private;
                sum->private_bytes += r.private_bytes;
        }
        return 0;
}

int procfs_tree_memory(const char *proc_root, pid_t pid, struct smaps_rollup *ret) {
        struct smaps_rollup sum = { .has_private = true, .has_pss_anon = true };

        int r = tree_walk(proc_root, pid, visit_smaps_rollup, &sum);
        if (r < 0)
                return r;
        *ret = sum;
        return 0;
}

struct statm_sum {
        uint64_t bytes;
        unsigned processes;
};

static int visit_statm(const char *proc_root, pid_t pid, void *userdata) {
        struct statm_sum *sum = userdata;
        uint64_t resident, shared;
        char buf[256];

        size_t n;
        int r = read_proc_file(proc_root, pid, "statm", buf, sizeof buf, &n);
        if (r < 0)
                return r;
        r = statm_parse(buf, n, (uint64_t) sysconf(_SC_PAGESIZE), &resident, &shared);
        if (r < 0)
                return r;
        sum->bytes += resident > shared ? resident - shared : 0;
        sum->processes++;
        return 0;
}

int procfs_private_memory(const char *proc_root, pid_t pid, uint64_t *ret, unsigned *ret_processes) {
        struct statm_sum sum = {};

        int r = tree_walk(proc_root, pid, visit_statm, &sum);
        if (r < 0)
                return r;
        *ret = sum.bytes;
        if (ret_processes)
                *ret_processes = sum.processes;
        return 0;
}
