"""aarch64's (arm64's) system call numbers and open flags.

System calls: the generic table every newer architecture uses, as arm64 builds it: the
kernel's scripts/syscall.tbl with the "common" and "64" entries and arm64's optional
renameat, getrlimit/setrlimit and memfd_secret (include/uapi/asm-generic/unistd.h until
Linux 6.11 generated the header from that table), 0-294 and 424-470 (through listns,
Linux 6.19). Names are the uapi header's __NR_ names, so those of glibc's SYS_*
and strace: `newfstatat` (79), `fstat` (80), `openat` (56), `clone` (220), `execve` (221),
`mmap` (222); there is no `open`, `stat` or `fork`.

BCC on arm64 names calls with `ausyscall --dump` (audit's table), which differs in two
ways. 42 `nfsservctl`: asm-generic/unistd.h defined it (never implemented) and audit
still lists it, but the table the kernel has built from since 6.11 leaves 42 out; it is
here, so that it prints as BCC prints it. 61, 67, 68 and 80: audit calls them `getdents`,
`pread`, `pwrite` and `newfstat`, the kernel `getdents64`, `pread64`, `pwrite64` and
`fstat`; here they have the kernel's names.

Open flags: arch/arm64/include/uapi/asm/fcntl.h moves O_DIRECTORY, O_NOFOLLOW, O_DIRECT
and O_LARGEFILE (so that 32-bit ARM programs, with ARM's values, need no translation);
the rest is asm-generic/fcntl.h.
"""

from __future__ import annotations

from bpfcap.formats.abi.generic import SYSCALLS_FROM_424, lowest_numbers, numbered, open_flags

MACHINE = "aarch64"

# Consecutive numbers from each range's first; names are separated by white space.
# 244-259 are for architecture-specific calls, of which arm64 has none; 295-423 are
# unassigned (32-bit architectures' time64 calls sit at 403-423).
_RANGES = {
    0: """
    io_setup io_destroy io_submit io_cancel io_getevents setxattr lsetxattr fsetxattr
    getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr removexattr lremovexattr
    fremovexattr getcwd lookup_dcookie eventfd2 epoll_create1 epoll_ctl epoll_pwait dup
    dup3 fcntl inotify_init1 inotify_add_watch inotify_rm_watch ioctl ioprio_set ioprio_get
    flock mknodat mkdirat unlinkat symlinkat linkat renameat umount2 mount pivot_root
    nfsservctl statfs fstatfs truncate ftruncate fallocate faccessat chdir fchdir chroot
    fchmod fchmodat fchownat fchown openat close vhangup pipe2 quotactl getdents64 lseek
    read write readv writev pread64 pwrite64 preadv pwritev sendfile pselect6 ppoll
    signalfd4 vmsplice splice tee readlinkat newfstatat fstat sync fsync fdatasync
    sync_file_range timerfd_create timerfd_settime timerfd_gettime utimensat acct capget
    capset personality exit exit_group waitid set_tid_address unshare futex
    set_robust_list get_robust_list nanosleep getitimer setitimer kexec_load init_module
    delete_module timer_create timer_gettime timer_getoverrun timer_settime timer_delete
    clock_settime clock_gettime clock_getres clock_nanosleep syslog ptrace sched_setparam
    sched_setscheduler sched_getscheduler sched_getparam sched_setaffinity
    sched_getaffinity sched_yield sched_get_priority_max sched_get_priority_min
    sched_rr_get_interval restart_syscall kill tkill tgkill sigaltstack rt_sigsuspend
    rt_sigaction rt_sigprocmask rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_sigreturn
    setpriority getpriority reboot setregid setgid setreuid setuid setresuid getresuid
    setresgid getresgid setfsuid setfsgid times setpgid getpgid getsid setsid getgroups
    setgroups uname sethostname setdomainname getrlimit setrlimit getrusage umask prctl
    getcpu gettimeofday settimeofday adjtimex getpid getppid getuid geteuid getgid getegid
    gettid sysinfo mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr
    msgget msgctl msgrcv msgsnd semget semctl semtimedop semop shmget shmctl shmat shmdt
    socket socketpair bind listen accept connect getsockname getpeername sendto recvfrom
    setsockopt getsockopt shutdown sendmsg recvmsg readahead brk munmap mremap add_key
    request_key keyctl clone execve mmap fadvise64 swapon swapoff mprotect msync mlock
    munlock mlockall munlockall mincore madvise remap_file_pages mbind get_mempolicy
    set_mempolicy migrate_pages move_pages rt_tgsigqueueinfo perf_event_open accept4
    recvmmsg
""",
    260: """
    wait4 prlimit64 fanotify_init fanotify_mark name_to_handle_at open_by_handle_at
    clock_adjtime syncfs setns sendmmsg process_vm_readv process_vm_writev kcmp
    finit_module sched_setattr sched_getattr renameat2 seccomp getrandom memfd_create bpf
    execveat userfaultfd membarrier mlock2 copy_file_range preadv2 pwritev2 pkey_mprotect
    pkey_alloc pkey_free statx io_pgetevents rseq kexec_file_load
""",
    424: SYSCALLS_FROM_424,
}

SYSCALLS: dict[int, str] = numbered(_RANGES)
SYSCALL_NUMBERS: dict[str, int] = lowest_numbers(SYSCALLS)

OPEN_FLAGS: dict[str, int] = open_flags(
    directory=0o40000, nofollow=0o100000, direct=0o200000, largefile=0o400000
)
