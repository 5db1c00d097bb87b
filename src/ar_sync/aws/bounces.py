"""SNS -> Lambda: SES bounce and complaint notifications update the customer's contact."""

from __future__ import annotations

import logging
from typing import Any

from ar_sync.aws import config
from ar_sync.delivery.bounces import apply_notification, sns_notifications

log = logging.getLogger(__name__)


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, int]:
    """The entry point: `ar_sync/aws/bounces.lambda_handler`."""
    book = config.store()
    changed = 0
    for notice in sns_notifications(event):
        what = apply_notification(book, notice)
        if what:
            changed += 1
            log.info("contact updated from SES: %s", what)
    return {"changed": changed}
