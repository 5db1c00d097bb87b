"""The sync queue's message: which tenant to run, and (for a webhook) which invoices."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

MAX_REQUEUES = 6  # a webhook re-sync that keeps finding the tenant locked gives up after this


class SyncMessage(BaseModel):
    """One SQS message = one run of one tenant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connection_id: str = Field(min_length=3, max_length=200)
    only_invoices: tuple[str, ...] | None = None  # a webhook's targeted re-sync
    reason: Literal["schedule", "webhook", "requeue", "console"] = "schedule"
    requeues: int = Field(default=0, ge=0)


class QueueSendError(RuntimeError):
    """SQS refused some messages even after a retry."""


def send_messages(sqs: SQSClient, queue_url: str, messages: Sequence[SyncMessage], *,
                  delay_seconds: int = 0) -> int:
    """SendMessageBatch in tens; entries SQS reports as failed are sent once more."""
    sent = 0
    for start in range(0, len(messages), 10):
        chunk = messages[start:start + 10]
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "MessageBody": m.model_dump_json(), "DelaySeconds": delay_seconds}
            for i, m in enumerate(chunk)]
        for _ in range(2):
            out = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            sent += len(out.get("Successful", []))
            failed = {f["Id"] for f in out.get("Failed", [])}
            entries = [e for e in entries if e["Id"] in failed]
            if not entries:
                break
        if entries:
            raise QueueSendError(f"{len(entries)} messages were not accepted by SQS")
    return sent


def parse_message(body: str) -> SyncMessage:
    return SyncMessage.model_validate(json.loads(body))
