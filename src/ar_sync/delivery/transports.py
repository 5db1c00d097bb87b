"""The transports that hand a finished message to a mail server: SMTP, Amazon SES, a folder.

Each implements messages.mime.Mailer and says SENT, UNSENT or UNKNOWN (see messages/mime.py
for why the difference matters). Neither SMTP nor SES can be asked afterwards whether a
message went out, so SES is called with botocore's own retries switched off.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from ar_sync.messages.mime import Envelope, Outcome, SendResult, wire_bytes

# ----------------------------------------------------------------------------- SMTP

Security = Literal["starttls", "ssl", "none"]


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0

    def __repr__(self) -> str:  # never print the password
        return f"SmtpSettings(host={self.host!r}, port={self.port}, security={self.security!r})"

    __str__ = __repr__


class SmtpMailer:
    """Any SMTP provider: STARTTLS (587), implicit TLS (465) or plain (local sinks only)."""

    def __init__(self, settings: SmtpSettings,
                 context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self._context = context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "ssl":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._context)
        client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        if s.security == "starttls":
            client.starttls(context=self._context)
        return client

    def send(self, message: EmailMessage, *, envelope: Envelope,
             tags: Mapping[str, str]) -> SendResult:
        """Up to the DATA command nothing is delivered, so a failure there is UNSENT; a reply
        refusing the data is UNSENT too; losing the connection during DATA is UNKNOWN. The
        envelope (MAIL FROM, RCPT TO) is the one given, never read back from the headers."""
        s = self.settings
        sender, recipients = envelope.sender, envelope.recipients
        try:
            client = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            return SendResult(Outcome.UNSENT, detail=f"cannot connect: {type(exc).__name__}")
        try:
            try:
                client.ehlo_or_helo_if_needed()
                if s.username:
                    client.login(s.username, s.password or "")
                code, reply = client.mail(sender)
                if code != 250:
                    return SendResult(Outcome.UNSENT, detail=f"sender refused {code}",
                                      permanent=code >= 500)
                for rcpt in recipients:
                    code, reply = client.rcpt(rcpt)
                    if code not in (250, 251):
                        return SendResult(Outcome.UNSENT, detail=f"recipient refused {code}",
                                          permanent=code >= 500)
            except smtplib.SMTPAuthenticationError as exc:
                return SendResult(Outcome.UNSENT, detail=f"login refused {exc.smtp_code}",
                                  permanent=True)
            except (OSError, smtplib.SMTPException) as exc:
                return SendResult(Outcome.UNSENT, detail=f"before data: {type(exc).__name__}")
            try:
                code, reply = client.data(wire_bytes(message))
            except smtplib.SMTPDataError as exc:  # the server answered: it refused the data
                return SendResult(Outcome.UNSENT, detail=f"data refused {exc.smtp_code}",
                                  permanent=exc.smtp_code >= 500)
            except (OSError, smtplib.SMTPException) as exc:
                return SendResult(Outcome.UNKNOWN,
                                  detail=f"connection lost during data: {type(exc).__name__}")
            if code != 250:  # the server answered the data with a refusal
                text = reply.decode(errors="replace")[:120]
                return SendResult(Outcome.UNSENT, detail=f"data refused {code} {text}",
                                  permanent=code >= 500)
            return SendResult(Outcome.SENT, ref=str(message["Message-ID"]),
                              detail=reply.decode(errors="replace")[:200])
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()


# ----------------------------------------------------------------------------- SES

_SES_PERMANENT = frozenset({"MessageRejected", "MailFromDomainNotVerifiedException",
                            "BadRequestException", "NotFoundException",
                            "AccountSuspendedException"})


class SesMailer:
    """Amazon SES v2 `send_email` with raw content (so our MIME, Message-ID included, is what
    is sent). botocore retries are off: a retried call after a lost answer could send twice."""

    def __init__(self, client: Any | None = None, *, region: str | None = None,
                 configuration_set: str | None = None) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("sesv2", region_name=region, config=Config(
                retries={"total_max_attempts": 1, "mode": "standard"}))
        self._client = client
        self._configuration_set = configuration_set

    def send(self, message: EmailMessage, *, envelope: Envelope,
             tags: Mapping[str, str]) -> SendResult:
        """Raw content with an explicit Destination: without one SES sends to every address
        it parses out of the To/Cc/Bcc headers (docs/email.md cites the sources)."""
        from botocore.exceptions import (
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
        )

        kwargs: dict[str, Any] = {
            "FromEmailAddress": envelope.sender,
            "Destination": {"ToAddresses": list(envelope.recipients)},
            "Content": {"Raw": {"Data": wire_bytes(message)}},
            "EmailTags": [{"Name": k, "Value": v} for k, v in tags.items()],
        }
        if self._configuration_set:
            kwargs["ConfigurationSetName"] = self._configuration_set
        try:
            answer = self._client.send_email(**kwargs)
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            return SendResult(Outcome.UNSENT, detail=f"cannot connect: {type(exc).__name__}")
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
            code = str(error.get("Code", "?"))
            if status >= 500:
                return SendResult(Outcome.UNKNOWN, detail=f"SES {status} {code}")
            return SendResult(Outcome.UNSENT, detail=f"SES {status} {code}",
                              permanent=code in _SES_PERMANENT)
        except Exception as exc:  # read timeout, connection closed: it may have been sent
            return SendResult(Outcome.UNKNOWN, detail=f"SES: {type(exc).__name__}")
        return SendResult(Outcome.SENT, ref=str(answer.get("MessageId", "")))


# ----------------------------------------------------------------------------- folder


class FolderMailer:
    """Writes each message as a .eml file (a dry delivery for previews and the demo)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def send(self, message: EmailMessage, *, envelope: Envelope,
             tags: Mapping[str, str]) -> SendResult:
        name = str(message["Message-ID"]).strip("<>").split("@")[0].replace("/", "_")
        (self.folder / f"{name}.eml").write_bytes(wire_bytes(message))
        return SendResult(Outcome.SENT, ref=str(message["Message-ID"]))
