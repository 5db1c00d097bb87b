"""Amazon SES: raw sends through boto3 sesv2 (moto), outcomes classified for exactly-once
(never retried by botocore), and bounce/complaint notifications (SNS -> Lambda) recorded on
the customer's contact."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_string, policy
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from moto import mock_aws

from ar_sync.aws.bounces import lambda_handler
from ar_sync.delivery.bounces import apply_notification, sns_notifications
from ar_sync.delivery.transports import SesMailer
from ar_sync.domain.contacts import resolve
from ar_sync.messages.mime import Outcome, Sender, notice_mime, tag_text, tag_value
from ar_sync.store.sqlite.store import SQLiteStore

from .sns_signing import FakeSns

SENDER = Sender("Acme Supplies <accounts@acme.example>", "accounts@acme.example")
ENVELOPE = SENDER.envelope("one@example.com")


def _mime(to: str = "one@example.com") -> Any:
    return notice_mime(to=to, subject="Payment reminder", text="Hello", sender=SENDER,
                       message_id="<ar0123@acme.example>", now=datetime(2026, 11, 16, tzinfo=UTC))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def test_raw_send_keeps_our_headers(aws: Any) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    boto3.client("sesv2", region_name="eu-west-1").create_email_identity(
        EmailIdentity="acme.example")
    mailer = SesMailer(region="eu-west-1")
    result = mailer.send(_mime(), envelope=SENDER.envelope("one@example.com"),
                         tags={"tenant": tag_value("xero:abc"), "customer": "c1"})
    assert result.outcome == Outcome.SENT and result.ref
    (sent,) = ses_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].sent_messages
    msg = message_from_string(sent.raw_data, policy=policy.default)
    assert msg["Message-ID"] == "<ar0123@acme.example>" and msg["From"] == SENDER.from_address
    assert "\r\n" in sent.raw_data  # CRLF line ends on the wire


def test_unverified_sender_is_refused_not_retried(aws: Any) -> None:
    result = SesMailer(region="eu-west-1").send(_mime(), envelope=ENVELOPE, tags={})
    assert result.outcome == Outcome.UNSENT and result.permanent
    assert "MessageRejected" in result.detail


def test_botocore_retries_are_off() -> None:
    mailer = SesMailer(region="eu-west-1")
    config = mailer._client.meta.config  # type: ignore[attr-defined]
    assert config.retries["total_max_attempts"] == 1


class _Failing:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def send_email(self, **_kwargs: Any) -> Any:
        raise self.exc


@pytest.mark.parametrize("exc, outcome, permanent", [
    (ClientError({"Error": {"Code": "MessageRejected"}, "ResponseMetadata":
                  {"HTTPStatusCode": 400}}, "SendEmail"), Outcome.UNSENT, True),
    (ClientError({"Error": {"Code": "TooManyRequestsException"}, "ResponseMetadata":
                  {"HTTPStatusCode": 429}}, "SendEmail"), Outcome.UNSENT, False),
    (ClientError({"Error": {"Code": "InternalFailure"}, "ResponseMetadata":
                  {"HTTPStatusCode": 500}}, "SendEmail"), Outcome.UNKNOWN, False),
    (EndpointConnectionError(endpoint_url="https://email.eu-west-1.amazonaws.com"),
     Outcome.UNSENT, False),
    (ReadTimeoutError(endpoint_url="https://email.eu-west-1.amazonaws.com"),
     Outcome.UNKNOWN, False),
])
def test_outcomes(exc: Exception, outcome: Outcome, permanent: bool) -> None:
    result = SesMailer(_Failing(exc)).send(_mime(), envelope=ENVELOPE, tags={})
    assert (result.outcome, result.permanent) == (outcome, permanent)


def test_tag_values_round_trip() -> None:
    for value in ("c1", "xero:9a1e-22", "quickbooks:9130 3542", "b32-looks-encoded", "Ünïcode"):
        encoded = tag_value(value)
        assert all(ch.isalnum() or ch in "_.@-" for ch in encoded)
        assert tag_text(encoded) == value


SNS = FakeSns()


def _sns_event(*notices: dict[str, Any]) -> dict[str, Any]:
    """What Lambda receives from an SNS subscription (AWS Lambda docs, 'Using Lambda with
    Amazon SNS', example event), signed, plus a malformed record."""
    event = SNS.event(*notices)
    event["Records"].append({"Sns": SNS.record("not json")})
    return event


def _notice(kind: str, **extra: Any) -> dict[str, Any]:
    """Shaped like the examples in the SES Developer Guide, 'Amazon SES notification
    contents' (bounce and complaint), with our message tags."""
    return {"notificationType": kind,
            "mail": {"timestamp": "2026-11-16T15:00:00.000Z", "messageId": "0100abc",
                     "source": "accounts@acme.example", "destination": ["one@example.com"],
                     "tags": {"tenant": [tag_value("xero:abc")], "customer": ["c1"]}},
            **extra}


def test_hard_bounce_and_complaint_update_the_contact(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(tmp_path / "ar.db")
    bounce = _notice("Bounce", bounce={
        "bounceType": "Permanent", "bounceSubType": "General",
        "bouncedRecipients": [{"emailAddress": "one@example.com", "action": "failed",
                               "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user "
                               "unknown"}]})
    transient = _notice("Bounce", bounce={"bounceType": "Transient",
                                          "bouncedRecipients": []})
    untagged = {**bounce, "mail": {"destination": ["x@example.com"]}}
    notices = list(sns_notifications(_sns_event(bounce, transient, untagged), SNS.verifier()))
    assert len(notices) == 3  # the malformed record is skipped
    assert [apply_notification(store, n) is not None for n in notices] == [True, False, False]
    contact = store.contacts("xero:abc")["c1"]
    assert contact.bounced and "550" in contact.bounced and contact.email == "one@example.com"
    assert resolve("c1", "one@example.com", {"c1": contact}).address is None  # not used again

    import ar_sync.aws.bounces as bounces
    import ar_sync.aws.config as config

    monkeypatch.setattr(config, "store", lambda *a: store)
    monkeypatch.setattr(bounces, "_verifier", SNS.verifier())
    assert lambda_handler(_sns_event(_notice("Complaint", complaint={
        "complainedRecipients": [{"emailAddress": "one@example.com"}]})), None) == {"changed": 1}
    assert store.contacts("xero:abc")["c1"].opted_out
