"""Invoice PDFs through the real SDKs (python-quickbooks `download_pdf`, xero-python
`get_invoice_as_pdf`) from both emulators, attached to the customer's e-mail."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sync.harness import CIPHER

from ar_sync.delivery.transports import SmtpMailer
from ar_sync.messages.mime import Sender
from ar_sync.messages.sending import MailSetup
from ar_sync.rules.policy import load_policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.run import open_connector, run_tenant
from ar_sync_emulators.demo import DEMO_NOW, connect_through_oauth, running_sandbox
from ar_sync_emulators.smtp_sink import SmtpSink


@pytest.fixture(scope="module")
def sandbox() -> Iterator[object]:
    with running_sandbox(seed=3) as running:
        yield running


@pytest.mark.parametrize("platform", ["quickbooks", "xero"])
def test_pdf_is_fetched_and_attached(platform: str, sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    (connection, *_) = connect_through_oauth(store, platform, sandbox.settings[platform],
                                             now=DEMO_NOW)
    connector = open_connector(store, connection, sandbox.settings, CallBudget(),
                               lambda: DEMO_NOW)
    first = connector.fetch_open_invoices(None).invoices[0]
    pdf = connector.invoice_pdf(first)  # type: ignore[attr-defined]
    assert pdf is not None and pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert first.number.encode() in pdf

    policy = load_policy("email")
    policy = policy.model_copy(update={"email": policy.email.model_copy(
        update={"attach_pdf": True})})
    with SmtpSink().serve() as sink:
        mail = MailSetup(sender=Sender("Demo <ar@demo.example>"),
                         mailer=SmtpMailer(sink.settings()))
        report = run_tenant(store, connection.id, settings=sandbox.settings, now=DEMO_NOW,
                            policy=policy, mail=mail)
        assert report.errors == [] and report.ambiguous == 0
        got = sink.snapshot()
    assert got
    msg = message_from_bytes(got[0].data, policy=policy_default())
    attachments = list(msg.iter_attachments())
    listed = msg.get_body(("plain",)).get_content()
    assert attachments and all(a.get_content_type() == "application/pdf" for a in attachments)
    for a in attachments:
        number = a.get_filename().removeprefix("Invoice ").removesuffix(".pdf")
        assert number in listed and number.encode() in a.get_content()


def policy_default():  # type: ignore[no-untyped-def]
    return policy.default
