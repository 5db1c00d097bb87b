"""Invoice.payments from QuickBooks: the Payment entities linked to each open invoice, read in
one /batch of queries (never a call per invoice), so interest accrues on the balance as it was
each day (planner/interest.py), not on today's balance."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from qbo_helpers import Session

from ar_sync.domain.models import ApplyLateFee, Invoice, Money
from ar_sync.domain.money import to_decimal
from ar_sync.planner.plan import plan
from ar_sync.rules.policy import Policy, load_policy, parse_policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.run import run_tenant
from ar_sync_emulators.books import DEMO_TODAY

BATCH = "POST /v3/company/{realm}/batch"
INTEREST = parse_policy("""
journey: {fee_notice: agreed}  # the interest's terms taken as agreed: no announcement needed
late_fees:
  - {name: interest, kind: interest, rate: 12, every: month, mode: invoice, backfill: all}
""", "interest.yaml")


def _overdue_unpaid(qbo: Session, count: int) -> list[dict[str, object]]:
    rows = [r for r in qbo.emu.rows["Invoice"].values()
            if to_decimal(r["Balance"]) == to_decimal(r["TotalAmt"]) > 0
            and "#disputed" not in str(r.get("PrivateNote"))
            and date.fromisoformat(str(r["DueDate"])) < DEMO_TODAY - timedelta(days=70)]
    return rows[:count]


def interest(invoice: Invoice, policy: Policy = INTEREST) -> Decimal:
    actions = plan([invoice], {}, policy, DEMO_TODAY)
    return sum((a.amount.amount for a in actions
                if isinstance(a, ApplyLateFee) and a.invoice_id == invoice.id), Decimal(0))


def test_payments_come_from_the_linked_payment_entities_in_one_call(qbo: Session) -> None:
    targets = _overdue_unpaid(qbo, 12)
    paid: dict[str, list[tuple[date, Decimal]]] = {}
    for row in targets:
        iid, due = str(row["Id"]), date.fromisoformat(str(row["DueDate"]))
        total = to_decimal(row["TotalAmt"])
        first, second = (total * Decimal("0.4")).quantize(Decimal("0.01")), Decimal("10.00")
        qbo.emu.pay(iid, first, on=due + timedelta(days=10))
        qbo.emu.pay(iid, second, on=due + timedelta(days=40))
        rows = [qbo.emu.rows["Payment"][str(t["TxnId"])]
                for t in qbo.emu.invoice(iid)["LinkedTxn"] if t["TxnType"] == "Payment"]
        paid[iid] = [(date.fromisoformat(p["TxnDate"]), to_decimal(p["TotalAmt"]))
                     for p in rows]
        assert [d for d, _ in paid[iid]] == [due + timedelta(days=10), due + timedelta(days=40)]
    result = qbo.open().fetch_open_invoices()
    by_id = {i.id: i for i in result.invoices}
    for iid, expected in paid.items():
        assert by_id[iid].payments == tuple(expected)
    linked = sum(1 for i in result.invoices if i.payments)
    assert linked >= len(targets)
    assert qbo.emu.counters.calls[BATCH] == 1  # every invoice's payments, one request
    untouched = [i for i in result.invoices if i.is_open and i.balance == i.total]
    assert untouched and all(i.payments == () for i in untouched)


def test_interest_accrues_on_the_balance_as_it_was_each_day(qbo: Session) -> None:
    row = _overdue_unpaid(qbo, 1)[0]
    iid, due = str(row["Id"]), date.fromisoformat(str(row["DueDate"]))
    qbo.emu.pay(iid, to_decimal(row["TotalAmt"]) / 2, on=due + timedelta(days=20))
    half = to_decimal(row["TotalAmt"]) - to_decimal(qbo.emu.invoice(iid)["Balance"])
    invoice = next(i for i in qbo.open().fetch_open_invoices().invoices if i.id == iid)
    charged = interest(invoice)
    as_if_unknown = interest(invoice.model_copy(update={"payments": None}))
    # before the payment the whole total was owed: more interest than on today's balance
    assert charged > as_if_unknown > 0
    on_paid_down = interest(invoice.model_copy(update={
        "payments": ((due + timedelta(days=20), half),)}))
    assert charged == on_paid_down


def test_a_waiver_credit_is_not_counted_as_a_payment(qbo: Session) -> None:
    connector = qbo.open()
    row = _overdue_unpaid(qbo, 1)[0]
    invoice = next(i for i in connector.fetch_open_invoices().invoices if i.id == row["Id"])
    connector.waive_fee(invoice, "arfee", Money.of("5.00", invoice.currency), "Late fee",
                        key="arwaiver-payments")
    assert to_decimal(qbo.emu.invoice(invoice.id)["Balance"]) < invoice.balance
    again = next(i for i in qbo.open().fetch_open_invoices().invoices if i.id == invoice.id)
    assert again.payments == ()  # the credit memo's application is ours, not a payment


def test_payments_are_read_only_when_a_rule_accrues_interest(qbo: Session,
                                                            tmp_path: Path) -> None:
    """Payments change only interest: a run under fee rules without interest reads none."""
    row = _overdue_unpaid(qbo, 1)[0]
    qbo.emu.pay(str(row["Id"]), Decimal("10.00"))

    def stored_payments(policy: Policy, name: str) -> object:
        store = SQLiteStore(tmp_path / f"{name}.db")  # a preview: writes nothing, keeps the
        store.save_connection(qbo.connection.model_copy(update={"mode": "preview"}))  # snapshot
        tokens = qbo.store.load_tokens(qbo.connection.id)
        assert tokens is not None
        store.save_tokens(qbo.connection.id, tokens, expected_version=-1)
        report = run_tenant(store, qbo.connection.id, settings=qbo.settings, policy=policy,
                            full=True, now=qbo.emu.clock())
        assert not report.errors, report.errors
        return next(i for i in store.open_invoices(qbo.connection.id)
                    if i.id == row["Id"]).payments

    assert stored_payments(load_policy("default"), "fees") is None  # a percent fee
    payments = stored_payments(INTEREST, "interest")
    assert isinstance(payments, tuple) and len(payments) == 1
