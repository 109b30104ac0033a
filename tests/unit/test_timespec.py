"""--since/--until (analyze/timespec.py): every form, a recording over midnight, zones,
bad values in one line, and exact round trips (hypothesis)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfcap.analyze.timespec import MAX_NS, describe, parse, window
from bpfcap.formats.errors import UsageError

S = 1_000_000_000
MS = 1_000_000
START = 5_000 * S  # monotonic start
END = START + 100 * S
# Monotonic START is 2026-11-30 13:03:07 UTC; the host is at UTC+1: 14:03:07 local.
START_UTC_S = 1_796_043_787
CLOCK = {"realtime_minus_monotonic_ns": START_UTC_S * S - START, "utc_offset_s": 3600}


def at(since: str, *, start: int = START, end: int = END, clock: dict = CLOCK) -> int | None:
    return window(since, None, start_ns=start, end_ns=end, clock=clock)[0]


def test_the_clock_of_these_tests():
    assert describe(START, None, START, CLOCK) == "0.000 s to the end (14:03:07 to the end)"


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("10", 10),
        ("10.5", Decimal("10.5")),
        ("+10", 10),
        ("0", 0),
        (".25", Decimal("0.25")),
        ("10.", 10),
        ("10s", 10),
        ("10 s", 10),
        (" 10 ", 10),
        ("1500ms", Decimal("1.5")),
        ("250us", Decimal("0.00025")),
        ("250µs", Decimal("0.00025")),
        ("7ns", Decimal("0.000000007")),
        ("2m", 120),
        ("1.5min", 90),
        ("1h", 3600),
        ("0.1", Decimal("0.1")),  # exact: no float in between
        ("0.0000000015", Decimal("0.000000002")),  # to the nearest ns
    ],
)
def test_seconds_from_the_start(text, seconds):
    assert at(text) == START + int(Decimal(seconds) * S)


@pytest.mark.parametrize(
    "text, before_end",
    [("-10", 10 * S), ("-10s", 10 * S), ("-1500ms", 1500 * MS), ("-1m", 60 * S), ("-0", 0)],
)
def test_a_minus_counts_back_from_the_end(text, before_end):
    assert at(text) == END - before_end


@pytest.mark.parametrize(
    "text, share", [("0%", 0), ("25%", 25), ("12.5%", Decimal("12.5")), ("100%", 100)]
)
def test_percentages_of_the_recording(text, share):
    assert at(text) == START + int((END - START) * Decimal(share) / 100)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("14:03:07", 0),
        ("14:03:17", 10),
        ("14:03:17.250", Decimal("10.25")),
        ("14:03:17,5", Decimal("10.5")),
        ("14:03:17.000000001", Decimal("10.000000001")),
        ("14:04", 53),
        ("15:00", 3600 - 187),
        # At the precision written, the start's own minute or second is the first day's:
        ("14:03", -7),
        ("14:03:07.0", 0),
        # Before the start's time of day: the next day.
        ("14:03:06", 86_400 - 1),
        ("9:00", 86_400 - (5 * 3600 + 3 * 60 + 7)),
        ("00:00", 86_400 - (14 * 3600 + 3 * 60 + 7)),
    ],
)
def test_a_time_of_day_is_the_first_at_or_after_the_start(text, seconds):
    assert parse(text, "--since", START, END, CLOCK) == START + int(Decimal(seconds) * S)


def test_a_recording_across_midnight():
    """Started at 23:59:50 local (22:59:50 UTC), for 60 s: 00:00:10 is on its second day,
    23:59:55 on its first."""
    clock = {
        "realtime_minus_monotonic_ns": (START_UTC_S + 35_803) * S - START,
        "utc_offset_s": 3600,
    }
    assert describe(START, None, START, clock).endswith("(23:59:50 to the end)")
    since, until = window(
        "23:59:55", "00:00:10", start_ns=START, end_ns=START + 60 * S, clock=clock
    )
    assert (since - START, until - START) == (5 * S, 20 * S)
    assert describe(since, until, START, clock) == (
        "5.000 s to 20.000 s (2026-11-30 23:59:55 to 2026-12-01 00:00:10)"
    )
    assert at("2026-12-01", clock=clock) == START + 10 * S  # local midnight
    assert at("2026-11-30T23:00:00Z", clock=clock) == START + 10 * S


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("2026-11-30T13:03:17Z", 10),
        ("2026-11-30t13:03:17z", 10),
        ("2026-11-30T14:03:17.5+01:00", Decimal("10.5")),
        ("2026-11-30T14:03:17.5+0100", Decimal("10.5")),
        ("2026-11-30T14:03:17.5+01", Decimal("10.5")),
        ("2026-11-30T08:33:17-04:30", 10),
        ("2026-11-30T13:03:17.123456789Z", Decimal("10.123456789")),
        ("2026-11-30 14:03:17", 10),  # no zone: the host's local time (UTC+1)
        ("2026-11-30T14:03:17", 10),
        ("2026-11-30 14:04", 53),
        ("2026-12-01", 86_400 - (14 * 3600 + 3 * 60 + 7)),  # local midnight
    ],
)
def test_iso_dates_and_times(text, seconds):
    assert at(text) == START + int(Decimal(seconds) * S)


def test_the_host_offset_applies_to_local_times_only():
    utc_host = dict(CLOCK, utc_offset_s=0)
    assert at("2026-11-30 13:03:17", clock=utc_host) == START + 10 * S
    assert at("13:03:17", clock=utc_host) == START + 10 * S
    assert at("2026-11-30T13:03:17Z", clock=utc_host) == at("2026-11-30T13:03:17Z")
    west = dict(CLOCK, utc_offset_s=-8 * 3600)  # 05:03:07 local at the start
    assert at("05:03:17", clock=west) == START + 10 * S
    assert at("2026-11-30 05:03:17", clock=west) == START + 10 * S


def test_a_clock_without_offsets_is_utc_from_the_epoch():
    assert at("1970-01-01T00:00:10Z", start=0, end=60 * S, clock={}) == 10 * S
    assert at("00:00:10", start=0, end=60 * S, clock={}) == 10 * S


def test_until_and_open_ends():
    assert window(None, None, start_ns=START, end_ns=END, clock=CLOCK) == (None, None)
    assert window("10", "-10", start_ns=START, end_ns=END, clock=CLOCK) == (
        START + 10 * S,
        END - 10 * S,
    )
    assert window(None, "50%", start_ns=START, end_ns=END, clock=CLOCK) == (None, START + 50 * S)


def test_a_window_outside_the_recording_is_returned_as_given():
    assert window("200", "300", start_ns=START, end_ns=END, clock=CLOCK) == (
        START + 200 * S,
        START + 300 * S,
    )
    assert at("2026-12-24") == START + (24 * 86_400 - (14 * 3600 + 3 * 60 + 7)) * S
    assert at("-200s") == START - 100 * S


def test_times_before_monotonic_zero_or_past_2_62_are_clamped():
    assert at("-1000000h") == 0
    assert at("1970-01-01") == 0
    assert at("99999999999999999h") == MAX_NS
    assert window("-1000000h", "-999999h", start_ns=START, end_ns=END, clock=CLOCK) == (0, 0)


@pytest.mark.parametrize(
    "since, until",
    [("10", "10"), ("20", "10"), ("-10", "10"), ("50%", "25%"), ("14:03:20", "14:03:10")],
)
def test_since_at_or_after_until_is_an_error(since, until):
    with pytest.raises(UsageError) as e:
        window(since, until, start_ns=START, end_ns=END, clock=CLOCK)
    assert f"--since {since} is not before --until {until}" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("", "not a time I can read"),
        ("   ", "not a time I can read"),
        ("ten", "not a time I can read"),
        ("10x", "not a time I can read"),
        ("10 sec", "not a time I can read"),
        ("1e3", "not a time I can read"),
        ("--10", "not a time I can read"),
        ("+-10", "not a time I can read"),
        ("-25%", "not a time I can read"),
        ("101%", "0% to 100%"),
        ("100.5%", "0% to 100%"),
        ("24:00", "not a time of day"),
        ("12:60", "not a time of day"),
        ("12:00:60", "not a time of day"),
        ("1:2", "not a time I can read"),
        ("123:00", "not a time I can read"),
        ("12:00:00.1234567890", "not a time I can read"),
        ("2026-02-30", "not a date"),
        ("2026-13-01", "not a date"),
        ("0000-01-01", "not a date"),
        ("2026-11-30T25:00", "not a time of day"),
        ("2026-11-30T12:00+24:00", "not a UTC offset"),
        ("2026-11-30Z", "not a time I can read"),
        ("2026-1-30", "not a time I can read"),
        ("30/11/2026", "not a time I can read"),
        ("now", "not a time I can read"),
        ("10\n20", "not a time I can read"),
    ],
)
def test_bad_values_are_one_line_naming_the_flag(text, needle):
    for flag, args in (("--since", (text, None)), ("--until", (None, text))):
        with pytest.raises(UsageError) as e:
            window(*args, start_ns=START, end_ns=END, clock=CLOCK)
        msg = str(e.value)
        assert msg.startswith(f"{flag} {text}: ") and needle in msg, msg
        assert msg.count("\n") == text.count("\n"), msg  # only the user's own newlines
        assert "ISO 8601" in e.value.hint


def test_describe():
    assert describe(None, None, START, CLOCK) == "the whole recording"
    assert describe(START + 12 * S, START + 20_500 * MS, START, CLOCK) == (
        "12.000 s to 20.500 s (14:03:19 to 14:03:27)"
    )
    assert describe(None, START + 1 * S, START, CLOCK) == (
        "the start to 1.000 s (the start to 14:03:08)"
    )
    assert describe(START - 1_500 * MS, None, START, CLOCK) == (
        "-1.500 s to the end (14:03:05 to the end)"
    )
    assert describe(START + 1, START + 999_999, START, CLOCK).startswith("0.000 s to 0.001 s")


# -- round trips ---------------------------------------------------------------------------

SECONDS = st.decimals(min_value=0, max_value=10**6, places=9, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(SECONDS, st.sampled_from(["", "s", "+"]))
def test_seconds_round_trip_exactly(seconds: Decimal, form: str):
    text = f"+{seconds:f}" if form == "+" else f"{seconds:f}{form}"
    ns = at(text)
    assert ns is not None
    assert Decimal(ns - START) / S == seconds


@settings(max_examples=300, deadline=None)
@given(SECONDS)
def test_milliseconds_and_before_the_end_round_trip(seconds: Decimal):
    assert Decimal(at(f"{seconds * 1000:f}ms") - START) / S == seconds
    assert Decimal(END - parse(f"-{seconds:f}", "--until", START, END, CLOCK)) / S == seconds


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=3 * 86_400 * S),
    st.integers(min_value=-14 * 4, max_value=14 * 4),
)
def test_wall_clock_forms_round_trip(offset_ns: int, quarter_hours: int):
    """An instant written as an ISO time (UTC, with the host's zone, and as local time)
    and, in the first day, as a time of day, reads back as itself, to the ns."""
    import datetime as dt

    clock = dict(CLOCK, utc_offset_s=quarter_hours * 900)
    ns = START + offset_ns
    utc_ns = ns + clock["realtime_minus_monotonic_ns"]
    local_ns = utc_ns + clock["utc_offset_s"] * S
    frac = f"{local_ns % S:09d}"
    local = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=local_ns // S)
    utc = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=utc_ns // S)
    sign = "-" if quarter_hours < 0 else "+"
    zone = f"{sign}{abs(quarter_hours) // 4:02d}:{abs(quarter_hours) % 4 * 15:02d}"
    end = START + 4 * 86_400 * S
    for text in (
        f"{utc:%Y-%m-%dT%H:%M:%S}.{frac}Z",
        f"{local:%Y-%m-%dT%H:%M:%S}.{frac}{zone}",
        f"{local:%Y-%m-%d %H:%M:%S}.{frac}",
    ):
        assert at(text, end=end, clock=clock) == ns, text
    if offset_ns < 86_400 * S:
        assert at(f"{local:%H:%M:%S}.{frac}", end=end, clock=clock) == ns


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=100), st.integers(min_value=1, max_value=10**15))
def test_percentages_are_in_order_and_within_the_recording(pct: int, duration: int):
    a = at(f"{pct}%", end=START + duration)
    b = at(f"{min(pct + 1, 100)}%", end=START + duration)
    assert START <= a <= b <= START + duration
