"""A local SMTP server that keeps every message it accepts (aiosmtpd), for the demo and tests.

Like a real server it answers each command: a message counts as accepted once the server
has replied 250 to the end of DATA. For fault injection it can refuse a recipient (450/550),
refuse the data (451/554), or drop the connection while the data is being handed over —
either before storing it or after storing it without replying, the case in which the client
cannot know whether the message went out (RFC 5321 §4.1.1.4, §4.5.3.2.6; aiosmtpd docs:
handlers return the reply line).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from ar_sync.delivery.transports import SmtpSettings

FAULTS = ("refuse_rcpt", "reject_rcpt", "refuse_data", "reject_data", "drop_before_store",
          "drop_after_store")


@dataclass
class SinkMessage:
    mail_from: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpSink:
    """Keeps messages in memory; `fail_next(kind)` injects one fault into the next message."""

    messages: list[SinkMessage] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    _faults: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, kind: str, times: int = 1) -> None:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r} (known: {', '.join(FAULTS)})")
        with self._lock:
            self._faults.extend([kind] * times)

    def _take(self, kinds: tuple[str, ...]) -> str | None:
        with self._lock:
            if self._faults and self._faults[0] in kinds:
                return self._faults.pop(0)
        return None

    # aiosmtpd handler hooks ------------------------------------------------------------
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        fault = self._take(("refuse_rcpt", "reject_rcpt"))
        if fault == "refuse_rcpt":
            return "450 4.2.0 Mailbox temporarily unavailable"
        if fault == "reject_rcpt":
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        fault = self._take(("refuse_data", "reject_data", "drop_before_store",
                            "drop_after_store"))
        if fault == "refuse_data":
            return "451 4.3.0 Try again later"
        if fault == "reject_data":
            return "554 5.6.0 Message rejected"
        if fault == "drop_before_store":
            server.transport.abort()
            return "421 4.4.2 Connection dropped"
        with self._lock:
            self.messages.append(SinkMessage(envelope.mail_from, list(envelope.rcpt_tos),
                                             bytes(envelope.original_content or
                                                   envelope.content)))
        if fault == "drop_after_store":
            server.transport.abort()  # stored, but the client never hears the 250
            return "421 4.4.2 Connection dropped"
        return "250 Message accepted for delivery"

    # lifecycle -------------------------------------------------------------------------
    @contextmanager
    def serve(self) -> Iterator[SmtpSink]:
        controller = Controller(self, hostname=self.host, port=self.port or _free_port(),
                                ready_timeout=10)
        controller.start()
        self.port = int(controller.port)
        try:
            yield self
        finally:
            controller.stop()

    def settings(self, timeout: float = 10.0) -> SmtpSettings:
        """Plain SMTP to the sink (local only; real providers use STARTTLS or SSL)."""
        return SmtpSettings(host=self.host, port=self.port, security="none", timeout=timeout)

    def snapshot(self) -> list[SinkMessage]:
        with self._lock:
            return list(self.messages)



def write_eml(messages: list[SinkMessage], folder: Path) -> list[Path]:
    """Each message as <n>-<recipient>.eml in `folder` (opens in any mail program)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n, msg in enumerate(messages, 1):
        who = (msg.recipients[0] if msg.recipients else "unknown").replace("/", "_")
        path = folder / f"{n:04d}-{who}.eml"
        path.write_bytes(msg.data)
        out.append(path)
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
