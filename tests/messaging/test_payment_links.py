"""The payment link in ar-sync's own customer e-mails, from both emulators through the real SDKs:
Xero's online invoice URL, QuickBooks' InvoiceLink (for invoices that take online payments);
the link opens the platform's page; QuickBooks notes never carry the lazy reference."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import requests
from sync.harness import CIPHER

from ar_sync.delivery.transports import SmtpMailer
from ar_sync.messages.mime import Sender
from ar_sync.messages.sending import MailSetup
from ar_sync.rules.policy import load_policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.run import run_tenant
from ar_sync_emulators.demo import DEMO_NOW, connect_through_oauth, running_sandbox
from ar_sync_emulators.smtp_sink import SmtpSink


@pytest.fixture(scope="module")
def sandbox() -> Iterator[object]:
    with running_sandbox(seed=3) as running:
        for row in running.quickbooks.rows["Invoice"].values():
            row["AllowOnlineCreditCardPayment"] = True  # the company takes card payments
        yield running


@pytest.mark.parametrize(("platform", "path"), [("quickbooks", "/portal/app/CommerceNetwork/"),
                                                ("xero", "/online/")])
def test_customer_emails_carry_the_platforms_payment_link(  # type: ignore[no-untyped-def]
        platform: str, path: str, sandbox, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    (connection, *_) = connect_through_oauth(store, platform, sandbox.settings[platform],
                                             now=DEMO_NOW)
    with SmtpSink().serve() as sink:
        mail = MailSetup(sender=Sender("Demo <ar@demo.example>"),
                         mailer=SmtpMailer(sink.settings()))
        report = run_tenant(store, connection.id, settings=sandbox.settings, now=DEMO_NOW,
                            policy=load_policy("email"), mail=mail)
        assert report.errors == [] and report.ambiguous == 0
        got = sink.snapshot()
    assert got
    base = getattr(sandbox, platform).url
    for sent in got:
        text = message_from_bytes(sent.data, policy=policy.default).get_body(
            ("plain",)).get_content()
        links = [line.split("Pay online: ", 1)[1] for line in text.splitlines()
                 if "Pay online: " in line]
        assert links and all(link.startswith(base + path) for link in links), text
        assert "invoice-link:" not in text and "online-invoice:" not in text
    page = requests.get(links[0], timeout=5)
    assert page.status_code == 200 and "due" in page.text
    if platform == "quickbooks":
        notes = [a.get("Note", "") for a in sandbox.quickbooks.rows["Attachable"].values()]
        assert notes and not any("quickbooks-invoice-link" in n for n in notes)
