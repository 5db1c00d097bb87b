"""The quiet index end to end: the same book run day after day with the index and without it
(every open invoice read and planned, as before the index) does exactly the same writes and
reports the same outcomes, while customers pay, invoices arrive, disputes come and go and
runs are missed or repeated. A quiet invoice the index should not have left out shows up as
a write the indexed run lacks."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from journey_support import by_age

from ar_sync.domain.models import Invoice, InvoiceStatus
from ar_sync.domain.pauses import Pause
from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.rules.policy import Policy, load_policy, parse_policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.run import run_tenant
from ar_sync.sync.store import Snapshot

from .fakes import FakeConnector, FakePlatform, FaultPlan
from .harness import CIPHER
from .test_sync_faults_fake import CONNECTION

START = date(2026, 11, 2)  # a Monday
RULES: dict[str, Policy] = {name: load_policy(name) for name in ("default", "firm", "email")}
# and the journey before issue 21 (latest stage by age, fees as agreed terms from go-live)
RULES.update({f"{name}-by-age": by_age(RULES[name]) for name in ("default", "firm")})
RULES["any-day"] = parse_policy("""
version: 1
calendar: {timezone: UTC, send_on: any_day}
reminders:
  - {name: soon, days: -1, tone: friendly, email: true, note: "soon {invoice_number}"}
  - {name: late, days: 2, tone: neutral, email: true, note: "late {invoice_number}"}
  - {name: later, days: 9, tone: firm, email: false, note: "later {invoice_number}"}
late_fees:
  - {name: fee, kind: fixed, amount: 20, grace_days: 4, every: 6, max_occurrences: 4,
     cap_amount: 70, label: "fee {period}"}
escalations:
  - name: ignored
    when: [{reminders_ignored: 2}, {days_overdue: 25, balance_over: 500}]
    to: {person: "Credit control"}
""", "any-day.yaml")
RULES["any-day-by-age"] = by_age(RULES["any-day"])


class NoIndexStore(SQLiteStore):
    """The store as it was before the index: every open invoice, every run."""

    def active_invoices(self, connection_id: str, *, on: date, stamp: str) -> Snapshot:
        return Snapshot(self.open_invoices(connection_id))

    def save_quiet(self, connection_id: str, until: Mapping[str, date], *, since: date,
                   stamp: str, versions: Mapping[str, int]) -> int:
        return 0


class CountingStore(SQLiteStore):
    """The real store, counting the invoices its index left out."""

    left_out = 0

    def active_invoices(self, connection_id: str, *, on: date, stamp: str) -> Snapshot:
        got = super().active_invoices(connection_id, on=on, stamp=stamp)
        self.left_out += got.quiet
        return got


def _invoice(n: int, due: date, total: int, email: bool, at: datetime) -> Invoice:
    return Invoice(platform="fake", tenant=CONNECTION.id, id=f"inv-{n}", number=f"INV-{n}",
                   customer_id=f"c{n % 3}", customer_name=f"Customer {n % 3}",
                   customer_email="pay@example.com" if email else None,
                   issue_date=due - timedelta(days=30), due_date=due, currency="USD",
                   total=Decimal(total), balance=Decimal(total), updated_at=at)


def _change(state: FakePlatform, rng: random.Random, at: datetime, n: int) -> None:
    """What customers and bookkeepers do on one day (to both platforms alike)."""
    invoices = [i for i in state.invoices.values() if i.is_open]
    roll = rng.random()
    if roll < 0.3:
        due = at.date() + timedelta(days=rng.randint(-20, 15))
        state.invoices[f"inv-{n}"] = _invoice(n, due, rng.choice([80, 900, 4000]),
                                              rng.random() < 0.6, at)
    elif invoices and roll < 0.5:
        inv = rng.choice(invoices)
        paid = inv.balance if rng.random() < 0.5 else (inv.balance / 2).quantize(Decimal("1"))
        balance = inv.balance - paid
        state.invoices[inv.id] = inv.model_copy(update={
            "balance": balance, "updated_at": at,
            "status": InvoiceStatus.PAID if balance <= 0 else inv.status})
    elif invoices and roll < 0.6:
        inv = rng.choice(invoices)
        state.invoices[inv.id] = inv.model_copy(update={"disputed": not inv.disputed,
                                                        "updated_at": at})


def _outcomes(report: Any) -> list[tuple[str, str]]:
    return sorted((a.key, a.outcome) for a in report.actions)


def _schedule(folder: Path, rules: str, seed: int, days: int) -> int:
    """Both stores through the same days; returns how many invoices the index left out."""
    rng = random.Random(seed)
    indexed = CountingStore(folder / "index.db", cipher=CIPHER)
    stores = [indexed, NoIndexStore(folder / "plain.db", cipher=CIPHER)]
    at = datetime.combine(START, datetime.min.time(), tzinfo=UTC) + timedelta(hours=14)
    book = {f"inv-{n}": _invoice(n, START + timedelta(days=rng.randint(-40, 20)),
                                 rng.choice([80, 900, 4000]), rng.random() < 0.6, at)
            for n in range(8)}
    states = [FakePlatform(invoices=dict(book)), FakePlatform(invoices=dict(book))]
    for s in stores:
        s.save_connection(CONNECTION)
    for day in range(days):
        at += timedelta(days=1)
        change = rng.getstate()
        for state in states:  # the same changes on both platforms
            rng.setstate(change)
            _change(state, rng, at, 100 + day)
        if rng.random() < 0.2:
            continue  # a missed day
        for again in range(2 if rng.random() < 0.2 else 1):  # sometimes a second run
            when = at + timedelta(hours=2 * again)
            with_index, plain = (
                run_tenant(store, CONNECTION.id, clock=lambda w=when: w, policy=RULES[rules],
                           connector=FakeConnector(state, CONNECTION,
                                                   FaultPlan(rng=random.Random(0))))
                for store, state in zip(stores, states, strict=True))
            assert _outcomes(with_index) == _outcomes(plain), (day, again)
            assert with_index.invoices_open == plain.invoices_open
            assert (with_index.planned, with_index.done) == (plain.planned, plain.done)
        assert states[0].notes == states[1].notes
        assert states[0].fees == states[1].fees
        assert states[0].emails == states[1].emails
    for s in stores:
        s.close()
    return indexed.left_out


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rules=st.sampled_from(sorted(RULES)), seed=st.integers(min_value=0, max_value=2**32),
       days=st.integers(min_value=5, max_value=35))
def test_runs_with_the_index_write_what_runs_without_it_write(
        tmp_path_factory: Any, rules: str, seed: int, days: int) -> None:
    _schedule(tmp_path_factory.mktemp("quiet"), rules, seed, days)


def test_the_index_does_leave_invoices_out(tmp_path: Path) -> None:
    for rules in sorted(RULES):  # the comparison above is not between two full paths
        assert _schedule(tmp_path / rules, rules, 7, 20) > 0, rules


def _quiet_after_two_runs(tmp_path: Path, setup: Any, *, dry_first: bool = False) -> int:
    """Runs a calm book twice (a day apart; the first a dry run or not) and returns what the
    second run left out."""
    store = CountingStore(tmp_path / "ar.db", cipher=CIPHER)
    store.save_connection(CONNECTION)
    at = datetime.combine(START, datetime.min.time(), tzinfo=UTC) + timedelta(hours=14)
    state = FakePlatform(invoices={f"inv-{n}": _invoice(n, START + timedelta(days=30), 900,
                                                         True, at) for n in range(4)})
    setup(store)
    for day in (0, 1):
        when = at + timedelta(days=day)
        run_tenant(store, CONNECTION.id, clock=lambda w=when: w, policy=RULES["any-day"],
                   connector=FakeConnector(state, CONNECTION, FaultPlan(rng=random.Random(0))),
                   dry_run=dry_first and day == 0)
    left_out = store.left_out
    store.close()
    return left_out


def test_pauses_payment_plans_and_dry_runs_take_the_full_path(tmp_path: Path) -> None:
    """No marks with a pause or a payment plan in the tenant, none left by a dry run."""
    assert _quiet_after_two_runs(tmp_path / "plain", lambda s: None) == 4  # the index works
    paused = Pause(customer_id="c1", reason="other", since=START)
    assert _quiet_after_two_runs(
        tmp_path / "paused", lambda s: s.add_pause(CONNECTION.id, paused)) == 0
    agreed = PaymentPlan(invoice="INV-2", instalments=2, first_due=START + timedelta(days=40))
    assert _quiet_after_two_runs(
        tmp_path / "plan", lambda s: s.save_payment_plan(CONNECTION.id, agreed)) == 0
    assert _quiet_after_two_runs(tmp_path / "dry", lambda s: None, dry_first=True) == 0
