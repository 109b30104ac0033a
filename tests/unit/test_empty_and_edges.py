"""Every report on a trace without rows of its kind, and histogram edge buckets (0, 1,
2**32: BCC's wide layout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfcap.cli.main import main
from bpfcap.cli.render import log2_hist_text
from bpfcap.tests.builders import START_NS, US, S, fork_row, header_only, runq_row, write_trace

# What each report prints with nothing to show: its header, or only its banner (BCC's
# histogram tools print no histogram when every slot is empty).
EMPTY = {
    ("opensnoop",): "PID    COMM               FD ERR PATH\n",
    ("execsnoop",): "COMM             PID     PPID    RET ARGS\n",
    ("biosnoop",): "TIME(s)     COMM           PID     DISK      T SECTOR     BYTES  LAT(ms)\n",
    ("biolatency",): "Tracing block device I/O... Hit Ctrl-C to end.\n\n",
    ("runqlat",): "Tracing run queue latency... Hit Ctrl-C to end.\n\n",
    ("syscount",): "Tracing syscalls, printing top 10... Ctrl+C to quit.\n[15:09:20]\n"
    "SYSCALL                   COUNT\n\nDetaching...\n",
    ("killsnoop",): "TIME      PID    COMM             SIG  TPID   RESULT\n",
    ("tcplife",): "PID   COMM       LADDR           LPORT RADDR           RPORT TX_KB RX_KB MS\n",
    ("tcpconnect",): "PID     COMM         IP SADDR            DADDR            DPORT \n",
    ("tcpaccept",): "PID     COMM         IP RADDR            RPORT LADDR            LPORT\n",
    ("tcpstates",): "SKADDR           C-PID C-COMM     LADDR           LPORT RADDR           "
    "RPORT OLDSTATE    -> NEWSTATE    MS\n",
    ("count", "--by", "comm", "-e", "open"): "",
    ("hist", "--field", "lat_ns", "-e", "bio"): "",
}


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Only a fork row: every report above finds no rows of its own kind.
    return write_trace(tmp_path_factory.mktemp("empty") / "t.parquet", [fork_row()])


@pytest.mark.parametrize("argv", list(EMPTY), ids=lambda a: a[0])
def test_empty_input(trace, capsysbinary, argv) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["report", argv[0], str(trace), *argv[1:]])
    out, err = capsysbinary.readouterr()
    assert (exit_.value.code, err.decode()) == (0, "")
    assert out.decode() == EMPTY[argv]


@pytest.mark.parametrize("argv", list(EMPTY), ids=lambda a: a[0])
def test_every_report_on_a_directory_holding_only_its_header(tmp_path, capsysbinary, argv):
    """Empty output (as on a trace without the kind), exit 0, and on stderr that the
    recording did not stop cleanly and why there is nothing."""
    d = header_only(tmp_path / "t.parquet.partial")
    with pytest.raises(SystemExit) as exit_:
        main(["report", argv[0], str(tmp_path / "t.parquet"), *argv[1:]])  # finds .partial
    out, err = capsysbinary.readouterr()
    assert exit_.value.code == 0, err
    # The recording's end is unknown: syscount's one window ends at its start.
    assert out.decode() == EMPTY[argv].replace("[15:09:20]", "[15:08:20]")
    assert err.decode() == (
        f"bpfcap: {d}: recording did not stop cleanly; showing what reached disk\n"
        f"bpfcap: {d}: the recorder stopped (killed, or the disk full) before its first "
        "segment closed: no events, only the metadata written when it started\n"
    )


def test_bcc_wide_histogram_exactly() -> None:
    """bcc-formats.md 2.2: slot 2 = 3 and slot 33 = 7 switch to the wide layout."""
    vals = [0] * 65
    vals[2], vals[33] = 3, 7
    lines = log2_hist_text(vals, "usecs").splitlines()
    assert lines[:3] == [
        "               usecs                         : count     distribution",
        "                   0 -> 1                    : 0        |                    |",
        "                   2 -> 3                    : 3        |********            |",
    ]
    assert lines[-1] == (
        "          4294967296 -> 8589934591           : 7        |********************|"
    )
    assert len(lines) == 34


def test_runqlat_edge_values_0_1_and_2_to_the_32(tmp_path: Path, capsysbinary) -> None:
    rows = [runq_row(lat_ns=0), runq_row(lat_ns=US), runq_row(lat_ns=(1 << 32) * US)]
    # The long wait ends 4295 s in: the recording lasts longer.
    t = write_trace(tmp_path / "e.parquet", rows, end_ns=START_NS + 5000 * S)
    with pytest.raises(SystemExit):
        main(["report", "runqlat", str(t)])
    lines = capsysbinary.readouterr()[0].decode().splitlines()
    # 0 and 1 us share slot 1 ("0 -> 1"); 2**32 us is slot 33: the wide layout.
    assert lines[2] == "               usecs                         : count     distribution"
    assert lines[3] == "                   0 -> 1                    : 2        |" + "*" * 20 + "|"
    assert (
        lines[-1]
        == "          4294967296 -> 8589934591           : 1        |" + "*" * 10 + " " * 10 + "|"
    )
