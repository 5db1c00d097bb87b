"""Hostile rules files (issue 20): what validates must be safe to run.

`amount: 1e400` (YAML text, a finite Decimal) validated and was charged; a string-alias bomb
under the node limit validated and tried to allocate gigabytes; `rules diff` died with a
traceback on a stored invoice with an absurd date. Each is refused with file, line and
field, or skipped with a warning."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sync.fakes import FakeConnector, FakePlatform, FaultPlan
from sync.harness import CIPHER
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.domain.models import Invoice
from ar_sync.domain.money import ISO_4217_CODES, max_rule_amount, minor_units, parse_amounts
from ar_sync.rules.policy import PolicyError, parse_policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import Connection
from ar_sync.sync.run import run_tenant

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _issue(text: str) -> tuple[int | None, str, str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "hostile.yaml")
    first = caught.value.issues[0]
    assert first.file == "hostile.yaml"
    return first.line, first.path, first.message


@pytest.mark.parametrize("amount, field", [
    ("1e400", "late_fees[0].amount"), ("{USD: 1e400}", "late_fees[0].amount"),
    ("{JPY: 100000000001}", "late_fees[0].amount"), ("10000001", "late_fees[0].amount"),
    ("{BHD: 100000000.001}", "late_fees[0].amount"),
])
def test_huge_amounts_are_refused_with_file_line_and_field(amount: str, field: str) -> None:
    line, path, message = _issue(
        f"late_fees:\n  - name: fixed\n    kind: fixed\n    amount: {amount}\n")
    assert (line, path) == (4, field) and "largest amount" in message


@pytest.mark.parametrize("text, field", [
    ("late_fees:\n  - {name: p, kind: percent, percent: 1e400}\n", "late_fees[0].percent"),
    ("late_fees:\n  - {name: i, kind: interest, reference_rate: 60, margin: 60}\n",
     "late_fees[0]"),
    ("late_fees:\n  - {name: f, kind: fixed, amount: 5, max_occurrences: 100000}\n",
     "late_fees[0].max_occurrences"),
    ("late_fees:\n  - {name: f, kind: fixed, amount: 5, cap_amount: {EUR: 1e30}}\n",
     "late_fees[0].cap_amount"),
    ("exclude: {below_balance: 1e400}\n", "exclude.below_balance"),
    ("payment_plans:\n  - {invoice: INV-1, instalments: 3, first_due: 2026-12-01, "
     "amount: 1e400}\n", "payment_plans[0].amount"),
    ("escalations:\n  - {name: e, when: {days_overdue: 30}, to: {agency: A}, notify: "
     "{email: [" + ", ".join(f"a{i}@x.example" for i in range(11)) + "]}}\n",
     "escalations[0].notify.email"),
])
def test_rates_counts_and_lists_are_bounded(text: str, field: str) -> None:
    _line, path, _message = _issue(text)
    assert path.startswith(field), path


def test_the_largest_amounts_accepted_stay_within_their_currency_bound() -> None:
    for currency in sorted(ISO_4217_CODES):
        limit = max_rule_amount(currency)
        assert limit == Decimal(10) ** (11 - minor_units(currency))
        assert parse_amounts({currency: str(limit)}).for_currency(currency) == limit
        with pytest.raises(ValueError):
            parse_amounts({currency: str(limit + Decimal(1).scaleb(-minor_units(currency)))})


@settings(max_examples=60, deadline=None)
@given(amount=st.decimals(min_value=0, max_value=Decimal(10) ** 9, places=2),
       balance=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10) ** 9, places=2))
def test_any_accepted_fee_plans_finite_money(amount: Decimal, balance: Decimal) -> None:
    """What validates can be planned: finite, rounded to cents, never above the amount."""
    from ar_sync.planner.plan import plan

    policy = parse_policy(f"calendar: {{send_on: any_day}}\nlate_fees:\n  - {{name: f, "
                          f"kind: fixed, amount: {{USD: {amount}}}, backfill: all}}\n", "p.yaml")
    invoice = Invoice(platform="fake", tenant="t", id="i", number="INV-1", customer_id="c",
                      customer_name="C", issue_date=date(2026, 9, 1), due_date=date(2026, 10, 1),
                      currency="USD", total=balance, balance=balance, updated_at=NOW)
    for action in plan([invoice], {}, policy, date(2026, 11, 30)):
        fee = getattr(action, "amount", None)
        if fee is not None:
            assert fee.amount.is_finite() and fee.amount <= amount
            assert fee.amount == fee.amount.quantize(Decimal("0.01"))


# ----------------------------------------------------------------------------- alias bombs


def test_a_string_alias_bomb_under_the_node_limit_is_refused() -> None:
    """60 KB repeated 30,000 times: 30,001 nodes (under the 50,000 limit) but 1.8 GB of text
    once expanded. It validated before, and a run then built that text."""
    long = "x" * 60_000
    text = (f'exclude:\n  customer_names: [&a "{long}", '
            + ", ".join(["*a"] * 30_000) + "]\n")
    line, path, message = _issue(text)
    assert line == 2 and path.startswith("exclude.customer_names[")
    assert "expand to more than" in message


def test_aliases_of_short_values_are_still_fine() -> None:
    text = ("reminders:\n  - {name: a, days: 1, note: &n \"Invoice {invoice_number}.\"}\n"
            + "".join(f"  - {{name: s{i}, days: {i + 2}, note: *n}}\n" for i in range(20)))
    assert len(parse_policy(text, "ok.yaml").reminders) == 21


# ----------------------------------------------------------------------------- absurd invoices

CONN = Connection(id="fake:absurd", platform="fake", external_id="absurd", created_at=NOW)


def _invoice(n: int, due: date) -> Invoice:
    return Invoice(platform="fake", tenant=CONN.id, id=f"i{n}", number=f"INV-{n}",
                   customer_id="c", customer_name="C", issue_date=min(due, date(2026, 9, 1)),
                   due_date=due, currency="USD", total=Decimal(100), balance=Decimal(100),
                   updated_at=NOW)


def test_an_absurd_invoice_is_never_stored_and_rules_diff_never_tracebacks(
        tmp_path: Path) -> None:
    db = tmp_path / "ar.db"
    store = SQLiteStore(db, cipher=CIPHER)
    store.save_connection(CONN)
    absurd = _invoice(2, date(1, 1, 1))
    state = FakePlatform(invoices={i.id: i for i in [_invoice(1, date(2026, 10, 1)), absurd]})
    report = run_tenant(store, CONN.id, now=NOW, policy=parse_policy("{}", "x.yaml"),
                        connector=FakeConnector(state, CONN, FaultPlan(rng=random.Random(0))))
    assert any("INV-2" in w for w in report.warnings)
    assert [i.id for i in store.open_invoices(CONN.id)] == ["i1"]  # filtered before storing

    # a store written before the fix holds it: diff skips it with a warning, no traceback
    store.save_invoices(CONN.id, [absurd], replace_all=False)
    store.close()
    new = tmp_path / "new.yaml"
    new.write_text("calendar: {send_on: any_day}\nreminders:\n  - {name: r, days: 7}\n")
    runner = CliRunner()
    for fmt in ("table", "json"):
        out = runner.invoke(app, ["rules", "diff", str(new), "--db", str(db), "--today",
                                  "2026-11-30", "--format", fmt], env={"COLUMNS": "120"})
        assert out.exit_code == 0, out.output
        assert out.exception is None
        if fmt == "json":
            assert any("INV-2" in s for s in json.loads(out.stdout)["skipped"])
