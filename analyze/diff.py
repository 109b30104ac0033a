"""`bpfcap diff A B`: what changed between two traces (before and after an upgrade), as
plain data built from their Profiles (analyze/profile.py). Rendering (text, JSON) is
the CLI's (cli/summary.py).

Rates (events per second) are compared, not counts: two recordings rarely last as long.
Keys (comm, system call, disk) are compared by name, so traces of different machines
compare (each trace's system call numbers are named with its own architecture's table).
A ratio is B / A (None where A has none); a mover needs `min_count` rows on the side(s)
it is measured on, so that a key seen a few times does not top the list by noise.
"""

from __future__ import annotations

import math
from typing import Any

from bpfcap.analyze.profile import Profile, Sketch
from bpfcap.analyze.summary import latency, utc_iso

MIN_COUNT = 50
# Ratios within this of 1 are no change (percentiles are within 0.8% each).
SAME = 0.02


def ratio(a: float | None, b: float | None) -> float | None:
    """b / a, rounded to 4 digits; None when either is unknown or a is 0."""
    if a is None or b is None or a == 0:
        return None
    return round(b / a, 4)


def _side(p: Profile) -> dict[str, Any]:
    return {
        "trace": p.path,
        "host": p.host,
        "start": utc_iso(p.start_utc_ns),
        "duration_s": p.duration_s,
        "events": p.events,
        "lost": p.lost,
        "complete": p.complete,
    }


def _compare(
    pa_: Profile, pb: Profile, na: int, nb: int, sa: Sketch | None, sb: Sketch | None
) -> dict[str, Any]:
    """Counts, rates and latency of one type or key on both sides, with their ratios."""
    ra, rb = pa_.rate(na), pb.rate(nb)
    la, lb = latency(sa), latency(sb)
    out: dict[str, Any] = {
        "a_events": na,
        "b_events": nb,
        "a_per_s": None if ra is None else round(ra, 3),
        "b_per_s": None if rb is None else round(rb, 3),
        "rate_ratio": ratio(ra, rb),
    }
    if sa is not None or sb is not None:
        for k in ("p50_ns", "p90_ns", "p99_ns", "max_ns"):
            out[f"a_{k}"], out[f"b_{k}"] = la[k], lb[k]
            out[k.replace("_ns", "_ratio")] = ratio(la[k], lb[k])
    return out


def diff(a: Profile, b: Profile, top: int = 5, min_count: int = MIN_COUNT) -> dict[str, Any]:
    """What changed from `a` to `b`, JSON-ready:

    a, b: each side's trace, host, start (ISO UTC), duration_s, events, lost, complete;
    types: per event type present on either side: type, a_events, b_events, a_per_s,
    b_per_s, rate_ratio, and for types with a latency a_/b_ p50_ns, p90_ns, p99_ns,
    max_ns with p50_ratio, p90_ratio, p99_ratio, max_ratio;
    keys: per key present on both sides (type, column: comm, syscall or disk, key) the
    same fields, most events first;
    new (only in b), vanished (only in a): type, column, key, events;
    movers: {rate: [...], p99: [...]}: the `top` keys (and types) whose rate or p99
    changed most (by |log ratio|), among those with at least min_count rows (for p99:
    on both sides; for rate: on either);
    histograms: {bio, runq: {a: counts, b: counts}}: BCC log2 slots of the latency in
    usecs, for side-by-side printing;
    same: True when no type's rate or p99 moved by more than SAME (2%).
    """
    kinds = [k for k in a.kinds if k in b.kinds] + [k for k in b.kinds if k not in a.kinds]
    kinds += [k for k in a.kinds if k not in kinds]
    types, keys, new, vanished, movers = [], [], [], [], []
    for kind in kinds:
        ka, kb = a.kinds.get(kind), b.kinds.get(kind)
        row = {
            "type": kind,
            **_compare(
                a,
                b,
                ka.rows if ka else 0,
                kb.rows if kb else 0,
                ka.latency if ka else None,
                kb.latency if kb else None,
            ),
        }
        types.append(row)
        movers.append({"type": kind, "column": None, "key": None, **row})
        cols = sorted(set(ka.keys if ka else ()) | set(kb.keys if kb else ()))
        for col in cols:
            by_a = ka.keys.get(col, {}) if ka else {}
            by_b = kb.keys.get(col, {}) if kb else {}
            for key in sorted(set(by_a) | set(by_b)):
                sa, sb = by_a.get(key), by_b.get(key)
                if sa is None or sb is None:
                    s = sa or sb
                    what = {"type": kind, "column": col, "key": key, "events": s.count}
                    (vanished if sb is None else new).append(what)
                    continue
                entry = {"type": kind, "column": col, "key": key}
                entry.update(_compare(a, b, sa.count, sb.count, sa, sb))
                keys.append(entry)
                movers.append(entry)
    keys.sort(key=lambda e: (-(e["a_events"] + e["b_events"]), e["type"], e["column"], e["key"]))
    for lst in (new, vanished):
        lst.sort(key=lambda e: (-e["events"], e["type"], e["column"], e["key"]))
    by_rate = [
        m
        for m in movers
        if max(m["a_events"], m["b_events"]) >= min_count and _moved(m.get("rate_ratio"))
    ]
    by_p99 = [
        m
        for m in movers
        if min(m["a_events"], m["b_events"]) >= min_count and _moved(m.get("p99_ratio"))
    ]
    by_rate.sort(key=lambda m: (-abs(math.log(m["rate_ratio"])), _label(m)))
    by_p99.sort(key=lambda m: (-abs(math.log(m["p99_ratio"])), _label(m)))
    hist = {}
    for kind in ("bio", "runq"):
        ha, hb = a.log2_usecs.get(kind), b.log2_usecs.get(kind)
        if ha or hb:
            n = max(len(ha or ()), len(hb or ()))
            hist[kind] = {"a": _pad(ha, n), "b": _pad(hb, n)}
    same = all(
        not _moved(t["rate_ratio"]) and not _moved(t.get("p99_ratio"))
        for t in types
        if t["a_events"] and t["b_events"]
    ) and all(bool(t["a_events"]) == bool(t["b_events"]) for t in types)
    return {
        "a": _side(a),
        "b": _side(b),
        "types": types,
        "keys": keys,
        "new": new,
        "vanished": vanished,
        "movers": {"rate": by_rate[:top], "p99": by_p99[:top]},
        "histograms": hist,
        "same": same,
    }


def _moved(r: float | None) -> bool:
    return r is not None and r > 0 and abs(r - 1) > SAME


def _label(m: dict[str, Any]) -> tuple:
    return (m["type"], m["column"] or "", m["key"] or "")


def _pad(h: list[int] | None, n: int) -> list[int]:
    h = list(h or [])
    return h + [0] * (n - len(h))
