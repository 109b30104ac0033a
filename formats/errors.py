"""Typed errors. The CLI turns each into `error: <what>; <how to fix>` and a non-zero exit."""


class BpfcapError(Exception):
    """A problem the user can fix; `hint` says how."""

    exit_code = 1

    def __init__(self, what: str, hint: str = ""):
        super().__init__(what)
        self.what = what
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.what}; {self.hint}" if self.hint else self.what


class TraceFormatError(BpfcapError):
    """The input is not a readable bpfcap trace (not Parquet, truncated, wrong columns)."""


class IncompatibleTraceError(BpfcapError):
    """The trace was written in a format version this bpfcap cannot read."""


class CaptureUnavailable(BpfcapError):
    """Recording cannot work on this host (privileges, BCC, headers, tracefs, probes)."""


class UsageError(BpfcapError):
    """Bad arguments."""

    exit_code = 2


class OutputError(BpfcapError):
    """The output cannot be written (exists, permissions, disk full)."""


class EventsLost(BpfcapError):
    """--strict: the recording lost events within the window a report covers."""

    exit_code = 3
