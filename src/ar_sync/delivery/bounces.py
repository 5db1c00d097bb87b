"""Bounces and complaints reported by Amazon SES (notifications through SNS).

SES publishes a JSON notification per event to an SNS topic (configuration set event
destination, or the identity's feedback notifications); subscribe `lambda_handler` to it.
ar-sync tags every message it sends with `tenant` and `customer` (SES message tags travel
in `mail.tags`), so an event finds its contact without a lookup table:

* a permanent (hard) bounce records the address as bounced: no more e-mails to it until
  someone sets a new one (`ar-sync contact set CUSTOMER --email ...`);
* a complaint (the customer marked it as spam) opts the customer out;
* transient bounces change nothing (SES already retried).
SMTP providers report bounces by e-mail to the envelope sender; read those by hand and use
`ar-sync contact set`. Source: SES Developer Guide, "Amazon SES notification contents".
A record counts only when its SNS signature holds (delivery/sns_signature.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from ar_sync.delivery.sns_signature import SnsSignatureError, SnsVerifier
from ar_sync.domain.addresses import valid_address
from ar_sync.domain.contacts import Contact
from ar_sync.messages.mime import tag_text

log = logging.getLogger(__name__)


class ContactBook(Protocol):
    def save_contact(self, contact: Contact) -> None: ...

    def contacts(self, tenant: str) -> dict[str, Contact]: ...


def _tag(mail: Mapping[str, Any], name: str) -> str | None:
    values = (mail.get("tags") or {}).get(name) or []
    return tag_text(str(values[0])) if values else None


def apply_notification(book: ContactBook, notice: Mapping[str, Any],
                       now: datetime | None = None) -> str | None:
    """Record one SES notification; returns what changed (for the log), None if nothing."""
    now = now or datetime.now(UTC)
    kind = notice.get("notificationType") or notice.get("eventType")
    mail = notice.get("mail") or {}
    tenant, customer = _tag(mail, "tenant"), _tag(mail, "customer")
    if not tenant or not customer:
        return None  # not one of ours (or sent without tags)
    current = book.contacts(tenant).get(customer) or Contact(tenant=tenant,
                                                             customer_id=customer)
    if kind == "Bounce":
        bounce = notice.get("bounce") or {}
        if bounce.get("bounceType") != "Permanent":
            return None
        recipients = bounce.get("bouncedRecipients") or []
        address = next((r.get("emailAddress") for r in recipients
                        if valid_address(str(r.get("emailAddress", "")))), None)
        reason = str((recipients[0] if recipients else {}).get("diagnosticCode")
                     or bounce.get("bounceSubType") or "permanent bounce")[:200]
        book.save_contact(current.model_copy(update={
            "email": address or current.email, "bounced": reason, "updated_at": now,
            "source": "bounce"}))
        return f"{tenant}/{customer}: bounced"
    if kind == "Complaint":
        book.save_contact(current.model_copy(update={
            "opted_out": True, "updated_at": now, "source": "complaint"}))
        return f"{tenant}/{customer}: complaint, opted out"
    return None


def sns_notifications(event: Mapping[str, Any],
                      verifier: SnsVerifier) -> Iterable[Mapping[str, Any]]:
    """The SES notifications inside a Lambda SNS event whose SNS signature holds; unsigned,
    forged and malformed records are skipped (and logged without their content)."""
    for record in event.get("Records") or []:
        sns = record.get("Sns") if isinstance(record, Mapping) else None
        if not isinstance(sns, Mapping):
            log.warning("skipped a malformed SNS record")
            continue
        try:
            verifier.verify(sns)
            body = json.loads(sns["Message"])
        except SnsSignatureError as exc:
            log.warning("skipped an SNS record that is not signed by SNS: %s", exc)
            continue
        except (KeyError, TypeError, ValueError):
            log.warning("skipped a malformed SNS record")
            continue
        if isinstance(body, dict):
            yield body


