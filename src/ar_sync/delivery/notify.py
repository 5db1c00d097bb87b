"""Escalation notices that reach someone: signed outgoing webhooks, and e-mail to a person.

A webhook is a JSON POST signed like Stripe's: header `X-AR-Sync-Signature:
t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; the receiver recomputes it with the
shared secret (AR_SYNC_NOTIFY_WEBHOOK_SECRET) and rejects old timestamps (replays). The body
carries `id` (stable per notice, also in `X-AR-Sync-Delivery`) so a receiver can drop a
repeat: notices are at-least-once (a crash after the POST sends it again next run), which is
the right side for a person who must be told. Chat incoming hooks get a `text` line too.
Within a run a failing receiver is retried with exponential backoff (tenacity); after that
the notice is left for the next run — it never blocks the run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from ar_sync.messages.sending import WebhookRefusedError, WebhookRetryableError

SIGNATURE_HEADER = "X-AR-Sync-Signature"
DELIVERY_HEADER = "X-AR-Sync-Delivery"
EVENT_HEADER = "X-AR-Sync-Event"
TOLERANCE_SECONDS = 300




def signature(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, *, now: float | None = None,
           tolerance: float = TOLERANCE_SECONDS) -> bool:
    """What a receiver does: recompute the HMAC, compare in constant time, refuse old ones."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


def chat_text(body: Mapping[str, Any]) -> str:
    """One line a person can read in a chat channel."""
    amount = f"{body.get('balance', '?')} {body.get('currency', '')}".strip()
    return (f"Invoice {body.get('invoice_number')} ({body.get('customer_name', 'customer')}, "
            f"{amount} unpaid) escalated to {body.get('to')}: {body.get('reason')}")


@dataclass
class WebhookSender:
    """POSTs signed JSON with retries; `sleep` and `clock` are injectable for tests."""

    secret: str
    attempts: int = 4
    timeout: float = 10.0
    max_wait: float = 8.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    session: requests.Session | None = None

    def post(self, url: str, body: Mapping[str, Any], *, delivery: str) -> int:
        """Deliver; return the receiver's status. Raises after the last failed attempt."""
        data = json.dumps({**body, "text": chat_text(body)}, sort_keys=True,
                          default=str).encode()
        http = self.session or requests.Session()

        def attempt() -> int:
            headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery,
                       EVENT_HEADER: str(body.get("event", "")),
                       SIGNATURE_HEADER: signature(self.secret, data, int(self.clock()))}
            try:
                answer = http.post(url, data=data, headers=headers, timeout=self.timeout,
                                   allow_redirects=False)
            except requests.RequestException as exc:
                raise WebhookRetryableError(type(exc).__name__) from exc
            if answer.status_code in (408, 429) or answer.status_code >= 500:
                raise WebhookRetryableError(f"HTTP {answer.status_code}")
            if answer.status_code >= 300:
                raise WebhookRefusedError(f"HTTP {answer.status_code}")
            return answer.status_code

        retrying = Retrying(retry=retry_if_exception_type(WebhookRetryableError),
                            stop=stop_after_attempt(self.attempts),
                            wait=wait_exponential(multiplier=0.5, max=self.max_wait),
                            sleep=self.sleep, reraise=True)
        return retrying(attempt)
