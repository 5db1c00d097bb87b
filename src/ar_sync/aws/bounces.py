"""SNS -> Lambda: SES bounce and complaint notifications update the customer's contact.

Only records signed by Amazon SNS count (ar_sync.delivery.sns_signature); set
AR_SYNC_BOUNCE_TOPIC_ARNS (comma-separated) to accept only your SES notification topics.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ar_sync.aws import config
from ar_sync.delivery.bounces import apply_notification, sns_notifications
from ar_sync.delivery.sns_signature import SnsVerifier

log = logging.getLogger(__name__)

_verifier: SnsVerifier | None = None  # one per container: its certificate cache outlives calls


def verifier() -> SnsVerifier:
    global _verifier
    if _verifier is None:
        raw = os.environ.get(config.BOUNCE_TOPICS, "")
        topics = [t.strip() for t in raw.split(",") if t.strip()]
        _verifier = SnsVerifier(topics=topics)
    return _verifier


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, int]:
    """The entry point: `ar_sync/aws/bounces.lambda_handler`."""
    book = config.store()
    changed = 0
    for notice in sns_notifications(event, verifier()):
        what = apply_notification(book, notice)
        if what:
            changed += 1
            log.info("contact updated from SES: %s", what)
    return {"changed": changed}
