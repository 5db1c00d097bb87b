"""An invoice's online link is stable: read once in its life. The first run that writes a
note using {payment_link} reads it (GET Invoices/{id}/OnlineInvoice); the snapshot keeps it,
so a later run's note for the same invoice, and every later fetch, read it no more."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ar_sync.rules.policy import parse_policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.run import run_tenant
from ar_sync_emulators.books import demo_company
from ar_sync_emulators.demo import DEMO_NOW, REDIRECT_URI, connect_through_oauth
from ar_sync_emulators.xero.server import XeroEmulator

LINKS = "GET /api.xro/2.0/Invoices/{id}/OnlineInvoice"
RULES = parse_policy("""
calendar: {send_on: any_day}
reminders:
  - {name: first, days: 1, tone: friendly, note: "Overdue; pay here: {payment_link}"}
  - {name: second, days: 20, tone: firm, note: "Still overdue; pay here: {payment_link}"}
""", "links.yaml")


def test_a_link_is_read_once_in_the_invoices_life(tmp_path: Path) -> None:
    emu = XeroEmulator(per_minute=None, per_day=None, concurrent=None, app_per_minute=None)
    emu.seed(demo_company(11, customers=6, invoices=40))
    with emu.serve():
        store = SQLiteStore(tmp_path / "ar.db")
        settings = emu.settings(redirect_uri=REDIRECT_URI)
        [connection] = connect_through_oauth(store, "xero", settings, now=DEMO_NOW)

        def run(days: int) -> tuple[int, set[str]]:
            emu.counters.reset()
            report = run_tenant(store, connection.id, settings=settings, policy=RULES,
                                now=DEMO_NOW + timedelta(days=days, seconds=5), full=True)
            assert not report.errors, report.errors
            return (emu.counters.calls.get(LINKS, 0),
                    {a.invoice_id for a in report.actions if a.outcome == "done"})

        first_reads, first = run(0)
        assert first_reads == len(first) > 0  # every note read its invoice's link once
        urls = {i.id: i.payment_link for i in store.open_invoices(connection.id)}
        assert all(str(urls[i]).startswith("http") for i in first if i in urls)
        second_reads, second = run(25)  # the second stage, a full fetch in between
        again = first & second
        assert again, "the later stage wrote for none of the same invoices"
        assert second_reads == len(second - first)  # only invoices never read before
        notes = [n for inv in emu.org().invoices.values() if inv.id in again
                 for n in inv.history if n.changes == "Note"]
        assert notes and all("/online/" in n.details for n in notes)  # the stored URL
