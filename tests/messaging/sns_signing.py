"""A stand-in for Amazon SNS in tests: an RSA key, its self-signed certificate served from
a fake fetcher at an SNS-shaped URL, and records signed like SNS signs them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from ar_sync.delivery.sns_signature import SnsVerifier, string_to_sign

CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-notifications"


def _certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


class FakeSns:
    """Signs records; `fetches` counts certificate downloads (to see the cache work)."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.pem = _certificate(self.key)
        self.fetches: list[str] = []

    def fetch(self, url: str) -> bytes:
        self.fetches.append(url)
        if url != CERT_URL:
            raise OSError("no such certificate")
        return self.pem

    def verifier(self, topics: tuple[str, ...] = ()) -> SnsVerifier:
        return SnsVerifier(fetch=self.fetch, topics=topics)

    def record(self, notice: dict[str, Any] | str, *, version: str = "1",
               subject: str | None = None) -> dict[str, Any]:
        """An `Sns` record of a Lambda SNS event (AWS Lambda docs' example event), signed."""
        sns: dict[str, Any] = {
            "Type": "Notification", "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
            "TopicArn": TOPIC, "Subject": subject,
            "Message": notice if isinstance(notice, str) else json.dumps(notice),
            "Timestamp": "2026-11-16T15:00:00.000Z", "SignatureVersion": version,
            "SigningCertUrl": CERT_URL, "UnsubscribeUrl": "https://sns.eu-west-1.amazonaws.com/?x",
            "MessageAttributes": {}}
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        sns["Signature"] = base64.b64encode(self.key.sign(
            string_to_sign(sns), padding.PKCS1v15(), digest)).decode()
        return sns

    def event(self, *notices: dict[str, Any]) -> dict[str, Any]:
        return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
                             "Sns": self.record(n)} for n in notices]}
