"""How an action's key shows on the platform: the full marker where only the bookkeeper looks,
and the short "AR-XXXXXXXX" reference where the customer may see it. Reconciliation reads them
back to prove whether a write whose answer was lost did happen."""

from __future__ import annotations

import re

# Every write carries this marker with its idempotency key, so a later run can prove from the
# platform's own data whether a write whose response was lost did happen (reconciliation).
KEY_MARKER = "ar-sync:{key}"


def key_marker(key: str) -> str:
    """The full internal marker: only where the bookkeeper looks (notes, private notes)."""
    return KEY_MARKER.format(key=key)


REFERENCE_PREFIX = "AR-"


REFERENCE_LENGTH = 8


# Either form a fee carries in text: the old full marker (written by earlier versions, still
# recognised) or the short customer reference. Group 1: a full key; group 2: a reference.
KEY_OR_REFERENCE = re.compile(r"ar-sync:([A-Za-z0-9_\-]+)|\(ref\. (AR-[0-9A-Z]{1,8})\)")


def customer_reference(key: str) -> str:
    """The short human reference a customer may see: "AR-" and the first 8 hex digits of
    the key (after its "ar" prefix), upper case, e.g. "AR-3F9A2C1D".

    32 bits cannot be unique across all keys, and need not be: a reference is only ever
    matched within one invoice's lines or one customer's fee invoices (tens of keys), where
    a clash has odds near n**2 / 2**33; and a clash can only make reconciliation believe a
    fee was already written (a fee missed, never one charged twice).
    """
    body = key[2:] if key.startswith("ar") else key
    return REFERENCE_PREFIX + "".join(c for c in body if c.isalnum())[:REFERENCE_LENGTH].upper()


def reference_text(key: str) -> str:
    """How the reference appears in customer-visible text: "(ref. AR-3F9A2C1D)"."""
    return f"(ref. {customer_reference(key)})"


def mentions_key(text: object, key: str) -> bool:
    """Whether `text` carries `key`: its short reference, or the old full marker."""
    value = "" if text is None else str(text)
    return reference_text(key) in value or key_marker(key) in value


def key_references(text: object) -> list[str]:
    """Every full key or short reference carried by `text` (fee-line detection)."""
    return [full or ref for full, ref in KEY_OR_REFERENCE.findall("" if text is None else
                                                                  str(text))]
