"""Build script for the compiled syscall glue (cffi API mode, run by setup.py at install time).

Compiling here keeps the per-command cost at one small extension import: no C parsing at run time
(cffi ABI mode) and no ctypes. Only calls Python's os module lacks live here; pyrunc/linux/sys.py is
the one module that imports the result.
"""

from cffi import FFI

ffibuilder = FFI()

ffibuilder.cdef(
    """
    int unshare(int flags);
    int setns(int fd, int nstype);
    int mount(const char *source, const char *target, const char *fstype,
              unsigned long flags, const void *data);
    int umount2(const char *target, int flags);
    int sethostname(const char *name, size_t len);
    int setdomainname(const char *name, size_t len);
    int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
    int personality(unsigned long persona);
    int chroot(const char *path);
    int ioctl(int fd, unsigned long request, ...);

    int pyrunc_pivot_root(const char *new_root, const char *put_old);
    int pyrunc_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                       uint64_t resolve);
    int pyrunc_close_range(unsigned int first, unsigned int last, unsigned int flags);
    int pyrunc_mount_setattr(int dirfd, const char *path, unsigned int flags,
                             uint64_t attr_set, uint64_t attr_clr, uint64_t propagation);
    int pyrunc_mount_setattr_idmap(int fd, unsigned int flags, int userns_fd);
    int pyrunc_capget(uint32_t *data6);
    int pyrunc_capset(const uint32_t *data6);
    int pyrunc_lo_up(void);
    int pyrunc_send_fd(int sock, int fd, const char *name, size_t len);
    int pyrunc_recv_fd(int sock);
    int pyrunc_set_ctty(int fd);
    int pyrunc_get_winsize(int fd, unsigned short *rows_cols);
    int pyrunc_set_winsize(int fd, unsigned short rows, unsigned short cols);
    long pyrunc_join_session_keyring(const char *name);
    int pyrunc_open_tree(int dirfd, const char *path, unsigned int flags);
    int pyrunc_move_mount(int from_dfd, const char *from_path, int to_dfd, const char *to_path,
                          unsigned int flags);
    int pyrunc_bpf_prog_load(const void *insns, unsigned int insn_cnt, const char *license,
                             char *log, unsigned int log_size);
    int pyrunc_bpf_prog_attach(int cgroup_fd, int prog_fd, unsigned int flags, int replace_fd);
    int pyrunc_bpf_prog_detach(int cgroup_fd, int prog_fd);
    int pyrunc_bpf_prog_query(int cgroup_fd, uint32_t *ids, unsigned int *count);
    int pyrunc_bpf_prog_get_fd_by_id(uint32_t id);
    int pyrunc_seccomp_set_filter(unsigned int flags, const void *insns, unsigned short count);
    int pyrunc_seccomp_flags_known(unsigned int flags);
    long pyrunc_fork_into_cgroup(int cgroup_fd);
    int pyrunc_sched_setattr(int pid, uint32_t policy, uint64_t flags, int32_t nice,
                             uint32_t priority, uint64_t runtime, uint64_t deadline,
                             uint64_t period);
    int pyrunc_ioprio_set(int which, int who, int ioprio);
    long pyrunc_set_mempolicy(int mode, const unsigned long *nodemask, unsigned long maxnode);
    """
)

ffibuilder.set_source(
    "pyrunc.linux._sys",
    r"""
    #define _GNU_SOURCE
    #include <sched.h>
    #include <stdint.h>
    #include <errno.h>
    #include <signal.h>
    #include <string.h>
    #include <unistd.h>
    #include <sys/mount.h>
    #include <sys/prctl.h>
    #include <sys/personality.h>
    #include <sys/syscall.h>
    #include <sys/ioctl.h>
    #include <sys/socket.h>
    #include <net/if.h>
    #include <linux/capability.h>
    #include <linux/bpf.h>
    #include <linux/filter.h>
    #include <linux/seccomp.h>
    #include <termios.h>

    #ifndef SYS_openat2
    #define SYS_openat2 437
    #endif
    #ifndef SYS_close_range
    #define SYS_close_range 436
    #endif
    #ifndef SYS_open_tree
    #define SYS_open_tree 428
    #endif
    #ifndef SYS_move_mount
    #define SYS_move_mount 429
    #endif
    #ifndef SYS_mount_setattr
    #define SYS_mount_setattr 442
    #endif

    #ifndef SYS_bpf
    #define SYS_bpf 321
    #endif
    #ifndef SYS_seccomp
    #define SYS_seccomp 317
    #endif

    #ifndef SYS_clone3
    #define SYS_clone3 435
    #endif
    #define PYRUNC_CLONE_INTO_CGROUP 0x200000000ULL

    struct pyrunc_open_how { uint64_t flags, mode, resolve; };
    /* struct clone_args up to CLONE_ARGS_SIZE_VER2 (the cgroup field, Linux 5.7) */
    struct pyrunc_clone_args {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
                 set_tid, set_tid_size, cgroup;
    };

    /* os.fork(), but the child starts life in the cgroup2 directory cgroup_fd (clone3 with
       CLONE_INTO_CGROUP): no cgroup.procs write, so no wait for the threadgroup rwsem's RCU
       grace period. Python's own fork hooks run around it as os.fork runs them; cffi has
       released the GIL for this call, so take it back for them. Only for a single-threaded
       caller: unlike glibc's fork() this runs no libc atfork handlers (malloc's locks), so
       another thread holding one would deadlock the child. Returns the pid, 0 in the child,
       -1 with errno (ENOSYS, E2BIG, EINVAL, EBUSY, EOPNOTSUPP...) and nothing forked. */
    long pyrunc_fork_into_cgroup(int cgroup_fd) {
        struct pyrunc_clone_args a;
        long pid;
        int err;
        PyGILState_STATE g = PyGILState_Ensure();
        memset(&a, 0, sizeof(a));
        a.flags = PYRUNC_CLONE_INTO_CGROUP;
        a.exit_signal = SIGCHLD;
        a.cgroup = (uint64_t)cgroup_fd;
        PyOS_BeforeFork();
        pid = syscall(SYS_clone3, &a, sizeof(a));
        err = errno;
        if (pid == 0)
            PyOS_AfterFork_Child();
        else
            PyOS_AfterFork_Parent();
        PyGILState_Release(g);
        errno = err;
        return pid;
    }
    struct pyrunc_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };

    /* struct sched_attr up to SCHED_ATTR_SIZE_VER1 (utilization clamps, Linux 5.3): the
       clamps stay 0, as runc leaves them */
    struct pyrunc_sched_attr {
        uint32_t size, sched_policy;
        uint64_t sched_flags;
        int32_t sched_nice;
        uint32_t sched_priority;
        uint64_t sched_runtime, sched_deadline, sched_period;
        uint32_t sched_util_min, sched_util_max;
    };
    int pyrunc_sched_setattr(int pid, uint32_t policy, uint64_t flags, int32_t nice,
                             uint32_t priority, uint64_t runtime, uint64_t deadline,
                             uint64_t period) {
        struct pyrunc_sched_attr a;
        memset(&a, 0, sizeof(a));
        a.size = sizeof(a);
        a.sched_policy = policy;
        a.sched_flags = flags;
        a.sched_nice = nice;
        a.sched_priority = priority;
        a.sched_runtime = runtime;
        a.sched_deadline = deadline;
        a.sched_period = period;
        return syscall(SYS_sched_setattr, pid, &a, 0);
    }
    int pyrunc_ioprio_set(int which, int who, int ioprio) {
        return syscall(SYS_ioprio_set, which, who, ioprio);
    }
    long pyrunc_set_mempolicy(int mode, const unsigned long *nodemask, unsigned long maxnode) {
        return syscall(SYS_set_mempolicy, mode, nodemask, maxnode);
    }

    int pyrunc_pivot_root(const char *new_root, const char *put_old) {
        return syscall(SYS_pivot_root, new_root, put_old);
    }
    int pyrunc_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                       uint64_t resolve) {
        struct pyrunc_open_how how = { flags, mode, resolve };
        return syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    }
    int pyrunc_close_range(unsigned int first, unsigned int last, unsigned int flags) {
        return syscall(SYS_close_range, first, last, flags);
    }
    int pyrunc_mount_setattr(int dirfd, const char *path, unsigned int flags,
                             uint64_t attr_set, uint64_t attr_clr, uint64_t propagation) {
        struct pyrunc_mount_attr a = { attr_set, attr_clr, propagation, 0 };
        return syscall(SYS_mount_setattr, dirfd, path, flags, &a, sizeof(a));
    }
    /* MOUNT_ATTR_IDMAP (0x00100000) on a detached mount, mapped through userns_fd's id maps */
    int pyrunc_mount_setattr_idmap(int fd, unsigned int flags, int userns_fd) {
        struct pyrunc_mount_attr a = { 0x00100000, 0, 0, (uint64_t)userns_fd };
        return syscall(SYS_mount_setattr, fd, "", flags, &a, sizeof(a));
    }
    int pyrunc_open_tree(int dirfd, const char *path, unsigned int flags) {
        return syscall(SYS_open_tree, dirfd, path, flags);
    }
    int pyrunc_move_mount(int from_dfd, const char *from_path, int to_dfd, const char *to_path,
                          unsigned int flags) {
        return syscall(SYS_move_mount, from_dfd, from_path, to_dfd, to_path, flags);
    }
    /* bpf(2) for cgroup device programs only: the attach type is always BPF_CGROUP_DEVICE. */
    int pyrunc_bpf_prog_load(const void *insns, unsigned int insn_cnt, const char *license,
                             char *log, unsigned int log_size) {
        union bpf_attr a;
        memset(&a, 0, sizeof(a));
        a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
        a.insns = (uint64_t)(uintptr_t)insns;
        a.insn_cnt = insn_cnt;
        a.license = (uint64_t)(uintptr_t)license;
        if (log && log_size) {
            a.log_buf = (uint64_t)(uintptr_t)log;
            a.log_size = log_size;
            a.log_level = 1;
        }
        return syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
    }
    int pyrunc_bpf_prog_attach(int cgroup_fd, int prog_fd, unsigned int flags, int replace_fd) {
        union bpf_attr a;
        memset(&a, 0, sizeof(a));
        a.target_fd = cgroup_fd;
        a.attach_bpf_fd = prog_fd;
        a.attach_type = BPF_CGROUP_DEVICE;
        a.attach_flags = flags;
        a.replace_bpf_fd = replace_fd;
        return syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof(a));
    }
    int pyrunc_bpf_prog_detach(int cgroup_fd, int prog_fd) {
        union bpf_attr a;
        memset(&a, 0, sizeof(a));
        a.target_fd = cgroup_fd;
        a.attach_bpf_fd = prog_fd;
        a.attach_type = BPF_CGROUP_DEVICE;
        return syscall(SYS_bpf, BPF_PROG_DETACH, &a, sizeof(a));
    }
    int pyrunc_bpf_prog_query(int cgroup_fd, uint32_t *ids, unsigned int *count) {
        union bpf_attr a;
        int r;
        memset(&a, 0, sizeof(a));
        a.query.target_fd = cgroup_fd;
        a.query.attach_type = BPF_CGROUP_DEVICE;
        a.query.prog_ids = (uint64_t)(uintptr_t)ids;
        a.query.prog_cnt = *count;
        r = syscall(SYS_bpf, BPF_PROG_QUERY, &a, sizeof(a));
        *count = a.query.prog_cnt; /* the real number, also on ENOSPC */
        return r;
    }
    int pyrunc_bpf_prog_get_fd_by_id(uint32_t id) {
        union bpf_attr a;
        memset(&a, 0, sizeof(a));
        a.prog_id = id;
        return syscall(SYS_bpf, BPF_PROG_GET_FD_BY_ID, &a, sizeof(a));
    }
    /* seccomp(2) with a classic BPF program assembled by us (the -ENOSYS stub in front of
       libseccomp's export), so libseccomp's own load cannot be used. Returns the notify
       listener fd with SECCOMP_FILTER_FLAG_NEW_LISTENER, 0 otherwise. */
    int pyrunc_seccomp_set_filter(unsigned int flags, const void *insns, unsigned short count) {
        struct sock_fprog prog;
        prog.len = count;
        prog.filter = (struct sock_filter *)insns;
        return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    }
    /* Does the kernel take these filter flags? The kernel checks them before it reads the
       program, so with none it fails EFAULT when they are good and EINVAL when not (the probe
       libseccomp makes): nothing is loaded either way. */
    int pyrunc_seccomp_flags_known(unsigned int flags) {
        return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL) < 0 && errno == EFAULT;
    }
    int pyrunc_capget(uint32_t *d) {
        struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct data[2];
        if (syscall(SYS_capget, &h, data) < 0) return -1;
        d[0] = data[0].effective; d[1] = data[1].effective;
        d[2] = data[0].permitted; d[3] = data[1].permitted;
        d[4] = data[0].inheritable; d[5] = data[1].inheritable;
        return 0;
    }
    int pyrunc_capset(const uint32_t *d) {
        struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct data[2];
        data[0].effective = d[0]; data[1].effective = d[1];
        data[0].permitted = d[2]; data[1].permitted = d[3];
        data[0].inheritable = d[4]; data[1].inheritable = d[5];
        return syscall(SYS_capset, &h, data);
    }
    int pyrunc_lo_up(void) {
        struct ifreq ifr;
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;
        if (s < 0) return -1;
        memset(&ifr, 0, sizeof(ifr));
        strcpy(ifr.ifr_name, "lo");
        r = ioctl(s, SIOCGIFFLAGS, &ifr);
        if (r == 0 && !(ifr.ifr_flags & IFF_UP)) {
            ifr.ifr_flags |= IFF_UP;
            r = ioctl(s, SIOCSIFFLAGS, &ifr);
        }
        close(s);
        return r;
    }
    int pyrunc_send_fd(int sock, int fd, const char *name, size_t len) {
        struct msghdr msg;
        struct iovec iov;
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr *c;
        memset(&msg, 0, sizeof(msg));
        memset(buf, 0, sizeof(buf));
        iov.iov_base = (void *)name;
        iov.iov_len = len;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = buf;
        msg.msg_controllen = sizeof(buf);
        c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        return sendmsg(sock, &msg, 0) < 0 ? -1 : 0;
    }
    int pyrunc_recv_fd(int sock) {
        struct msghdr msg;
        struct iovec iov;
        char data[4096];
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr *c;
        int fd = -1;
        memset(&msg, 0, sizeof(msg));
        iov.iov_base = data;
        iov.iov_len = sizeof(data);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = buf;
        msg.msg_controllen = sizeof(buf);
        if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) < 0) return -1;
        c = CMSG_FIRSTHDR(&msg);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(&fd, CMSG_DATA(c), sizeof(int));
        return fd;
    }
    long pyrunc_join_session_keyring(const char *name) {
        return syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, name);
    }
    int pyrunc_set_ctty(int fd) { return ioctl(fd, TIOCSCTTY, 0); }
    int pyrunc_get_winsize(int fd, unsigned short *rc) {
        struct winsize ws;
        if (ioctl(fd, TIOCGWINSZ, &ws) < 0) return -1;
        rc[0] = ws.ws_row; rc[1] = ws.ws_col;
        return 0;
    }
    int pyrunc_set_winsize(int fd, unsigned short rows, unsigned short cols) {
        struct winsize ws;
        memset(&ws, 0, sizeof(ws));
        ws.ws_row = rows; ws.ws_col = cols;
        return ioctl(fd, TIOCSWINSZ, &ws);
    }
    """,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
