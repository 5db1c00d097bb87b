"""One e-mail as MIME (text and HTML alternatives, optional PDFs), and what a send can report.

A send has three outcomes, and the difference matters for exactly-once:
SENT (the server accepted it), UNSENT (we know it was not accepted: refused connection,
rejected sender/recipient/content — safe to try again) and UNKNOWN (the connection dropped or
timed out while the message was being handed over: it may have been accepted). Neither SMTP
nor SES can be asked afterwards whether a message went out, so UNKNOWN is final: the caller
records it as ambiguous and never sends it again automatically. Pure: the transports that
implement `Mailer` live in ar_sync.delivery.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from enum import StrEnum
from typing import Protocol

from ar_sync.domain.addresses import address_problem, mailbox
from ar_sync.domain.models import CustomerMessage


class Outcome(StrEnum):
    SENT = "sent"
    UNSENT = "unsent"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    ref: str | None = None  # the provider's id (SES MessageId) or our Message-ID
    detail: str = ""
    permanent: bool = False  # UNSENT and will not go better by retrying (bad address)


_TAG_SAFE = re.compile(r"^[A-Za-z0-9_.@-]{1,200}$")


def tag_value(value: str) -> str:
    """An SES message-tag value (only [A-Za-z0-9_.@-]); others are base32-encoded, reversibly,
    so a bounce notification leads back to the tenant and customer."""
    if _TAG_SAFE.match(value) and not value.startswith("b32-"):
        return value
    return "b32-" + base64.b32encode(value.encode()).decode().rstrip("=")


def tag_text(value: str) -> str:
    """The inverse of tag_value."""
    if not value.startswith("b32-"):
        return value
    data = value[4:]
    return base64.b32decode(data + "=" * (-len(data) % 8)).decode()


def wire_bytes(message: EmailMessage) -> bytes:
    """The message with CRLF line ends, as SMTP and SES expect (smtplib sends bytes as is)."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


@dataclass(frozen=True)
class Envelope:
    """Who the server is told the message is from and for (SMTP MAIL FROM / RCPT TO, SES
    Destination): our own checked addresses, never parsed back out of the headers, so
    nothing written into a header can add a recipient."""

    sender: str
    recipients: tuple[str, ...]

    def __post_init__(self) -> None:
        for address in (self.sender, *self.recipients):
            if problem := address_problem(address):
                raise ValueError(f"envelope address {address!r}: {problem}")
        if not self.recipients:
            raise ValueError("an envelope needs a recipient")


class Mailer(Protocol):
    """A way to hand a finished message to a mail server, to the envelope's recipients only."""

    def send(self, message: EmailMessage, *, envelope: Envelope,
             tags: Mapping[str, str]) -> SendResult: ...


@dataclass(frozen=True)
class Sender:
    """Who messages come from: the business's configured address, replies to the business.
    Both are checked here (one mailbox each), so a bad setting fails when it is read."""

    from_address: str  # 'Acme Ltd <accounts@acme.example>'
    reply_to: str | None = None

    def __post_init__(self) -> None:
        mailbox(self.from_address)
        if self.reply_to:
            mailbox(self.reply_to)

    @property
    def address(self) -> str:
        """The plain address (the envelope sender)."""
        return mailbox(self.from_address)[1]

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    def envelope(self, to: str) -> Envelope:
        return Envelope(self.address, (to,))


def attachment_name(invoice_number: str) -> str:
    """A PDF's file name from an invoice number that may hold anything a platform allows:
    control characters (CR/LF would break the header), path separators and quotes go."""
    kept = "".join(c if c.isprintable() and c not in '/\\"' else " " for c in invoice_number)
    return f"Invoice {' '.join(kept.split())[:80] or 'invoice'}.pdf"


def one_line(text: str) -> str:
    """Header text on one line: a CR/LF from a platform's data never reaches a header."""
    return " ".join(text.split())


def build_mime(message: CustomerMessage, *, sender: Sender, now: datetime,
               attachments: Sequence[tuple[str, bytes]] = ()) -> EmailMessage:
    """The MIME message: text and HTML alternatives, optional PDFs given as (invoice number,
    bytes). Pure."""
    mime = EmailMessage()
    mime["From"] = sender.from_address
    mime["To"] = message.to
    if sender.reply_to:
        mime["Reply-To"] = sender.reply_to
    mime["Subject"] = one_line(message.subject)
    mime["Date"] = format_datetime(now)
    mime["Message-ID"] = message.message_id
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    for filename, data in attachments:
        mime.add_attachment(data, maintype="application", subtype="pdf",
                            filename=attachment_name(filename))
    return mime


def notice_mime(*, to: str, subject: str, text: str, message_id: str, sender: Sender,
                now: datetime) -> EmailMessage:
    """A plain internal notice (escalations): to a person at the business, not the customer."""
    mime = EmailMessage()
    mime["From"] = sender.from_address
    mime["To"] = to
    mime["Subject"] = one_line(subject)
    mime["Date"] = format_datetime(now)
    mime["Message-ID"] = message_id
    mime["Auto-Submitted"] = "auto-generated"
    mime.set_content(text)
    return mime
