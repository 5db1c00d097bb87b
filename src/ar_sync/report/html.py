"""The risk and aging report as one self-contained HTML page (inline CSS and SVG, no scripts).

Owners open it from an e-mail or a shared drive, often offline: nothing is fetched from
anywhere. Every value is escaped, because customer names and invoice numbers are user data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from html import escape

from ar_sync.domain.money import format_money
from ar_sync.report.figures import BUCKETS, AgingRow, ArReport, CustomerRisk

_COLOURS = ("#4caf50", "#cddc39", "#ffc107", "#ff7043", "#d32f2f")  # one per bucket
_LEVEL_CLASS = {"low": "low", "medium": "medium", "high": "high"}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}
th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.level{font-weight:600;padding:.1rem .5rem;border-radius:.6rem}
.low{background:#e8f5e9;color:#1b5e20}.medium{background:#fff8e1;color:#8d6e00}
.high{background:#ffebee;color:#b71c1c}.note{color:#666;font-size:.9rem}
.charts{display:flex;flex-wrap:wrap;gap:1.5rem}
figure{margin:0}figcaption{font-weight:600;margin-bottom:.3rem}
ul.reasons{margin:0;padding-left:1.1rem}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _money(amounts: Mapping[str, Decimal]) -> str:
    return "<br>".join(_e(format_money(v, c)) for c, v in sorted(amounts.items())) or "–"


def aging_chart(row: AgingRow, *, width: int = 360, height: int = 200) -> str:
    """An SVG bar chart of one currency's aging buckets (bars scaled to the largest)."""
    top, bottom, left = 20, 30, 10
    plot_h = height - top - bottom
    slot = (width - 2 * left) / len(BUCKETS)
    biggest = max(row.buckets) or Decimal(1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="aging-chart" role="img" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'aria-label="{_e("Aging of " + row.currency + " receivables")}">']
    for n, (name, amount) in enumerate(zip(BUCKETS, row.buckets, strict=True)):
        bar_h = float(amount / biggest) * plot_h
        x = left + n * slot + slot * 0.15
        y = top + plot_h - bar_h
        label = format_money(amount, row.currency)
        parts.append(
            f'<rect class="bar" data-bucket="{_e(name)}" x="{x:.1f}" y="{y:.1f}" '
            f'width="{slot * 0.7:.1f}" height="{bar_h:.1f}" fill="{_COLOURS[n]}">'
            f"<title>{_e(name)}: {_e(label)}</title></rect>")
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 16}" '
                     f'font-size="12" text-anchor="middle">{_e(name)}</text>')
        if amount:
            parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{max(y - 4, 12):.1f}" '
                         f'font-size="10" text-anchor="middle">{_e(f"{amount:,}")}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _aging_table(rows: Sequence[AgingRow]) -> str:
    head = "".join(f"<th>{_e(b)}</th>" for b in BUCKETS)
    body = "".join(
        f"<tr><td>{_e(r.currency)}</td>"
        + "".join(f'<td class="num">{_e(f"{v:,}")}</td>' for v in r.buckets)
        + f'<td class="num">{_e(f"{r.total:,}")}</td><td class="num">{r.invoices}</td></tr>'
        for r in rows)
    return (f'<table class="aging"><thead><tr><th>currency</th>{head}<th>total</th>'
            f"<th>invoices</th></tr></thead><tbody>{body}</tbody></table>")


def _dso_table(report: ArReport) -> str:
    body = "".join(
        f"<tr><td>{_e(d.currency)}</td>"
        f"<td class=\"num\">{_e(d.days if d.days is not None else 'n/a')}</td>"
        f"<td class=\"num\">{_e(format_money(d.receivables, d.currency))}</td>"
        f"<td class=\"num\">{_e(format_money(d.credit_sales, d.currency))}</td></tr>"
        for d in report.dso)
    return ('<table class="dso"><thead><tr><th>currency</th><th>DSO (days)</th>'
            "<th>receivables</th><th>credit sales, last 90 days</th></tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _customer_row(c: CustomerRisk) -> str:
    level = _LEVEL_CLASS.get(str(c.level), "low")
    reasons = "".join(f"<li>{_e(r)}</li>" for r in c.reasons)
    avg = "–" if c.avg_days_late is None else c.avg_days_late
    return (f'<tr data-customer="{_e(c.customer_id)}"><td>{_e(c.customer_name)}</td>'
            f'<td><span class="level {level}">{_e(c.level)}</span></td>'
            f'<td class="num">{c.score}</td><td class="num">{_e(avg)}</td>'
            f"<td>{_e(c.trend)}</td><td class=\"num\">{c.reminders_ignored}</td>"
            f'<td class="num">{_money(c.open_balance)}</td>'
            f'<td><ul class="reasons">{reasons}</ul></td></tr>')


def _customer_table(customers: Iterable[CustomerRisk]) -> str:
    head = "".join(f"<th>{h}</th>" for h in (
        "customer", "risk", "score", "avg days late", "trend", "reminders ignored",
        "open balance", "why"))
    body = "".join(_customer_row(c) for c in customers)
    return (f'<table class="customers"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _section(report: ArReport) -> str:
    charts = "".join(f"<figure><figcaption>{_e(r.currency)}</figcaption>{aging_chart(r)}"
                     f"</figure>" for r in report.aging)
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in report.notes)
    return (f"<section><h2>{_e(report.title)}</h2>"
            f'<p class="note">As of {_e(report.as_of.isoformat())}: {report.open_invoices} open '
            f"and {report.paid_invoices} paid invoices.</p>{notes}"
            f"<h3>Aging</h3><div class=\"charts\">{charts or '<p>No open invoices.</p>'}</div>"
            f"{_aging_table(report.aging)}<h3>Days sales outstanding</h3>{_dso_table(report)}"
            f"<h3>Customers by risk</h3>{_customer_table(report.customers)}</section>")


def render_html(reports: Sequence[ArReport], *, title: str = "ar-sync risk and aging") -> str:
    """The whole page for one or more reports (one section per connected company)."""
    sections = "".join(_section(r) for r in reports) or "<p>Nothing to report.</p>"
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; img-src data:\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
            f"<body><h1>{_e(title)}</h1>{sections}"
            '<p class="note">Score: lateness up to 40, oldest overdue invoice up to 25, '
            "reminders ignored up to 20, worsening trend 10, disputed invoice 5; "
            "high from 60, medium from 30. Amounts are never added across currencies.</p>"
            "</body></html>")


__all__ = ["aging_chart", "render_html"]
