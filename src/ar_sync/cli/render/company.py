"""Rich rendering for go-live previews, pauses, rule versions and rule diffs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal

from rich.markup import escape
from rich.table import Table

from ar_sync.domain.money import format_money
from ar_sync.sync.company_store import RulesVersion, StoredPause
from ar_sync.sync.rules_diff import RulesDiff, end_of
from ar_sync.sync.run import RunReport

_KIND = {"late_fee": "fees", "note": "notes", "reminder_email": "e-mails",
         "escalate": "escalations", "skip": "skipped stages", "waive_fee": "waivers"}


def rules_line(report: RunReport) -> str:
    """Which rules a run used, and whether it wrote anything."""
    mode = ("  [bold yellow]PREVIEW: nothing is written until `ar-sync go-live`[/]"
            if report.mode == "preview" else "")
    live = f", live from {report.go_live}" if report.go_live else ""
    return f"[dim]{escape(report.connection_id)}: rules {escape(report.rules)}{live}[/]{mode}"


def preview_summary(report: RunReport) -> list[str]:
    """The first live run in a few lines: counts per kind and fees per currency."""
    kinds = Counter(a.kind for a in report.actions)
    counts = ", ".join(f"{n} {_KIND.get(k, k)}" for k, n in sorted(kinds.items()))
    lines = [f"{report.invoices_open} open invoices; the first live run would do: "
             f"{counts or 'nothing'}"]
    if report.fees:
        lines.append("fees: " + ", ".join(format_money(Decimal(v), cur)
                                          for cur, v in report.fees.items()))
    return lines


def pauses_table(rows: Iterable[tuple[str, StoredPause, str]], today: date) -> Table:
    """(tenant, pause, what it names for people) rows."""
    table = Table(title="Pauses")
    for col in ("tenant", "id", "invoice / customer", "reason", "since", "until", "state",
                "note"):
        table.add_column(col, overflow="fold")
    for tenant, stored, name in rows:
        p = stored.pause
        state = (f"resumed {stored.resumed_on}" if stored.resumed_on
                 else "active" if stored.active_on(today) else
                 "ended" if p.until is not None and p.until < today else "future")
        table.add_row(tenant, stored.id, escape(name), p.reason, str(p.since),
                      str(p.until) if p.until else "until resumed", state, escape(p.note))
    return table


def versions_table(tenant: str, versions: Sequence[RulesVersion]) -> Table:
    table = Table(title=f"Rules versions of {tenant}")
    for col in ("version", "applied (UTC)", "from", "note"):
        table.add_column(col, overflow="fold")
    for v in versions:
        current = " (current)" if v is versions[-1] else ""
        table.add_row(f"{v.version}{current}", v.created_at.strftime("%Y-%m-%d %H:%M"),
                      escape(v.source), escape(v.note))
    return table




def diff_table(diff: RulesDiff, limit: int) -> Table:
    table = Table(title=f"Rules diff, {diff.start} to {end_of(diff)} ({diff.days} days, "
                        "nobody pays)")
    for col in ("change", "due", "invoice", "action", "rule", "now", "with the new rules"):
        table.add_column(col, overflow="fold")
    style = {"new": "green", "gone": "red", "changed": "yellow", "not repeated": "cyan"}
    for row in diff.rows[:limit]:
        rule = row.rule if row.occurrence == "once" else f"{row.rule} {row.occurrence}"
        table.add_row(f"[{style[row.change]}]{row.change}[/]", str(row.day), row.invoice,
                      _KIND.get(row.kind, row.kind), escape(rule), escape(row.before),
                      escape(row.after))
    if len(diff.rows) > limit:
        table.caption = f"… and {len(diff.rows) - limit} more (--limit N or --format json)"
    return table


def money_lines(diff: RulesDiff) -> list[str]:
    """Fees per currency under both rule sets and the difference."""
    out = []
    for cur, delta in diff.money().items():
        before = Decimal(diff.before.get(cur, "0"))
        after = Decimal(diff.after.get(cur, "0"))
        sign = "+" if delta > 0 else ""
        out.append(f"{cur}: fees {format_money(before, cur)} -> {format_money(after, cur)} "
                   f"({sign}{format_money(delta, cur)})")
    return out


__all__ = ["diff_table", "money_lines", "pauses_table", "preview_summary", "rules_line",
           "versions_table"]
