"""The workload of tests/integration/test_share.py: plants known secret strings wherever
a trace records something identifying, for `bpfcap share` to remove.

usage: secrets.py BASE IP ARG DIR FILE TOOL UID

* BASE/DIR/FILE is created and opened three times (twice by absolute path, once
  relative from BASE/DIR: a working-directory row naming DIR), by a copy of /bin/sh
  named TOOL (its command name), once with the argument `--token=ARG`;
* a TCP connection to IP (an address of the loopback device in this network namespace,
  set up by the test) is opened and closed;
* a child process running as user id UID opens BASE/DIR/FILE once more.
The secrets are this script's arguments too: the exec row and the recorder's command
line carry them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys


def main() -> None:
    base, ip, arg, dirname, filename, tool, uid = sys.argv[1:8]
    d = os.path.join(base, dirname)
    os.makedirs(d, exist_ok=True)
    os.chmod(base, 0o755)
    os.chmod(d, 0o755)
    path = os.path.join(d, filename)
    with open(path, "w") as f:
        f.write("planted\n")
    os.chmod(path, 0o644)
    exe = os.path.join(d, tool)
    shutil.copy("/bin/sh", exe)
    # The shell opens its operands ($0 is the token argument).
    subprocess.run([exe, "-c", 'exec 3<"$1" 4<"$2"', f"--token={arg}", path, path], check=True)
    subprocess.run([exe, "-c", 'exec 3<"$1"', "relative", "./" + filename], check=True, cwd=d)

    srv = socket.socket(socket.AF_INET)
    srv.bind((ip, 0))
    srv.listen(1)
    cli = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()
    cli.sendall(b"x")
    conn.recv(1)
    cli.close()
    conn.close()
    srv.close()

    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(int(uid))
            os.setuid(int(uid))
            with open(path, "rb"):
                pass
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    print("done", flush=True)


if __name__ == "__main__":
    main()
