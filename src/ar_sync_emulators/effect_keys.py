"""How the emulators' effect counters read an ar-sync key back from what a company holds.

Internal text (notes, private notes) carries the full `ar-sync:<key>` marker; what a customer
sees (fee lines, a Xero fee invoice's Reference) carries only a short "(ref. AR-3F9A2C1D)".
The counters resolve such a reference to the action key of the write that carried it, from
the idempotency keys (QuickBooks `requestid`, Xero `Idempotency-Key`) the emulator itself
received: an action key is "ar" + 32 hex digits, and a write's idempotency key is that key or
one derived from it by a suffix. This is bookkeeping for the exactly-once checks only; the
emulated platform's behaviour never depends on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

KEY_OR_REF = re.compile(r"ar-sync:([A-Za-z0-9_\-]+)|\(ref\. AR-([0-9A-Z]{1,8})\)")
_ACTION_KEY = re.compile(r"ar[0-9a-f]{32}")


def keys_in(text: str | None, request_keys: Iterable[str]) -> list[str]:
    """The keys `text` carries, short references resolved through `request_keys`; a
    reference no received key explains is reported as itself ("AR-…")."""
    out: list[str] = []
    keys = list(request_keys)
    for full, ref in KEY_OR_REF.findall(text or ""):
        out.append(full or _resolve(ref, keys))
    return out


def _resolve(ref: str, request_keys: list[str]) -> str:
    digits = ref.lower()
    actions = {m.group(0) for k in request_keys if (m := _ACTION_KEY.match(k))
               and m.group(0)[2:].startswith(digits)}
    if actions:  # two action keys sharing the digits: ambiguous, reported as the reference
        return actions.pop() if len(actions) == 1 else f"AR-{ref}"
    # hand-written keys in tests ("k-fee"): the shortest received key with these characters
    loose = sorted((k for k in request_keys if _alnum(k.removeprefix("ar"))[:len(digits)]
                    == digits), key=len)
    return loose[0] if loose else f"AR-{ref}"


def _alnum(text: str) -> str:
    return "".join(c for c in text if c.isalnum()).lower()
