"""What the call benchmarks (bench_calls_quickbooks.py, bench_calls_xero.py) print of a run."""

from __future__ import annotations

from collections import Counter

from ar_sync.sync import RunReport


def done_by_kind(report: RunReport) -> str:
    """`late_fee=3, note=2`: the writes the run did, per kind of action ("" when none)."""
    kinds = Counter(a.kind for a in report.actions if a.outcome == "done")
    return ", ".join(f"{kind}={n}" for kind, n in sorted(kinds.items()))
