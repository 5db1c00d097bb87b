"""The SES bounce handler acts only on records signed by Amazon SNS (issue 20: an unsigned
record marked an address bounced). SignatureVersion 1 and 2, the certificate only from an SNS
host of amazonaws.com over https, cached; an optional list of expected topics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import ar_sync.aws.bounces as bounces
import ar_sync.aws.config as config
from ar_sync.delivery.sns_signature import SnsSignatureError, cert_url_problem
from ar_sync.messages.mime import tag_value
from ar_sync.store.sqlite.store import SQLiteStore

from .sns_signing import CERT_URL, TOPIC, FakeSns

BOUNCE = {"notificationType": "Bounce",
          "mail": {"messageId": "0100abc", "destination": ["one@example.com"],
                   "tags": {"tenant": [tag_value("xero:abc")], "customer": ["c1"]}},
          "bounce": {"bounceType": "Permanent", "bouncedRecipients": [
              {"emailAddress": "one@example.com", "diagnosticCode": "smtp; 550 5.1.1"}]}}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "ar.db")
    monkeypatch.setattr(config, "store", lambda *a: s)
    return s


def _handle(sns: FakeSns, *records: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
            topics: tuple[str, ...] = ()) -> dict[str, int]:
    monkeypatch.setattr(bounces, "_verifier", sns.verifier(topics))
    return bounces.lambda_handler({"Records": [{"Sns": r} for r in records]}, None)


def test_an_unsigned_or_forged_record_changes_nothing(store: SQLiteStore,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    sns = FakeSns()
    unsigned = {"Type": "Notification", "Message": json.dumps(BOUNCE)}
    forged = sns.record(BOUNCE)
    forged["Message"] = forged["Message"].replace("c1", "c2")
    other_key = FakeSns().record(BOUNCE)  # signed, but not by the certificate at the URL
    for record in (unsigned, forged, other_key):
        assert _handle(sns, record, monkeypatch=monkeypatch) == {"changed": 0}
    assert store.contacts("xero:abc") == {}


@pytest.mark.parametrize("version", ["1", "2"])
def test_signed_records_of_both_versions_count(store: SQLiteStore, version: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    sns = FakeSns()
    record = sns.record(BOUNCE, version=version, subject="Amazon SES Email Event")
    assert _handle(sns, record, record, monkeypatch=monkeypatch) == {"changed": 2}
    assert store.contacts("xero:abc")["c1"].bounced
    assert sns.fetches == [CERT_URL]  # cached: fetched once for both records


@pytest.mark.parametrize("url", [
    "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
    "https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
    "https://evil.example/sns.eu-west-1.amazonaws.com/x.pem",
    "https://s3.amazonaws.com/SimpleNotificationService-1.pem",
    "https://user@sns.eu-west-1.amazonaws.com/x.pem",
    "https://sns.eu-west-1.amazonaws.com:8443/x.pem",
    "https://sns.eu-west-1.amazonaws.com/x.txt",
])
def test_a_certificate_elsewhere_is_never_fetched(url: str, store: SQLiteStore,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    sns = FakeSns()
    record = sns.record(BOUNCE)
    record["SigningCertUrl"] = url
    assert cert_url_problem(url)
    assert _handle(sns, record, monkeypatch=monkeypatch) == {"changed": 0}
    assert sns.fetches == []


def test_unknown_versions_and_unexpected_topics_are_refused(
        store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    sns = FakeSns()
    record = sns.record(BOUNCE)
    with pytest.raises(SnsSignatureError, match="SignatureVersion"):
        sns.verifier().verify({**record, "SignatureVersion": "3"})
    assert _handle(sns, record, monkeypatch=monkeypatch, topics=("arn:aws:sns:x:1:other",)) \
        == {"changed": 0}
    assert _handle(sns, record, monkeypatch=monkeypatch, topics=(TOPIC,)) == {"changed": 1}
