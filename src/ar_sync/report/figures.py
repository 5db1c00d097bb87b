"""Risk and aging: pure figures from invoices and the action ledger, as of one date.

Nothing here talks to a store or a platform, so every figure can be checked by hand. Money is
never added across currencies: aging, DSO and balances are kept per currency, and the risk
score only uses day counts and counts of reminders, which have no currency.

Definitions (also in docs/operations.md#what-the-reports-figures-mean):
- Aging: open invoices (status OPEN, balance > 0, issued on or before the date) by days past
  due, d = as_of - due_date: current (d <= 0), 1-30, 31-60, 61-90, 90+ (d > 90).
- DSO, per currency, over a 90-day window:
      DSO = receivables / credit sales in the window x 90
  receivables = balances of those open invoices; credit sales = totals of invoices (open or
  paid, not draft or voided) issued in (as_of - 90 days, as_of]. None when there were no sales.
- Days late of an invoice: paid with `paid_at`: max(0, paid_at - due_date); open and past due:
  as_of - due_date (late so far, a lower bound); open and not yet due, or paid without a
  known payment day: not counted.
- Trend: a customer's scored invoices in due-date order; the newer half (the extra one when
  odd) against the older half: worsening when the newer average is more than TREND_DAYS
  days later; improving when it is more than TREND_DAYS days sooner and the newer half is all
  paid (an open invoice's days late is only a lower bound); n/a when that cannot be told.
- Reminder ignored: a reminder stage (note and/or e-mail, done in the ledger) sent on or after
  the due date, after which the invoice was still unpaid IGNORE_GRACE_DAYS days later; a stage
  sent both as a note and as an e-mail counts once.
- Risk score 0-100, the sum of: lateness up to 40 (average days late x 40/60), oldest open
  invoice overdue up to 25 (days x 25/90), reminders ignored up to 20 (5 each), a worsening
  trend 10, a disputed open invoice 5. Level: high >= 60, medium >= 30, else low.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from ar_sync.domain.models import ActionKind, EntryState, Invoice, InvoiceStatus, LedgerEntry
from ar_sync.domain.money import format_money, round_money

BUCKETS: tuple[str, ...] = ("current", "1-30", "31-60", "61-90", "90+")
DSO_WINDOW_DAYS = 90
TREND_DAYS = Decimal(7)
IGNORE_GRACE_DAYS = 7
REMINDER_KINDS = frozenset({ActionKind.NOTE, ActionKind.REMINDER_EMAIL})

# score weights (points) and the value at which each component is full
LATE_POINTS, LATE_FULL_DAYS = 40, 60
OVERDUE_POINTS, OVERDUE_FULL_DAYS = 25, 90
IGNORED_POINTS, IGNORED_EACH = 20, 5
WORSENING_POINTS = 10
DISPUTED_POINTS = 5
HIGH_FROM, MEDIUM_FROM = 60, 30

_ONE_DECIMAL = Decimal("0.1")


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Trend(StrEnum):
    IMPROVING = "improving"
    STEADY = "steady"
    WORSENING = "worsening"
    UNKNOWN = "n/a"  # fewer than two scored invoices, or newer ones still open


def _days(value: Decimal) -> Decimal:
    return value.quantize(_ONE_DECIMAL, rounding=ROUND_HALF_UP)


def _zero(currency: str) -> Decimal:
    """0 written with the currency's decimals (0.00 USD, 0 JPY)."""
    return round_money(Decimal(0), currency)


def _money_dict(amounts: Mapping[str, Decimal]) -> dict[str, str]:
    return {cur: str(amount) for cur, amount in sorted(amounts.items())}


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class AgingRow:
    """Open balances of one currency by days past due."""

    currency: str
    buckets: tuple[Decimal, ...]  # in BUCKETS order
    invoices: int

    @property
    def total(self) -> Decimal:
        return sum(self.buckets, Decimal(0))

    def by_bucket(self) -> dict[str, Decimal]:
        return dict(zip(BUCKETS, self.buckets, strict=True))

    def to_dict(self) -> dict[str, Any]:
        return {"currency": self.currency, "invoices": self.invoices, "total": str(self.total),
                "buckets": {name: str(v) for name, v in self.by_bucket().items()}}


@dataclass(frozen=True)
class DsoFigure:
    """Days sales outstanding for one currency (see the module docstring for the formula)."""

    currency: str
    receivables: Decimal
    credit_sales: Decimal
    window_days: int
    days: Decimal | None  # None: no credit sales in the window

    def to_dict(self) -> dict[str, Any]:
        return {"currency": self.currency, "receivables": str(self.receivables),
                "credit_sales": str(self.credit_sales), "window_days": self.window_days,
                "days": None if self.days is None else str(self.days)}


@dataclass(frozen=True)
class CustomerRisk:
    """One customer's payment behaviour, risk score and the reasons for it."""

    customer_id: str
    customer_name: str
    open_invoices: int
    open_balance: Mapping[str, Decimal]  # per currency
    overdue_balance: Mapping[str, Decimal]  # per currency, past due
    scored_invoices: int  # invoices with a days-late figure
    avg_days_late: Decimal | None
    recent_avg_days_late: Decimal | None
    older_avg_days_late: Decimal | None
    trend: Trend
    oldest_overdue_days: int
    reminders_ignored: int
    disputed: int
    score: int
    level: RiskLevel
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        def opt(v: Decimal | None) -> str | None:
            return None if v is None else str(v)

        return {"customer_id": self.customer_id, "customer_name": self.customer_name,
                "open_invoices": self.open_invoices,
                "open_balance": _money_dict(self.open_balance),
                "overdue_balance": _money_dict(self.overdue_balance),
                "scored_invoices": self.scored_invoices,
                "avg_days_late": opt(self.avg_days_late),
                "recent_avg_days_late": opt(self.recent_avg_days_late),
                "older_avg_days_late": opt(self.older_avg_days_late),
                "trend": str(self.trend), "oldest_overdue_days": self.oldest_overdue_days,
                "reminders_ignored": self.reminders_ignored, "disputed": self.disputed,
                "score": self.score, "level": str(self.level), "reasons": list(self.reasons)}


@dataclass(frozen=True)
class ArReport:
    """The whole report for one set of invoices (one company, or one file)."""

    title: str
    as_of: date
    aging: tuple[AgingRow, ...]
    dso: tuple[DsoFigure, ...]
    customers: tuple[CustomerRisk, ...]  # highest score first
    open_invoices: int
    paid_invoices: int

    @property
    def notes(self) -> tuple[str, ...]:
        """Caveats a reader needs to judge the figures."""
        if self.paid_invoices:
            return ()
        return ("no paid invoices in the input: DSO counts only the sales still open (so it "
                "reads high) and days late come from open invoices only",)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "as_of": self.as_of.isoformat(),
                "open_invoices": self.open_invoices, "paid_invoices": self.paid_invoices,
                "aging": [a.to_dict() for a in self.aging],
                "dso": [d.to_dict() for d in self.dso],
                "customers": [c.to_dict() for c in self.customers],
                "notes": list(self.notes)}


# ----------------------------------------------------------------------------- figures


def _counted(invoices: Iterable[Invoice], as_of: date) -> list[Invoice]:
    """Invoices that existed on the date and count as sales (no drafts, no voided)."""
    return [inv for inv in invoices if inv.issue_date <= as_of
            and inv.status in (InvoiceStatus.OPEN, InvoiceStatus.PAID)]


def _open(invoices: Iterable[Invoice], as_of: date) -> list[Invoice]:
    return [inv for inv in _counted(invoices, as_of) if inv.is_open]


def bucket_of(days_past_due: int) -> str:
    """The aging bucket name for a number of days past due (<= 0 is current)."""
    if days_past_due <= 0:
        return BUCKETS[0]
    if days_past_due <= 30:
        return BUCKETS[1]
    if days_past_due <= 60:
        return BUCKETS[2]
    if days_past_due <= 90:
        return BUCKETS[3]
    return BUCKETS[4]


def aging(invoices: Iterable[Invoice], as_of: date) -> tuple[AgingRow, ...]:
    """Open balances by bucket, one row per currency (sorted by currency code)."""
    sums: dict[str, dict[str, Decimal]] = {}
    counts: dict[str, int] = {}
    for inv in _open(invoices, as_of):
        row = sums.setdefault(inv.currency, dict.fromkeys(BUCKETS, _zero(inv.currency)))
        row[bucket_of((as_of - inv.due_date).days)] += round_money(inv.balance, inv.currency)
        counts[inv.currency] = counts.get(inv.currency, 0) + 1
    return tuple(AgingRow(cur, tuple(sums[cur][b] for b in BUCKETS), counts[cur])
                 for cur in sorted(sums))


def dso(invoices: Iterable[Invoice], as_of: date,
        window_days: int = DSO_WINDOW_DAYS) -> tuple[DsoFigure, ...]:
    """DSO = receivables / credit sales in the last `window_days` days x `window_days`."""
    counted = _counted(invoices, as_of)
    start = as_of - timedelta(days=window_days)
    receivables: dict[str, Decimal] = {}
    sales: dict[str, Decimal] = {}
    for inv in counted:
        receivables.setdefault(inv.currency, _zero(inv.currency))
        sales.setdefault(inv.currency, _zero(inv.currency))
        if inv.is_open:
            receivables[inv.currency] += round_money(inv.balance, inv.currency)
        if inv.issue_date > start:
            sales[inv.currency] += round_money(inv.total, inv.currency)
    out = []
    for cur in sorted(receivables):
        days = (_days(receivables[cur] / sales[cur] * window_days) if sales[cur] > 0
                else None)
        out.append(DsoFigure(cur, receivables[cur], sales[cur], window_days, days))
    return tuple(out)


def days_late(invoice: Invoice, as_of: date) -> int | None:
    """How late the invoice was (paid) or is so far (open and past due); None if unknown."""
    if invoice.status == InvoiceStatus.PAID:
        if invoice.paid_at is None:
            return None
        return max(0, (invoice.paid_at - invoice.due_date).days)
    if invoice.is_open and as_of > invoice.due_date:
        return (as_of - invoice.due_date).days
    return None


def reminders_ignored(invoice: Invoice, entries: Sequence[LedgerEntry], as_of: date) -> int:
    """Reminder stages done on or after the due date that the customer left unpaid for
    IGNORE_GRACE_DAYS days or more (a stage sent as a note and an e-mail counts once)."""
    if invoice.status == InvoiceStatus.PAID:
        unpaid_until = invoice.paid_at
        if unpaid_until is None:
            return 0  # payment day unknown: cannot tell
    elif invoice.is_open:
        unpaid_until = as_of
    else:
        return 0
    stages: set[tuple[str, str]] = set()
    for entry in entries:
        if entry.kind not in REMINDER_KINDS or entry.state != EntryState.DONE:
            continue
        sent = entry.updated_at.date()
        if sent >= invoice.due_date and (unpaid_until - sent).days >= IGNORE_GRACE_DAYS:
            stages.add((entry.rule, entry.occurrence))
    return len(stages)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _mean(values: Sequence[int]) -> Decimal | None:
    return _days(Decimal(sum(values)) / len(values)) if values else None


def _trend(late: Sequence[tuple[int, bool]]) -> tuple[Trend, Decimal | None, Decimal | None]:
    """Newer half against older half of (days late, final) in due-date order.

    An open invoice's figure is a lower bound (it is still getting later), so a newer half
    with open invoices can prove a worsening but never an improvement: that needs the newer
    half all paid. Otherwise the trend is unknown rather than a guess."""
    if len(late) < 2:
        return Trend.UNKNOWN, None, None
    split = len(late) // 2
    older = _mean([d for d, _ in late[:split]])
    recent = _mean([d for d, _ in late[split:]])
    assert older is not None and recent is not None
    if recent - older > TREND_DAYS:
        return Trend.WORSENING, recent, older
    if not all(final for _, final in late[split:]):
        return Trend.UNKNOWN, recent, older
    if older - recent > TREND_DAYS:
        return Trend.IMPROVING, recent, older
    return Trend.STEADY, recent, older


def _scaled(value: Decimal | int, full: int, points: int) -> int:
    """`points` x value/full, capped at `points`, rounded half up to a whole point."""
    share = min(Decimal(value), Decimal(full)) * points / full
    return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def level_for(score: int) -> RiskLevel:
    if score >= HIGH_FROM:
        return RiskLevel.HIGH
    if score >= MEDIUM_FROM:
        return RiskLevel.MEDIUM
    return RiskLevel.LOW


def _customer(cid: str, invoices: Sequence[Invoice], history: Mapping[str, Sequence[LedgerEntry]],
              as_of: date) -> CustomerRisk:
    ordered = sorted(invoices, key=lambda i: (i.due_date, i.issue_date, i.id))
    name = max(invoices, key=lambda i: (i.issue_date, i.id)).customer_name
    open_invs = [i for i in ordered if i.is_open]
    open_balance: dict[str, Decimal] = {}
    overdue_balance: dict[str, Decimal] = {}
    for inv in open_invs:
        amount = round_money(inv.balance, inv.currency)
        open_balance[inv.currency] = open_balance.get(inv.currency, Decimal(0)) + amount
        if inv.due_date < as_of:
            overdue_balance[inv.currency] = overdue_balance.get(inv.currency, Decimal(0)) + amount
    scored = [(d, not i.is_open) for i in ordered if (d := days_late(i, as_of)) is not None]
    late = [d for d, _ in scored]
    avg = _mean(late)
    trend, recent, older = _trend(scored)
    oldest = max([(as_of - i.due_date).days for i in open_invs] + [0])
    ignored = sum(reminders_ignored(i, history.get(i.id, ()), as_of) for i in ordered)
    disputed = sum(1 for i in open_invs if i.disputed)

    reasons: list[str] = []
    score = 0
    if avg is not None and avg > 0:
        score += _scaled(avg, LATE_FULL_DAYS, LATE_POINTS)
        reasons.append(f"pays {avg} days late on average ({_count(len(late), 'invoice')})")
    if oldest > 0:
        score += _scaled(oldest, OVERDUE_FULL_DAYS, OVERDUE_POINTS)
        worst = min(open_invs, key=lambda i: (i.due_date, i.id))
        reasons.append(f"invoice {worst.number} is {oldest} days overdue "
                       f"({format_money(worst.balance, worst.currency)} open)")
    if ignored:
        score += min(IGNORED_POINTS, IGNORED_EACH * ignored)
        reasons.append(f"ignored {_count(ignored, 'reminder')}")
    if trend == Trend.WORSENING:
        score += WORSENING_POINTS
        reasons.append(f"paying later recently ({recent} days late vs {older} before)")
    elif trend == Trend.IMPROVING:
        reasons.append(f"paying sooner recently ({recent} days late vs {older} before)")
    if disputed:
        score += DISPUTED_POINTS
        reasons.append(f"{_count(disputed, 'open invoice')} disputed")
    if not reasons:
        reasons.append("pays on time" if late else "no payment history yet")
    score = max(0, min(100, score))
    return CustomerRisk(
        customer_id=cid, customer_name=name, open_invoices=len(open_invs),
        open_balance=open_balance, overdue_balance=overdue_balance, scored_invoices=len(late),
        avg_days_late=avg, recent_avg_days_late=recent, older_avg_days_late=older, trend=trend,
        oldest_overdue_days=oldest, reminders_ignored=ignored, disputed=disputed, score=score,
        level=level_for(score), reasons=tuple(reasons))


def customer_risks(invoices: Iterable[Invoice], history: Mapping[str, Sequence[LedgerEntry]],
                   as_of: date) -> tuple[CustomerRisk, ...]:
    """Every customer with an invoice, highest risk score first."""
    by_customer: dict[str, list[Invoice]] = {}
    for inv in _counted(invoices, as_of):
        by_customer.setdefault(inv.customer_id, []).append(inv)
    risks = [_customer(cid, invs, history, as_of) for cid, invs in by_customer.items()]
    return tuple(sorted(risks, key=lambda r: (-r.score, r.customer_name, r.customer_id)))


def risk_levels(invoices: Iterable[Invoice], history: Mapping[str, Sequence[LedgerEntry]],
                *, as_of: date) -> dict[str, RiskLevel]:
    """customer id -> risk level: what the planner's rules can key on."""
    return {r.customer_id: r.level for r in customer_risks(invoices, history, as_of)}


def build_report(invoices: Iterable[Invoice], history: Mapping[str, Sequence[LedgerEntry]],
                 *, as_of: date, title: str = "Receivables") -> ArReport:
    """Aging, DSO and customer risk in one value."""
    invs = list(invoices)
    counted = _counted(invs, as_of)
    return ArReport(
        title=title, as_of=as_of, aging=aging(invs, as_of), dso=dso(invs, as_of),
        customers=customer_risks(invs, history, as_of),
        open_invoices=sum(1 for i in counted if i.is_open),
        paid_invoices=sum(1 for i in counted if i.status == InvoiceStatus.PAID))


__all__ = ["BUCKETS", "AgingRow", "ArReport", "CustomerRisk", "DsoFigure", "RiskLevel", "Trend",
           "aging", "bucket_of", "build_report", "customer_risks", "days_late", "dso",
           "level_for", "reminders_ignored", "risk_levels"]
