"""SQS consumer (batch size 1): run one tenant within the Lambda's remaining time.

A failure raises, so the message is reported as a batch item failure: it comes back after a
short, growing back-off (we shorten the visibility timeout) and lands in the dead-letter queue
after the queue's maxReceiveCount. A run that finds the tenant locked by another run is not a
failure: a webhook's targeted re-sync is sent again with a delay, a scheduled one is dropped
(the running run covers it).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from ar_sync.aws import config, secrets
from ar_sync.aws.config import logger
from ar_sync.aws.queue import MAX_REQUEUES, SyncMessage, parse_message, send_messages
from ar_sync.delivery.settings import company_mail_setup
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import PlatformSettings
from ar_sync.sync.run import RunReport, run_tenant

REQUEUE_DELAY_SECONDS = 60


def _settings(platform: str) -> PlatformSettings:
    return secrets.platform_settings(platform)  # cached by Powertools for a few minutes


def backoff_seconds(receive_count: int) -> int:
    """Visibility timeout before a failed message is tried again: 30 s, 60 s, ... 15 min."""
    return int(min(900, 30 * 2 ** max(0, receive_count - 1)))


def _budget(cfg: config.AwsConfig, context: LambdaContext) -> CallBudget:
    return CallBudget(max_calls=cfg.max_calls,
                      remaining_time=lambda: context.get_remaining_time_in_millis() / 1000)


def _summary(report: RunReport) -> dict[str, Any]:
    return {"done": report.done, "skipped": report.skipped, "failed": report.failed,
            "deferred": report.deferred, "busy": report.busy, "api_calls": report.api_calls,
            "stopped_early": report.stopped_early, "errors": len(report.errors)}


def _after_lock_held(cfg: config.AwsConfig, message: SyncMessage) -> None:
    if message.only_invoices is None and message.reason == "schedule":
        return  # the run holding the lock does this very work
    if message.requeues >= MAX_REQUEUES:
        logger.warning("re-sync dropped: tenant stayed locked")
        return
    again = message.model_copy(update={"requeues": message.requeues + 1, "reason": "requeue"})
    send_messages(config.sqs(), cfg.queue_url, [again], delay_seconds=REQUEUE_DELAY_SECONDS)


def sync_record(record: SQSRecord, lambda_context: LambdaContext) -> dict[str, Any]:
    """One message: parse it, run the tenant, raise on failure (the batch reports it)."""
    cfg = config.AwsConfig.from_env()
    try:
        message = parse_message(record.body)
        logger.append_keys(connection_id=message.connection_id)
        store = config.store(cfg)
        report = run_tenant(
            store, message.connection_id,
            settings=_settings(message.connection_id.split(":", 1)[0]),
            budget=_budget(cfg, lambda_context), only_invoices=message.only_invoices,
            owner=f"lambda-{lambda_context.aws_request_id}",
            mail=company_mail_setup(store, message.connection_id))
    except Exception:
        count = int(record.attributes.approximate_receive_count or 1)
        config.sqs().change_message_visibility(
            QueueUrl=cfg.queue_url, ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=backoff_seconds(count))
        logger.exception("tenant run failed", extra={"receive_count": count})
        raise
    summary = _summary(report)
    if report.stopped_early and report.stopped_early.startswith("lock held"):
        _after_lock_held(cfg, message)
    if report.stopped_early == "authorisation lost":
        logger.warning("tenant needs to reconnect", extra=summary)
    else:
        logger.info("tenant run finished", extra=summary)
    logger.remove_keys(["connection_id"])
    return summary


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.SQS)  # holds per-batch state: one each
    return dict(process_partial_response(event=event, record_handler=sync_record,
                                         processor=processor, context=context))
