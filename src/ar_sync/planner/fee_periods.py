"""Which fee periods may be charged at all: go-live backfill, pauses, other rules' periods.

Pure functions on Occurrence lists (ar_sync.planner.fee_maths). A fee occurrence covers a period:
a recurring fee the period from its date to the next one, interest the days it accrued
over, a one-off fee its own day. Three things take periods away:

* go-live (`backfill`): 'none' drops every period that began before go-live (interest
  accrues only from go-live), 'latest' keeps the last of them, 'all' keeps them all;
* a pause with `after_pause: forgive`: days in the pause never accrue, and a fee whose
  period starts in the pause is never charged;
* `stack: false`: a period that shares a day with one another fee rule charged is skipped
  (which days a charged fee covered: fee_days.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, timedelta

from ar_sync.planner.fee_maths import COMPENSATION, Occurrence

Window = tuple[date, date]  # [start, end): half-open, like every period here


def live_only(due: Sequence[Occurrence], go_live: date, backfill: str,
              accrues: bool) -> tuple[Occurrence, ...]:
    """The occurrences a connection that went live on `go_live` may charge."""
    if backfill == "all" or not due:
        return tuple(due)
    before = [o for o in due if o.label != COMPENSATION and o.period_start < go_live]
    keep = before[-1] if backfill == "latest" and before else None
    out = []
    for o in due:
        if o.label == COMPENSATION:
            if o.on >= go_live or backfill == "latest":
                out.append(o)
        elif o.period_start >= go_live or o is keep:
            out.append(o)
        elif accrues and o.end > go_live:  # 'none': accrue only the live part of the period
            clipped = _cut(o.accrual_spans(), ((date.min, go_live),))
            if clipped:
                out.append(replace(o, spans=clipped))
    return tuple(out)


def without_windows(due: Sequence[Occurrence], windows: Sequence[Window],
                    accrues: bool) -> list[Occurrence]:
    """`due` with the paused `windows` forgiven."""
    out = []
    for o in due:
        if accrues and o.label != COMPENSATION:
            spans = _cut(o.accrual_spans(), windows)
            if spans:
                out.append(o if spans == o.accrual_spans() else replace(o, spans=spans))
        elif not any(a <= o.period_start < b for a, b in windows):
            out.append(o)
    return out


def _cut(spans: Iterable[Window], windows: Sequence[Window]) -> tuple[Window, ...]:
    """`spans` minus every window (all half-open)."""
    out = list(spans)
    for wa, wb in windows:
        nxt: list[Window] = []
        for a, b in out:
            if wb <= a or b <= wa:
                nxt.append((a, b))
                continue
            if a < wa:
                nxt.append((a, wa))
            if wb < b:
                nxt.append((wb, b))
        out = nxt
    return tuple((a, b) for a, b in out if a < b)


def pause_window(since: date, until: date | None, today: date) -> Window:
    """A pause's days as a half-open window (an open-ended pause runs through today)."""
    last = until if until is not None else today
    return (since, last + timedelta(days=1))


def period_of(o: Occurrence) -> Window:
    """The days an occurrence charges for (for interest: the days it really accrued)."""
    spans = o.spans
    if spans:
        return (spans[0][0], spans[-1][1])
    return (o.period_start, o.end)
