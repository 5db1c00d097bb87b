"""Scheduled (EventBridge): one SQS message per connected tenant; the queue does the fan-out."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ar_sync.aws import config
from ar_sync.aws.config import logger
from ar_sync.aws.queue import SyncMessage, send_messages


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    cfg = config.AwsConfig.from_env()
    connections = config.store(cfg).list_connections()
    messages = [SyncMessage(connection_id=c.id, reason="schedule") for c in connections]
    sent = send_messages(config.sqs(), cfg.queue_url, messages)
    logger.info("dispatched", extra={"tenants": len(connections), "sent": sent,
                                     "trigger": event.get("detail-type", "manual")})
    return {"tenants": len(connections), "sent": sent}
