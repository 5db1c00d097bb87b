"""Who a customer's e-mail goes to: per-customer opt-out, override address, bounces.

A Contact is stored per (tenant, customer id). `email` overrides the invoice's address;
`opted_out` stops ar-sync's e-mails (notes on the invoice still record each stage); a hard
bounce reported by the provider (SES via SNS) sets `bounced` so the address is not used again
until someone sets a new one. Pure resolution lives here; storage is the Store's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, field_validator

from ar_sync.domain.addresses import address_problem, valid_address


class Contact(BaseModel):
    """What ar-sync knows about where (and whether) to e-mail one customer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant: str
    customer_id: str
    email: str | None = None
    opted_out: bool = False
    bounced: str | None = None  # the provider's reason, when the address hard-bounced
    updated_at: datetime | None = None
    source: str = "cli"  # cli | platform | bounce

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not valid_address(value.strip()):
            raise ValueError(f"not an e-mail address: {value!r}")
        return value.strip() if value else None


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where one customer's message goes, or why it does not go."""

    address: str | None
    why_not: str | None = None  # 'opted out', 'no address', 'address bounced: ...'


def resolve(customer_id: str, invoice_address: str | None,
            contacts: Mapping[str, Contact]) -> Recipient:
    """The override address, else the platform's; nobody without a usable address."""
    contact = contacts.get(customer_id)
    if contact is not None and contact.opted_out:
        return Recipient(None, "opted out")
    address = (contact.email if contact is not None and contact.email else None) or (
        invoice_address.strip() if invoice_address else None)
    if not address:
        return Recipient(None, "no e-mail address")
    if problem := address_problem(address):
        return Recipient(None, f"e-mail address not usable: {problem}")
    if contact is not None and contact.bounced and (contact.email in (None, address)):
        return Recipient(None, f"address bounced: {contact.bounced}")
    return Recipient(address)


def changed_contact(old: Contact | None, tenant: str, customer_id: str, *, now: datetime,
                    source: str, email: str | None = None, clear_email: bool = False,
                    opted_out: bool | None = None) -> Contact:
    """A customer's contact after a change a person asked for: setting or clearing the
    override address forgets a recorded bounce. Raises ValueError for a bad address."""
    base = old or Contact(tenant=tenant, customer_id=customer_id)
    update: dict[str, object] = {"updated_at": now, "source": source}
    if email is not None:
        update.update(email=email, bounced=None)
    if clear_email:
        update.update(email=None, bounced=None)
    if opted_out is not None:
        update["opted_out"] = opted_out
    return Contact.model_validate({**base.model_dump(), **update})
