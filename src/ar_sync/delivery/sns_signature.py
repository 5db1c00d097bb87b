"""Checking that an SNS message really comes from Amazon SNS before acting on it.

The SES bounce handler changes a customer's contact (an address marked bounced, a customer
opted out), so a forged record must change nothing. Following AWS's "Verifying the signatures
of Amazon SNS messages" (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html)
and its step-by-step page (…/sns-verify-signature-of-message-verify-message-signature.html):

* the string to sign is `Name\\nvalue\\n` for Message, MessageId, Subject (only when present),
  Timestamp, TopicArn and Type of a Notification; SubscribeURL and Token instead of Subject for
  the subscription confirmations;
* SignatureVersion 1 is RSA PKCS#1 v1.5 over SHA1, version 2 over SHA256;
* the signing certificate is fetched over HTTPS only, and only from an SNS host of
  amazonaws.com (`sns.<region>.amazonaws.com`, the URL's path a `.pem` file), never from any
  URL a message names; certificates are cached by URL;
* optionally the TopicArn must be one we expect (AR_SYNC_BOUNCE_TOPIC_ARNS).

Lambda's SNS event spells the URL field `SigningCertUrl`; an HTTP delivery `SigningCertURL`:
both are read.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

_CERT_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com$")
_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                "TopicArn", "Type"),
}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
MAX_CERT_BYTES = 64_000

CertFetcher = Callable[[str], bytes]


class SnsSignatureError(ValueError):
    """The record is not a message signed by Amazon SNS (or not from an expected topic)."""


def cert_url_problem(url: str) -> str | None:
    """Why `url` is not an Amazon SNS signing-certificate URL, or None."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "the signing certificate URL is not https"
    if parts.username or parts.password or parts.port not in (None, 443):
        return "the signing certificate URL carries a user or a port"
    if not _CERT_HOST.match(parts.hostname or ""):
        return "the signing certificate is not on an SNS host of amazonaws.com"
    if not parts.path.endswith(".pem") or parts.query or parts.fragment:
        return "the signing certificate URL is not a .pem file"
    return None


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The canonical text SNS signed (AWS docs, step 1 of verification)."""
    fields = _FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise SnsSignatureError(f"unknown SNS message type {message.get('Type')!r}")
    lines = []
    for name in fields:
        value = _field(message, name)
        if value is None:
            if name == "Subject":
                continue
            raise SnsSignatureError(f"the SNS message has no {name}")
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode()


def _field(message: Mapping[str, Any], name: str) -> str | None:
    for key in (name, name.replace("URL", "Url")):  # Lambda: SigningCertUrl, SubscribeUrl
        value = message.get(key)
        if value is not None:
            return str(value)
    return None


def fetch_certificate(url: str) -> bytes:
    """The PEM at `url` (already checked to be an SNS host), over verified HTTPS."""
    import requests

    answer = requests.get(url, timeout=5, allow_redirects=False, stream=True)
    answer.raise_for_status()
    data = answer.raw.read(MAX_CERT_BYTES + 1, decode_content=True)
    if len(data) > MAX_CERT_BYTES:
        raise SnsSignatureError("the signing certificate is too large")
    return bytes(data)


class SnsVerifier:
    """Verifies SNS messages; certificates are cached per URL (SNS rotates them rarely)."""

    def __init__(self, fetch: CertFetcher = fetch_certificate,
                 topics: Collection[str] = ()) -> None:
        self._fetch = fetch
        self._topics = frozenset(topics)
        self._certs: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    def _key(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:
            cached = self._certs.get(url)
        if cached is not None:
            return cached
        try:
            key = x509.load_pem_x509_certificate(self._fetch(url)).public_key()
        except (ValueError, OSError) as exc:
            raise SnsSignatureError(f"cannot read the signing certificate: "
                                    f"{type(exc).__name__}") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise SnsSignatureError("the signing certificate has no RSA key")
        with self._lock:
            if len(self._certs) > 32:
                self._certs.clear()
            self._certs[url] = key
        return key

    def verify(self, message: Mapping[str, Any]) -> None:
        """Return when `message` is signed by SNS (and from an expected topic); raise
        SnsSignatureError otherwise."""
        version = str(message.get("SignatureVersion", ""))
        algorithm = _HASHES.get(version)
        if algorithm is None:
            raise SnsSignatureError(f"unsupported SignatureVersion {version!r}")
        url = _field(message, "SigningCertURL") or ""
        if problem := cert_url_problem(url):
            raise SnsSignatureError(problem)
        if self._topics and message.get("TopicArn") not in self._topics:
            raise SnsSignatureError("the message comes from a topic we do not expect")
        try:
            signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise SnsSignatureError("the signature is not base64") from None
        text = string_to_sign(message)
        try:
            self._key(url).verify(signature, text, padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise SnsSignatureError("the signature does not match the message") from None


__all__ = ["CertFetcher", "SnsSignatureError", "SnsVerifier", "cert_url_problem",
           "fetch_certificate", "string_to_sign"]
