"""The workload of tests/integration/test_accept_cwd.py: a server process (comm
acc-server) accepts connections from a client process (comm acc-client): ACCEPTS with
accept(fd, NULL, NULL) (the accept system call, through libc, no address asked for) then
ACCEPT4S with socket.accept() (accept4 with an address buffer), over IPv4 and, with
--ipv6, over IPv6 too.

Prints "server PID FAMILY PORT" per listening socket and "conn FAMILY CLIENT_PORT" per
connection, in the order the server accepts them."""

from __future__ import annotations

import ctypes
import os
import socket
import sys

ACCEPTS = 3
ACCEPT4S = 4
_libc = ctypes.CDLL(None, use_errno=True)


def set_comm(name: bytes) -> None:
    _libc.prctl(15, ctypes.c_char_p(name), 0, 0, 0)  # PR_SET_NAME


def serve(family: int, host: str) -> None:
    srv = socket.socket(family)
    srv.bind((host, 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    print(f"server {os.getpid()} {family} {port}", flush=True)
    child = os.fork()
    if child == 0:
        set_comm(b"acc-client")
        for _ in range(ACCEPTS + ACCEPT4S):
            c = socket.create_connection((host, port))
            print(f"conn {family} {c.getsockname()[1]}", flush=True)
            c.recv(1)  # the server has accepted this one: the next one comes after it
            c.close()
        os._exit(0)
    for _ in range(ACCEPTS):
        fd = _libc.accept(srv.fileno(), None, None)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "accept")
        os.write(fd, b"x")
        os.close(fd)
    for _ in range(ACCEPT4S):
        conn, _ = srv.accept()
        conn.send(b"x")
        conn.close()
    _, status = os.waitpid(child, 0)
    assert status == 0
    srv.close()


def main() -> None:
    set_comm(b"acc-server")
    serve(socket.AF_INET, "127.0.0.1")
    if "--ipv6" in sys.argv:
        serve(socket.AF_INET6, "::1")


if __name__ == "__main__":
    main()
