"""A UK VAT company end to end through run_tenant: fees carry the rule's VAT code and are
charged once, then an invoice deleted in QuickBooks leaves the snapshot on the next
incremental run (seen through /cdc) and nothing more is planned for it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from ar_sync.domain.money import to_decimal
from ar_sync.domain.references import key_references
from ar_sync.rules.policy import parse_policy
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.run import run_tenant
from ar_sync_emulators.demo import DEMO_NOW, DEMO_TODAY, REDIRECT_URI, connect_through_oauth
from ar_sync_emulators.quickbooks.companies import real_company
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator

RULES = ("calendar: {send_on: any_day}\njourney: {fee_notice: agreed}\nlate_fees:\n"
         "  - {name: vat-fee, kind: fixed, amount: 20, tax: '20.0% S', backfill: all,\n"
         "     grace_days: 7}\n")


def test_uk_company_fees_with_vat_then_a_deletion(tmp_path: Path) -> None:
    emu = QuickBooksEmulator(edition="UK", realm_id="9341453000000077",
                             clock=lambda: DEMO_NOW)
    emu.seed_rows(*real_company("UK", today=DEMO_TODAY))
    store = SQLiteStore(tmp_path / "ar.db", cipher=TokenCipher(TokenCipher.generate_key()))
    policy = parse_policy(RULES, "uk.yaml")
    with emu.serve():
        settings = {"quickbooks": emu.settings(redirect_uri=REDIRECT_URI)}
        (connection,) = connect_through_oauth(store, "quickbooks", settings["quickbooks"],
                                              now=DEMO_NOW)
        totals = {i: to_decimal(v["TotalAmt"]) for i, v in emu.rows["Invoice"].items()}
        first = run_tenant(store, connection.id, settings=settings, now=DEMO_NOW,
                           policy=policy, clock=lambda: DEMO_NOW)
        assert first.errors == [] and first.failed == 0, first.actions
        fees = [a for a in first.actions if a.kind == "late_fee"]
        assert len(fees) == 7 and {a.outcome for a in fees} == {"done"}  # every overdue one
        for iid, before in totals.items():
            inv = emu.rows["Invoice"][iid]
            lines = [ln for ln in inv["Line"] if key_references(ln.get("Description"))]
            for line in lines:  # the rule's code, on the line
                assert line["SalesItemLineDetail"]["TaxCodeRef"] == {"value": "2"}
            if lines:  # 20 + 20 % VAT, nothing else moved
                assert to_decimal(inv["TotalAmt"]) - before == Decimal("24.00")
        gone = next(i for i, v in emu.rows["Invoice"].items()
                    if v["DocNumber"] == "PART-PAID-1")
        emu.delete(gone)
        later = DEMO_NOW + timedelta(hours=2)
        second = run_tenant(store, connection.id, settings=settings, now=later,
                            policy=policy, clock=lambda: later, full=False)
        assert second.errors == [] and second.done == 0
        assert gone not in {i.id for i in store.open_invoices(connection.id)}
        assert all(a.invoice_id != gone for a in second.actions)
        keys = [e.key for e in emu.effects() if e.kind == "late_fee"]
        assert len(keys) == len(set(keys)) == 6  # nothing twice (the deleted one took its fee)
