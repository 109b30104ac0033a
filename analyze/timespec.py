"""--since and --until: the time syntax every report takes, as monotonic-ns bounds.

Each value names one instant of the recording; a report keeps the events in [since,
until). The forms, as `perf script --time` users expect them, plus wall-clock ones:

* seconds from the start: `10`, `10.5`, `+10`, or with a unit: `250us`, `1500ms`,
  `10s`, `2m` (minutes), `1h`; also `ns`, `µs`, `min`;
* before the end: `-10`, `-10s`, `-1.5m`: that long before the recording's end (the
  one syntax for the end: `--since -10s` is the last ten seconds);
* a share of the recording: `25%` (start + 25% of its duration), `0%` to `100%`;
* a time of day on the recording host's clock: `14:03`, `14:03:07`, `14:03:07.250`:
  the first such time at or after the recording's start, compared at the precision
  written (`14:03` takes in a recording started at 14:03:30; a recording that
  crosses midnight finds `00:10` on its second day);
* a date and time (ISO 8601): `2026-11-30T14:03:07Z`, `2026-11-30T14:03:07.5+01:00`,
  `2026-11-30 14:03:07` and `2026-11-30` (no zone: the recording host's local time).

Wall-clock times map to monotonic ones with the trace's clock mapping: UTC = monotonic
+ clock.realtime_minus_monotonic_ns, the host's local time = UTC + clock.utc_offset_s
(the offset at the start of recording: a DST change during it is not followed, as in
every report's HH:MM:SS). Fractions are exact to the nanosecond (no float rounding).

A window wholly or partly outside the recording is no error (a report of it is empty
or shorter); since at or after until is one. Pure: no clock is read, nothing printed.
"""

from __future__ import annotations

import datetime as dt
import re
from fractions import Fraction
from typing import Any

from bpfcap.formats.errors import UsageError

NS_PER_S = 1_000_000_000
DAY_NS = 86_400 * NS_PER_S
# Bounds as any ts_ns column holds them (analyze/common.MAX_NS): results are clamped to
# [0, MAX_NS] so that they compare with uint64 and int64 columns alike.
MAX_NS = (1 << 62) - 1

ACCEPTED = (
    "give seconds from the start (10, 1.5, 250us, 1500ms, 2m), -DURATION before the end "
    "(-10s), a percentage of the recording (25%), a time of day (14:03:07) or an ISO 8601 "
    "date and time (2026-11-30T14:03:07Z, 2026-11-30 14:03:07, 2026-11-30)"
)

UNITS_NS = {
    "": NS_PER_S,
    "s": NS_PER_S,
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "m": 60 * NS_PER_S,
    "min": 60 * NS_PER_S,
    "h": 3_600 * NS_PER_S,
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_OFFSET = re.compile(rf"([+-]?)\s*({_NUMBER})\s*(ns|us|µs|ms|s|min|m|h)?")
_PERCENT = re.compile(rf"({_NUMBER})\s*%")
_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?")
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?)?"
)
_EPOCH = dt.date(1970, 1, 1).toordinal()


def window(
    since: str | None,
    until: str | None,
    *,
    start_ns: int,
    end_ns: int,
    clock: dict[str, Any],
) -> tuple[int | None, int | None]:
    """--since and --until as monotonic-ns bounds [since_ns, until_ns) of the recording
    that ran from `start_ns` to `end_ns` (CLOCK_MONOTONIC) with the clock mapping
    `clock` (the trace's metadata). None where not given (open). Raises UsageError for
    a value it cannot read, and when since is at or after until."""
    lo = None if since is None else parse(since, "--since", start_ns, end_ns, clock)
    hi = None if until is None else parse(until, "--until", start_ns, end_ns, clock)
    if lo is not None and hi is not None and lo >= hi:
        raise UsageError(
            f"--since {since} is not before --until {until} "
            f"({_seconds(lo - start_ns)} s and {_seconds(hi - start_ns)} s into the recording)",
            "give a since earlier than the until",
        )
    return _clamp(lo), _clamp(hi)


def parse(text: str, flag: str, start_ns: int, end_ns: int, clock: dict[str, Any]) -> int:
    """One --since/--until value (`flag` names it in errors) as a monotonic time in ns,
    unclamped (window() clamps)."""
    s = text.strip()
    m = _OFFSET.fullmatch(s)
    if m:
        sign, number, unit = m.groups()
        ns = _ns(Fraction(number) * UNITS_NS[unit or ""])
        return end_ns - ns if sign == "-" else start_ns + ns
    m = _PERCENT.fullmatch(s)
    if m:
        share = Fraction(m.group(1))
        if share > 100:
            raise UsageError(f"{flag} {text}: a percentage is 0% to 100%", ACCEPTED)
        return start_ns + _ns(share * (end_ns - start_ns) / 100)
    m = _TIME_OF_DAY.fullmatch(s)
    if m:
        return _time_of_day(text, flag, m, start_ns, clock)
    m = _ISO.fullmatch(s)
    if m:
        return _iso(text, flag, m, clock)
    raise UsageError(f"{flag} {text}: not a time I can read", ACCEPTED)


def describe(
    since_ns: int | None, until_ns: int | None, start_ns: int, clock: dict[str, Any]
) -> str:
    """The window in words for a report's footer: seconds from the start of the recording
    and the host's local time, e.g. `12.000 s to 20.500 s (14:03:07 to 14:03:15)`; an
    open end reads `the start` or `the end`; a window crossing midnight dates its ends."""
    if since_ns is None and until_ns is None:
        return "the whole recording"
    ends = [t for t in (since_ns, until_ns) if t is not None]
    days = {_local(t, clock).date() for t in ends}
    fmt = "%Y-%m-%d %H:%M:%S" if len(days) > 1 else "%H:%M:%S"

    def rel(t: int | None, open_: str) -> str:
        return open_ if t is None else f"{_seconds(t - start_ns)} s"

    def wall(t: int | None, open_: str) -> str:
        return open_ if t is None else _local(t, clock).strftime(fmt)

    return (
        f"{rel(since_ns, 'the start')} to {rel(until_ns, 'the end')} "
        f"({wall(since_ns, 'the start')} to {wall(until_ns, 'the end')})"
    )


# -- helpers ------------------------------------------------------------------------------


def _ns(x: Fraction) -> int:
    """A Fraction of ns rounded to the nearest ns (halves away from zero)."""
    return int(x + Fraction(1, 2)) if x >= 0 else -int(-x + Fraction(1, 2))


def _clamp(t: int | None) -> int | None:
    return None if t is None else min(max(t, 0), MAX_NS)


def _seconds(ns: int) -> str:
    """ns as seconds with 3 decimals, rounded exactly (no float)."""
    ms = _ns(Fraction(ns, 1_000_000))
    sign = "-" if ms < 0 else ""
    return f"{sign}{abs(ms) // 1000}.{abs(ms) % 1000:03d}"


def _offsets(clock: dict[str, Any]) -> tuple[int, int]:
    """(realtime - monotonic, local - UTC) in ns."""
    return (
        int(clock.get("realtime_minus_monotonic_ns", 0)),
        int(clock.get("utc_offset_s", 0)) * NS_PER_S,
    )


def _local(mono_ns: int, clock: dict[str, Any]) -> dt.datetime:
    """The recording host's local wall-clock time of a monotonic time (to the second)."""
    realtime, utc_offset = _offsets(clock)
    local_s = (mono_ns + realtime + utc_offset) // NS_PER_S
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=local_s)


def _fraction_ns(digits: str | None) -> int:
    return int((digits or "").ljust(9, "0")) if digits else 0


def _time_of_day(text: str, flag: str, m: re.Match, start_ns: int, clock: dict[str, Any]) -> int:
    hh, mm, ss, frac = m.groups()
    h, mi, se = int(hh), int(mm), int(ss or 0)
    if h > 23 or mi > 59 or se > 59:
        raise UsageError(f"{flag} {text}: not a time of day (00:00 to 23:59:59)", ACCEPTED)
    tod = (h * 3600 + mi * 60 + se) * NS_PER_S + _fraction_ns(frac)
    # Precision written: a minute, a second, or 10^-digits of a second.
    unit = 60 * NS_PER_S if ss is None else NS_PER_S // 10 ** len(frac or "")
    realtime, utc_offset = _offsets(clock)
    start_local = start_ns + realtime + utc_offset
    day = start_local // DAY_NS * DAY_NS
    at = day + tod
    if at < start_local // unit * unit:
        at += DAY_NS  # already past on the first day: the next one (a recording over midnight)
    return at - utc_offset - realtime


def _iso(text: str, flag: str, m: re.Match, clock: dict[str, Any]) -> int:
    y, mo, d, hh, mi, ss, frac, z, sign, oh, om = m.groups()
    try:
        date = dt.date(int(y), int(mo), int(d))
    except ValueError as e:
        raise UsageError(f"{flag} {text}: not a date ({e})", ACCEPTED) from None
    h, mn, se = int(hh or 0), int(mi or 0), int(ss or 0)
    if h > 23 or mn > 59 or se > 59:
        raise UsageError(f"{flag} {text}: not a time of day (00:00 to 23:59:59)", ACCEPTED)
    realtime, utc_offset = _offsets(clock)
    if z:
        zone_ns = 0
    elif sign:
        oh_, om_ = int(oh), int(om or 0)
        if oh_ > 23 or om_ > 59:
            raise UsageError(f"{flag} {text}: not a UTC offset (up to ±23:59)", ACCEPTED)
        zone_ns = (1 if sign == "+" else -1) * (oh_ * 3600 + om_ * 60) * NS_PER_S
    else:
        zone_ns = utc_offset  # no zone: the recording host's local time
    seconds = (date.toordinal() - _EPOCH) * 86_400 + h * 3600 + mn * 60 + se
    utc = seconds * NS_PER_S + _fraction_ns(frac) - zone_ns
    return utc - realtime
