"""Escalation notices that reach someone: signed outgoing webhooks, and e-mail to a person.

A webhook is a JSON POST signed like Stripe's: header `X-AR-Sync-Signature:
t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; the receiver recomputes it with the
shared secret (AR_SYNC_NOTIFY_WEBHOOK_SECRET) and rejects old timestamps (replays). The body
carries `id` (stable per notice, also in `X-AR-Sync-Delivery`) so a receiver can drop a
repeat: notices are at-least-once (a crash after the POST sends it again next run), which is
the right side for a person who must be told. Chat incoming hooks get a `text` line too.
Within a run a failing receiver is retried with exponential backoff (tenacity), all within one
total deadline (30 s by default); after that the notice is left for the next run — it never
blocks the run. Only public receivers are reached (ar_sync.domain.webhook_urls,
ar_sync.delivery.webhook_http), and the report says only a short category of what the
receiver answered.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from tenacity.stop import stop_base

from ar_sync.delivery.webhook_http import DeadlineExceededError, Resolver, post_once, resolve
from ar_sync.domain.webhook_urls import UnsafeUrlError, parse_webhook_url
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
    """POSTs signed JSON with retries, all within one total deadline; `sleep`, `clock`,
    `resolver` and `context` are injectable for tests. Only public receivers are reached
    (delivery/webhook_http.py); `allow_loopback` (AR_SYNC_DEV_LOOPBACK_WEBHOOKS=1) lets a
    local test receiver on 127.0.0.1 in."""

    secret: str = field(repr=False)
    attempts: int = 4
    timeout: float = 10.0  # the most one attempt may take
    deadline: float = 30.0  # the most the whole post, retries and waits included, may take
    max_wait: float = 8.0
    allow_loopback: bool = False
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.time, repr=False)
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False)
    resolver: Resolver = field(default=resolve, repr=False)
    context: ssl.SSLContext | None = field(default=None, repr=False)

    def post(self, url: str, body: Mapping[str, Any], *, delivery: str) -> str:
        """Deliver; 'accepted' or an error whose text is a short category (the receiver's
        status and body never reach the run report). Raises after the last attempt."""
        try:
            target = parse_webhook_url(url)
        except UnsafeUrlError as exc:
            raise WebhookRefusedError(f"address not allowed: {exc}") from None
        data = json.dumps({**body, "text": chat_text(body)}, sort_keys=True,
                          default=str).encode()
        end = self.monotonic() + self.deadline

        def attempt() -> str:
            headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery,
                       EVENT_HEADER: str(body.get("event", "")),
                       SIGNATURE_HEADER: signature(self.secret, data, int(self.clock()))}
            try:
                status = post_once(target, data, headers, allow_loopback=self.allow_loopback,
                                   deadline=min(end, self.monotonic() + self.timeout),
                                   resolver=self.resolver, context=self.context,
                                   clock=self.monotonic)
            except UnsafeUrlError as exc:
                raise WebhookRefusedError(f"address not allowed: {exc}") from None
            except DeadlineExceededError:
                raise WebhookRetryableError("timed out") from None
            except (OSError, http.client.HTTPException, ValueError):
                raise WebhookRetryableError("unreachable") from None
            return _category(status)

        def wait(seconds: float) -> None:
            self.sleep(max(0.0, min(seconds, end - self.monotonic())))

        retrying = Retrying(retry=retry_if_exception_type(WebhookRetryableError),
                            stop=stop_after_attempt(self.attempts) | _past(end, self.monotonic),
                            wait=wait_exponential(multiplier=0.5, max=self.max_wait),
                            sleep=wait, reraise=True)
        return retrying(attempt)


def _category(status: int) -> str:
    """What the report may say about a receiver's answer."""
    if 200 <= status < 300:
        return "accepted"
    if status in (408, 429) or status >= 500:
        raise WebhookRetryableError("receiver error (5xx/408/429)")
    if 300 <= status < 400:
        raise WebhookRefusedError("refused: redirect (not followed)")
    raise WebhookRefusedError("refused by the receiver (4xx)")


class _past(stop_base):
    """Stop retrying once the total deadline has passed."""

    def __init__(self, end: float, monotonic: Callable[[], float]) -> None:
        self.end, self.monotonic = end, monotonic

    def __call__(self, retry_state: Any) -> bool:
        return self.monotonic() >= self.end
