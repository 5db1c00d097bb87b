"""Rich rendering of run reports and ledger history, shared by `run`, `demo` and `history`.

Every table is a `Fitted` one (render/fit.py): at 80 columns it becomes one block per record
instead of losing columns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.markup import escape

from ar_sync.cli.render.fit import Column, Fitted
from ar_sync.domain.models import LedgerEntry
from ar_sync.domain.money import format_money
from ar_sync.sync.run import RunReport

_STYLE = {"done": "green", "reconciled": "cyan", "skipped": "dim", "failed": "red",
          "retry": "yellow", "deferred": "yellow", "busy": "magenta", "planned": "blue",
          "ambiguous": "magenta"}


def _styled(outcome: str) -> str:
    style = _STYLE.get(outcome, "")
    return f"[{style}]{escape(outcome)}[/]" if style else escape(outcome)


def summary_table(reports: Iterable[RunReport]) -> Fitted:
    names = ("open", "planned", "done", "skipped", "retry", "failed", "ambiguous", "deferred",
             "calls")
    table = Fitted("Run report", [Column("tenant"), Column("fetch"),
                                  *(Column(n, justify="right") for n in names)], compact=True)
    stops: list[str] = []
    for r in reports:
        done = str(r.done) + (f" (+{r.reconciled} found)" if r.reconciled else "")
        table.add_row(escape(r.connection_id), "full" if r.full_fetch else "incr.",
                      str(r.invoices_open), str(r.planned), done, str(r.skipped), str(r.retry),
                      str(r.failed), str(r.ambiguous), str(r.deferred), str(r.api_calls))
        if r.stopped_early:
            stops.append(f"{r.connection_id}: stopped early ({r.stopped_early})")
    if stops:
        table.caption = escape("; ".join(stops))
    return table


def actions_table(report: RunReport, *, limit: int | None = None,
                  outcomes: set[str] | None = None, refs: bool = False) -> Fitted:
    columns = [Column("invoice"), Column("action"), Column("rule"), Column("outcome"),
               *([Column("platform ref")] if refs else []), Column("why", long=True)]
    table = Fitted(f"Actions for {escape(report.connection_id)}", columns, heading=4)
    shown = [a for a in report.actions if outcomes is None or a.outcome in outcomes]
    for a in shown[:limit]:
        table.add_row(escape(a.invoice_number), a.kind, escape(a.rule), _styled(a.outcome),
                      *([escape(a.ref or "")] if refs else []), escape(a.detail))
    if limit is not None and len(shown) > limit:
        table.caption = f"… and {len(shown) - limit} more (use --format json for all)"
    return table


def history_table(invoice_id: str, entries: Iterable[LedgerEntry],
                  currencies: Mapping[str, str] | None = None) -> Fitted:
    """One invoice's ledger; `currencies` (row key -> currency) puts the currency on each
    amount (a fee's amount without it could be dollars or yen)."""
    columns = [Column("updated"), Column("action"), Column("rule"), Column("occurrence"),
               Column("state"), Column("amount", justify="right"), Column("platform ref"),
               Column("reason", long=True), Column("attempts", justify="right"),
               Column("rules v.", justify="right")]
    table = Fitted(f"Ledger for invoice {escape(invoice_id)}", columns, heading=5)
    for e in entries:
        currency = (currencies or {}).get(e.key)
        amount = ("" if e.amount is None else format_money(e.amount, currency) if currency
                  else str(e.amount))
        table.add_row(e.updated_at.strftime("%Y-%m-%d %H:%M"), str(e.kind), escape(e.rule),
                      escape(e.occurrence), _styled(str(e.state)), amount, escape(e.ref or ""),
                      escape(e.reason or ""), str(e.attempts),
                      "" if e.rules_version is None else str(e.rules_version))
    return table
