"""The tables x86_64 and aarch64 share, as plain number/name data.

- System calls from 424 on: the kernel numbers every architecture's new calls alike since
  Linux 5.1 (pidfd_send_signal), so x86_64's syscall_64.tbl and the generic
  scripts/syscall.tbl (arm64's) hold the same 424-470 (through listns, Linux 6.19).
- errno: both use include/uapi/asm-generic/errno-base.h and errno.h unchanged (x86's
  asm/errno.h and arm64's only include them), plus glibc's ENOTSUP, which Python's
  errno module and strerror know.
- Signals: x86's arch/x86/include/uapi/asm/signal.h and asm-generic/signal.h (arm64's)
  number 1-31 alike. SIGRTMIN is 34 as glibc, `kill -l` and Python number it: the kernel
  header says 32, but glibc keeps 32 and 33 for its threads, so no program sees them as
  real-time signals.
- Address families: include/linux/socket.h, one list for every architecture.
- Open flags: include/uapi/asm-generic/fcntl.h; an architecture's asm/fcntl.h moves some
  bits, so open_flags() takes those four as arguments.
"""

from __future__ import annotations


def numbered(ranges: dict[int, str]) -> dict[int, str]:
    """{first number: white-space separated names} -> {number: name}, counting up."""
    return {
        first + i: name for first, text in ranges.items() for i, name in enumerate(text.split())
    }


def lowest_numbers(names: dict[int, str]) -> dict[str, int]:
    """name -> number; a name with two numbers (x86's x32 range 512-547 repeats some
    native calls) gets the lower one, the native 64-bit number."""
    numbers: dict[str, int] = {}
    for nr, name in sorted(names.items(), reverse=True):
        numbers[name] = nr
    return numbers


SYSCALLS_FROM_424 = """
    pidfd_send_signal io_uring_setup io_uring_enter io_uring_register open_tree move_mount
    fsopen fsconfig fsmount fspick pidfd_open clone3 close_range openat2 pidfd_getfd
    faccessat2 process_madvise epoll_pwait2 mount_setattr quotactl_fd
    landlock_create_ruleset landlock_add_rule landlock_restrict_self memfd_secret
    process_mrelease futex_waitv set_mempolicy_home_node cachestat fchmodat2
    map_shadow_stack futex_wake futex_wait futex_requeue statmount listmount
    lsm_get_self_attr lsm_set_self_attr lsm_list_modules mseal setxattrat getxattrat
    listxattrat removexattrat open_tree_attr file_getattr file_setattr listns
"""


def _pairs(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in (p.split("=") for p in text.split())}


ERRNOS: dict[str, int] = _pairs("""
    EPERM=1 ENOENT=2 ESRCH=3 EINTR=4 EIO=5 ENXIO=6 E2BIG=7 ENOEXEC=8 EBADF=9 ECHILD=10
    EAGAIN=11 EWOULDBLOCK=11 ENOMEM=12 EACCES=13 EFAULT=14 ENOTBLK=15 EBUSY=16 EEXIST=17
    EXDEV=18 ENODEV=19 ENOTDIR=20 EISDIR=21 EINVAL=22 ENFILE=23 EMFILE=24 ENOTTY=25
    ETXTBSY=26 EFBIG=27 ENOSPC=28 ESPIPE=29 EROFS=30 EMLINK=31 EPIPE=32 EDOM=33 ERANGE=34
    EDEADLK=35 EDEADLOCK=35 ENAMETOOLONG=36 ENOLCK=37 ENOSYS=38 ENOTEMPTY=39 ELOOP=40
    ENOMSG=42 EIDRM=43 ECHRNG=44 EL2NSYNC=45 EL3HLT=46 EL3RST=47 ELNRNG=48 EUNATCH=49
    ENOCSI=50 EL2HLT=51 EBADE=52 EBADR=53 EXFULL=54 ENOANO=55 EBADRQC=56 EBADSLT=57
    EBFONT=59 ENOSTR=60 ENODATA=61 ETIME=62 ENOSR=63 ENONET=64 ENOPKG=65 EREMOTE=66
    ENOLINK=67 EADV=68 ESRMNT=69 ECOMM=70 EPROTO=71 EMULTIHOP=72 EDOTDOT=73 EBADMSG=74
    EOVERFLOW=75 ENOTUNIQ=76 EBADFD=77 EREMCHG=78 ELIBACC=79 ELIBBAD=80 ELIBSCN=81
    ELIBMAX=82 ELIBEXEC=83 EILSEQ=84 ERESTART=85 ESTRPIPE=86 EUSERS=87 ENOTSOCK=88
    EDESTADDRREQ=89 EMSGSIZE=90 EPROTOTYPE=91 ENOPROTOOPT=92 EPROTONOSUPPORT=93
    ESOCKTNOSUPPORT=94 EOPNOTSUPP=95 ENOTSUP=95 EPFNOSUPPORT=96 EAFNOSUPPORT=97
    EADDRINUSE=98 EADDRNOTAVAIL=99 ENETDOWN=100 ENETUNREACH=101 ENETRESET=102
    ECONNABORTED=103 ECONNRESET=104 ENOBUFS=105 EISCONN=106 ENOTCONN=107 ESHUTDOWN=108
    ETOOMANYREFS=109 ETIMEDOUT=110 ECONNREFUSED=111 EHOSTDOWN=112 EHOSTUNREACH=113
    EALREADY=114 EINPROGRESS=115 ESTALE=116 EUCLEAN=117 ENOTNAM=118 ENAVAIL=119 EISNAM=120
    EREMOTEIO=121 EDQUOT=122 ENOMEDIUM=123 EMEDIUMTYPE=124 ECANCELED=125 ENOKEY=126
    EKEYEXPIRED=127 EKEYREVOKED=128 EKEYREJECTED=129 EOWNERDEAD=130 ENOTRECOVERABLE=131
    ERFKILL=132 EHWPOISON=133
""")
# Second names of a number: accepted in filters, never printed. ENOTSUP is glibc's; the
# kernel's own name for 95 is EOPNOTSUPP.
ERRNO_ALIASES = frozenset({"EWOULDBLOCK", "EDEADLOCK", "ENOTSUP"})

SIGNALS: dict[str, int] = _pairs("""
    SIGHUP=1 SIGINT=2 SIGQUIT=3 SIGILL=4 SIGTRAP=5 SIGABRT=6 SIGIOT=6 SIGBUS=7 SIGFPE=8
    SIGKILL=9 SIGUSR1=10 SIGSEGV=11 SIGUSR2=12 SIGPIPE=13 SIGALRM=14 SIGTERM=15
    SIGSTKFLT=16 SIGCHLD=17 SIGCLD=17 SIGCONT=18 SIGSTOP=19 SIGTSTP=20 SIGTTIN=21
    SIGTTOU=22 SIGURG=23 SIGXCPU=24 SIGXFSZ=25 SIGVTALRM=26 SIGPROF=27 SIGWINCH=28
    SIGIO=29 SIGPOLL=29 SIGPWR=30 SIGSYS=31 SIGUNUSED=31 SIGRTMIN=34 SIGRTMAX=64
""")
# SIGCLD is glibc's (and Python's) old name; SIGUNUSED is still in the kernel headers.
SIGNAL_ALIASES = frozenset({"SIGIOT", "SIGCLD", "SIGPOLL", "SIGUNUSED"})

FAMILIES: dict[str, int] = _pairs("""
    AF_UNSPEC=0 AF_UNIX=1 AF_LOCAL=1 AF_INET=2 AF_AX25=3 AF_IPX=4 AF_APPLETALK=5
    AF_NETROM=6 AF_BRIDGE=7 AF_ATMPVC=8 AF_X25=9 AF_INET6=10 AF_ROSE=11 AF_DECnet=12
    AF_NETBEUI=13 AF_SECURITY=14 AF_KEY=15 AF_NETLINK=16 AF_ROUTE=16 AF_PACKET=17
    AF_ASH=18 AF_ECONET=19 AF_ATMSVC=20 AF_RDS=21 AF_SNA=22 AF_IRDA=23 AF_PPPOX=24
    AF_WANPIPE=25 AF_LLC=26 AF_IB=27 AF_MPLS=28 AF_CAN=29 AF_TIPC=30 AF_BLUETOOTH=31
    AF_IUCV=32 AF_RXRPC=33 AF_ISDN=34 AF_PHONET=35 AF_IEEE802154=36 AF_CAIF=37 AF_ALG=38
    AF_NFC=39 AF_VSOCK=40 AF_KCM=41 AF_QIPCRTR=42 AF_SMC=43 AF_XDP=44 AF_MCTP=45
""")
FAMILY_ALIASES = frozenset({"AF_LOCAL", "AF_ROUTE"})

# The flags open_flag_names prints after the access mode, in this order whatever their
# values on an architecture: asm-generic/fcntl.h's (ascending x86_64 values). Not here,
# so never printed: O_NDELAY, O_FSYNC and O_RSYNC, other names of O_NONBLOCK and O_SYNC.
OPEN_FLAG_ORDER = (
    "O_CREAT",
    "O_EXCL",
    "O_NOCTTY",
    "O_TRUNC",
    "O_APPEND",
    "O_NONBLOCK",
    "O_DSYNC",
    "O_ASYNC",
    "O_DIRECT",
    "O_LARGEFILE",
    "O_DIRECTORY",
    "O_NOFOLLOW",
    "O_NOATIME",
    "O_CLOEXEC",
    "O_SYNC",
    "O_PATH",
    "O_TMPFILE",
)


def open_flags(*, directory: int, nofollow: int, direct: int, largefile: int) -> dict[str, int]:
    """The O_* flags of asm-generic/fcntl.h with an architecture's four values for
    O_DIRECTORY, O_NOFOLLOW, O_DIRECT and O_LARGEFILE, plus glibc's names for the same
    bits (O_ASYNC for the kernel's FASYNC, O_FSYNC and O_RSYNC for O_SYNC).

    Values are the kernel's, as a trace records them. O_LARGEFILE is the bit the kernel
    sets; glibc defines O_LARGEFILE as 0 on 64-bit ABIs (so does Python's os), since
    there every open is large-file."""
    dsync, sync_bit, tmpfile_bit = 0o10000, 0o4000000, 0o20000000
    flags = {
        "O_RDONLY": 0o0,
        "O_WRONLY": 0o1,
        "O_RDWR": 0o2,
        "O_ACCMODE": 0o3,
        "O_CREAT": 0o100,
        "O_EXCL": 0o200,
        "O_NOCTTY": 0o400,
        "O_TRUNC": 0o1000,
        "O_APPEND": 0o2000,
        "O_NONBLOCK": 0o4000,
        "O_NDELAY": 0o4000,
        "O_DSYNC": dsync,
        "O_ASYNC": 0o20000,
        "O_DIRECT": direct,
        "O_LARGEFILE": largefile,
        "O_DIRECTORY": directory,
        "O_NOFOLLOW": nofollow,
        "O_NOATIME": 0o1000000,
        "O_CLOEXEC": 0o2000000,
        # The kernel's O_SYNC is __O_SYNC|O_DSYNC, so that old kernels, which know only
        # O_DSYNC's bit (their O_SYNC), still sync.
        "O_SYNC": sync_bit | dsync,
        "O_FSYNC": sync_bit | dsync,
        "O_RSYNC": sync_bit | dsync,
        "O_PATH": 0o10000000,
        # O_DIRECTORY is part of O_TMPFILE so that kernels without O_TMPFILE fail the
        # open (a file is not a directory) instead of creating a named file.
        "O_TMPFILE": tmpfile_bit | directory,
    }
    return flags
