"""What the console is given by the face that starts it: the store, how to reach the
platforms and send mail, how people sign in, and how a run is started.

`ar-sync console` builds one for the SQLite store on 127.0.0.1; the Lambda handler
(ar_sync.aws.console) one for DynamoDB behind Cognito. The handlers are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Protocol
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ar_sync.messages.sending import MailSetup
from ar_sync.sync.connector import Connection, PlatformSettings
from ar_sync.sync.store import Store

PLATFORMS = {"quickbooks": "QuickBooks Online", "xero": "Xero"}
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class SignIn(Protocol):
    """How people sign in (signin.py: a one-time link locally, Cognito on AWS)."""

    def routes(self) -> list[BaseRoute]:
        """The sign-in routes, relative to the console's prefix."""
        ...

    def anonymous(self, request: Request, prefix: str) -> Response:
        """The answer to a visitor who is not signed in."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ConsoleConfig:
    """`public_url`: where the browser reaches the console (its path is the prefix every
    route lives under, e.g. https://api.example.com/console). `run_now`: start a run of the
    company and say what happened (None: the console runs it itself, locally). `today`: the
    day to plan for (the demo's fixed date), else the company's own date; `schedule`: when the
    next run comes, in words."""

    store: Store
    settings_for: Callable[[str], PlatformSettings]
    mail: Callable[[], MailSetup]
    public_url: str
    session_key: bytes
    signin: SignIn
    run_now: Callable[[Connection], str] | None = None
    today: date | None = None
    clock: Callable[[], datetime] = field(default=_now)
    schedule: str = "when `ar-sync run` next runs (e.g. from cron)"
    new_company_rules: str = "default"  # the shipped set a newly connected company starts on

    started: datetime | None = None  # the first run_clock() reading (the demo's noon)

    def run_clock(self) -> datetime:
        """The clock a run started here keeps its ledger by: the real one; when the console
        plans for a fixed day (the demo), noon UTC of that day when the console started, then
        running on, so what was sent and what comes next read on one calendar in every
        company's zone (before: sent "08 Dec", next "20 Nov")."""
        now = self.clock()
        if self.today is None:
            return now
        if self.started is None:
            self.started = now
        return datetime.combine(self.today, time(12), UTC) + (now - self.started)

    @property
    def prefix(self) -> str:
        return urlsplit(self.public_url).path.rstrip("/")

    @property
    def secure(self) -> bool:
        """Secure cookies everywhere but plain http on loopback."""
        parts = urlsplit(self.public_url)
        return not (parts.scheme == "http" and parts.hostname in LOOPBACK)

    def url(self, path: str) -> str:
        """An absolute URL (OAuth redirect URIs)."""
        return self.public_url.rstrip("/") + path


__all__ = ["LOOPBACK", "PLATFORMS", "ConsoleConfig", "SignIn"]
