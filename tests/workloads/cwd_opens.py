"""The workload of tests/integration/test_accept_cwd.py: opens of relative paths from
known working directories (nested; with a non-UTF-8 name; the root of a tmpfs mounted at
BASE/mnt, which opensnoop -F's walk crosses to the directory it is mounted on; below
it), `..`, a chdir there and back, a second thread, and absolute paths.

usage: cwd_opens.py BASE  (BASE/mnt a mount point, prepared by the test)
Prints "open CWD PATH" (CWD and PATH as hex of their bytes) per open, in order."""

from __future__ import annotations

import os
import sys
import threading

MARK = b"bpfcap-cwd-"


def opened(name: bytes) -> None:
    fd = os.open(name, os.O_RDONLY | os.O_CREAT, 0o600)
    os.close(fd)
    print(f"open {os.getcwdb().hex()} {name.hex()}", flush=True)


def main() -> None:
    base = os.fsencode(sys.argv[1])
    nested = os.path.join(base, b"a", b"b")
    odd = os.path.join(base, b"odd-\xff\xfe-dir")
    sub = os.path.join(base, b"mnt", b"sub")
    for d in (nested, odd, sub):
        os.makedirs(d, exist_ok=True)
    os.chdir(nested)
    for i in range(4):
        opened(MARK + b"%d" % i)
    opened(b"../" + MARK + b"up")
    os.chdir(odd)
    for i in range(3):
        opened(MARK + b"odd-%d" % i)
    os.chdir(os.path.join(base, b"mnt"))  # the tmpfs root itself
    opened(MARK + b"mnt-root")
    os.chdir(b"sub")
    opened(b"./" + MARK + b"sub")
    os.chdir(nested)  # back: the walk is cached per directory, not once per thread
    opened(MARK + b"back")
    t = threading.Thread(target=opened, args=(MARK + b"thread",))
    t.start()
    t.join()
    opened(os.path.join(base, MARK + b"absolute"))


if __name__ == "__main__":
    main()
