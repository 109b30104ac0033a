"""The recorder's segment directory: where `bpfcap record` writes closed segments while it
runs (`<output>.partial/`, or the output itself with --rotate), and its policy: segment
numbering and names, the writer thread, rotation (joining segments, keeping the newest),
sizes for --max-size and --rotate SIZE, finishing, aborting and removing.

What such a directory is, and how it reads as one trace (segment 0 the header, a joined
file winning over its segments): formats/trace.py. How each file is written (encoded,
joined, renamed into place): formats/writer.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bpfcap.formats.errors import OutputError
from bpfcap.formats.trace import HEADER, KEY_META, row_group_kinds, segment_span, trace_files
from bpfcap.formats.writer import merge_files, write_table_file


def segment_name(first: int, last: int | None = None) -> str:
    """seg-000001.parquet: segment 1; seg-000001-000060.parquet: segments 1 to 60 joined
    (formats/trace.py segment_span() reads these names back)."""
    return f"seg-{first:06d}.parquet" if last is None else f"seg-{first:06d}-{last:06d}.parquet"


def _joined(f: Path) -> bool:
    """A file of segments joined by rotate(), not a single segment."""
    span = segment_span(f.name)
    return span is not None and span[2]


def _earliest_ts(files: list[Path], default: int) -> int | None:
    """The smallest ts_ns of the rows of `files`, from their row groups' statistics;
    `default` if they have no rows, None if a row group's statistics cannot say."""
    groups = list(row_group_kinds(files, times=True))
    if any(g.ts is None for g in groups):
        return None
    return min((g.ts[0] for g in groups if g.ts is not None), default=default)


class SegmentDir:
    """The directory a recorder writes closed segments into, one per period. Rows of a
    period are kept in memory and written at its end, one row group per kind.

    It is created with its header, segment 0 (`header`: the metadata known at start),
    written synchronously before the constructor returns: whenever the directory holds
    a file, it is a readable trace."""

    def __init__(self, path: Path, header: dict[str, Any]):
        self.path = path
        self.index = 0
        self._sizes = (0, 0)  # bytes in single segments, in all files (see _job)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bpfcap-writer")
        self._writing: Future | None = None
        # end_ns of each segment closed since the last rotation, and the last segment
        # rotated (0: none yet): where the next rotated file's window starts.
        self._ends: dict[int, int] = {}
        self._rotated = 0
        try:
            path.mkdir(mode=0o700)
        except FileExistsError as e:
            raise OutputError(
                f"{path} exists (left by a recorder that did not stop cleanly?)",
                "read it with `bpfcap info`, then move it away",
            ) from e
        except OSError as e:
            raise OutputError(
                f"cannot create {path}: {e.strerror}", "choose another -o path"
            ) from e
        try:
            write_table_file(path / HEADER, [], dict(header, segment=0))
        except OSError as e:
            self.remove()  # nothing recorded yet: leave nothing behind
            raise OutputError(
                f"cannot write {path / HEADER}: {e.strerror}",
                "free space or choose another -o path",
            ) from e

    @property
    def busy(self) -> bool:
        """A segment is being written."""
        return self._writing is not None and not self._writing.done()

    def close_segment(
        self, meta: dict[str, Any], produce: Callable[[], list[pa.Table]] | None = None
    ) -> None:
        """Write the next segment and rename it into place, in a writer thread: the caller
        goes back to draining the ring buffer while Parquet encodes (pyarrow releases the
        GIL). Its rows are the tables (one kind each) `produce` returns, called in that
        thread (the recorder decodes its raw records there); without it the segment is
        empty (fresh counters only). At most one segment waits; an error of an earlier
        write is raised here or by finish()."""
        self.index += 1
        path = self.path / segment_name(self.index)
        meta = dict(meta, segment=self.index)
        if isinstance(meta.get("end_ns"), int):
            self._ends[self.index] = meta["end_ns"]
        if self._writing is not None:
            self._writing.result()  # at most one segment in flight; raises its error
        self._writing = self._pool.submit(self._job, self._write_segment, path, meta, produce)

    @staticmethod
    def _write_segment(
        path: Path, meta: dict, produce: Callable[[], list[pa.Table]] | None
    ) -> None:
        write_table_file(path, produce() if produce is not None else [], meta)

    def check(self) -> None:
        """Raise the error of a write that has failed (a full disk), without waiting for
        one in progress: the recorder asks at every drain, so that it stops when a write
        fails, not when the next segment closes (seconds later on a quiet host)."""
        w = self._writing
        if w is not None and w.done() and w.exception() is not None:
            w.result()

    def finish(self) -> None:
        """Wait for the segment being written; raise its error if it failed."""
        if self._writing is not None:
            w, self._writing = self._writing, None
            w.result()
        self._pool.shutdown()

    def abort(self) -> None:
        try:
            self.finish()
        except Exception:
            pass

    def files(self) -> list[Path]:
        return trace_files(self.path)

    def data_files(self) -> list[Path]:
        """The closed segments, without the header (which holds no rows)."""
        return [f for f in self.files() if f.name != HEADER]

    def rotate(self, keep: int | None) -> None:
        """Join the single segments written so far (the one being written included, as
        the writer thread runs jobs in order) into one file, seg-A-B.parquet; then keep
        only the newest `keep` joined files (a flight recorder)."""
        if self._writing is not None:
            self._writing.result()  # raises an earlier write's error here
        after = self._ends.get(self._rotated) if self._rotated else None
        self._rotated = self.index
        self._ends = {i: e for i, e in self._ends.items() if i >= self.index}
        self._writing = self._pool.submit(
            self._job, self._rotate, self.path, self.index, keep, after
        )

    @staticmethod
    def _rotate(path: Path, upto: int, keep: int | None, after: int | None = None) -> None:
        """See rotate(). `after`: the end of the segment before the first joined (None
        for the recording's first file). A joined file's metadata is the recording's as
        of its last segment (counters from the recording's start), with `first_segment`
        and, but for the first file, start_ns the start of its own window: just after
        `after`, or its earliest row if that is earlier (a row read in a later drain
        than the one its event came before)."""
        singles = []
        for f in trace_files(path):
            span = segment_span(f.name)
            if span is not None and not span[2] and span[0] <= upto:
                singles.append((span[0], f))
        if singles:
            first, last = singles[0][0], singles[-1][0]
            meta = json.loads(pq.read_metadata(singles[-1][1]).metadata[KEY_META])
            meta["first_segment"] = first  # `segment` is the last: merge needs both
            if after is not None:
                earliest = _earliest_ts([f for _, f in singles], after + 1)
                if earliest is not None:  # else it keeps the recording's start
                    meta["start_ns"] = min(after + 1, earliest)
            out = path / segment_name(first, last)
            merge_files([f for _, f in singles], out, meta)
            for _, f in singles:
                f.unlink()
        if keep is not None:
            joined = [f for f in trace_files(path) if _joined(f)]
            for f in joined[: max(0, len(joined) - keep)]:
                f.unlink()

    def _job(self, work, *args) -> None:
        """Run a writer-thread job, then take the directory's sizes once: the recorder
        asks for them at every drain (--max-size, --rotate SIZE), and they change only
        here."""
        try:
            work(*args)
        finally:
            files = self.data_files()
            single = [f for f in files if not _joined(f)]
            self._sizes = (
                sum(f.stat().st_size for f in single),
                sum(f.stat().st_size for f in files),
            )

    def single_bytes(self) -> int:
        """Bytes in the closed segments not yet joined by rotate()."""
        return self._sizes[0]

    def closed_bytes(self) -> int:
        """Bytes in the closed segments (what the merged trace will about hold)."""
        return self._sizes[1]

    def remove(self) -> None:
        for p in self.path.iterdir():
            p.unlink()
        self.path.rmdir()
