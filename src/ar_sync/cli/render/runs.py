"""Rich rendering of run reports and ledger history, shared by `run`, `demo` and `history`."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from ar_sync.domain.models import LedgerEntry
from ar_sync.sync.run import RunReport

_STYLE = {"done": "green", "reconciled": "cyan", "skipped": "dim", "failed": "red",
          "retry": "yellow", "deferred": "yellow", "busy": "magenta", "planned": "blue",
          "ambiguous": "magenta"}


def summary_table(reports: Iterable[RunReport]) -> Table:
    table = Table(title="Run report")
    for col in ("tenant", "fetch", "open", "planned", "done", "skipped", "retry", "failed",
                "ambiguous", "deferred", "calls"):
        table.add_column(col, justify="left" if col in ("tenant", "fetch") else "right",
                         overflow="fold", min_width=12 if col == "tenant" else None)
    stops: list[str] = []
    for r in reports:
        done = str(r.done) + (f" (+{r.reconciled} found)" if r.reconciled else "")
        table.add_row(r.connection_id, "full" if r.full_fetch else "incr.",
                      str(r.invoices_open), str(r.planned), done, str(r.skipped), str(r.retry),
                      str(r.failed), str(r.ambiguous), str(r.deferred), str(r.api_calls))
        if r.stopped_early:
            stops.append(f"{r.connection_id}: stopped early ({r.stopped_early})")
    if stops:
        table.caption = "; ".join(stops)
    return table


def actions_table(report: RunReport, *, limit: int | None = None,
                  outcomes: set[str] | None = None, refs: bool = False) -> Table:
    table = Table(title=f"Actions for {report.connection_id}")
    columns = ["invoice", "action", "rule", "outcome", *(["platform ref"] if refs else []),
               "why"]
    for col in columns:
        table.add_column(col, overflow="fold")
    shown = [a for a in report.actions if outcomes is None or a.outcome in outcomes]
    for a in shown[:limit]:
        style = _STYLE.get(a.outcome, "")
        row = [a.invoice_number, a.kind, a.rule, f"[{style}]{a.outcome}[/]",
               *([a.ref or ""] if refs else []), a.detail]
        table.add_row(*row)
    if limit is not None and len(shown) > limit:
        table.caption = f"… and {len(shown) - limit} more (use --format json for all)"
    return table


def history_table(invoice_id: str, entries: Iterable[LedgerEntry]) -> Table:
    table = Table(title=f"Ledger for invoice {invoice_id}")
    for col in ("updated", "action", "rule", "occurrence", "state", "amount", "platform ref",
                "reason", "attempts", "rules v."):
        table.add_column(col, overflow="fold")
    for e in entries:
        style = _STYLE.get(str(e.state), "")
        table.add_row(e.updated_at.strftime("%Y-%m-%d %H:%M"), str(e.kind), e.rule,
                      e.occurrence, f"[{style}]{e.state}[/]",
                      "" if e.amount is None else str(e.amount), e.ref or "", e.reason or "",
                      str(e.attempts), "" if e.rules_version is None else str(e.rules_version))
    return table
