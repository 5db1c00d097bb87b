"""What a run needs to send, as ports: who from, through which Mailer, and who signs escalation
webhooks. ar_sync.delivery builds a MailSetup from the settings; the sync core only uses it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ar_sync.messages.mime import Mailer, Sender


class WebhookRetryableError(Exception):
    """The receiver failed in a way worth retrying (5xx, 408, 429, no connection)."""


class WebhookRefusedError(Exception):
    """The receiver answered with a client error (wrong URL, bad secret): not retried now."""


class Notifier(Protocol):
    """Posts a signed escalation notice; returns a short category of the receiver's answer
    ('accepted') or raises one of the two errors above, whose text is a category too: what a
    receiver answers (its status, its body) never reaches the run report."""

    def post(self, url: str, body: Mapping[str, Any], *, delivery: str) -> str: ...


@dataclass
class MailSetup:
    """Everything the run needs to send: who from, how, and the webhook signer."""

    sender: Sender | None = None
    mailer: Mailer | None = None
    webhooks: Notifier | None = None

    @property
    def can_send(self) -> bool:
        return self.sender is not None and self.mailer is not None
