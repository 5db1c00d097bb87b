"""Consoles for the tests: two businesses' companies in one SQLite store, no platform."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ar_sync.console.app import build_app
from ar_sync.console.config import ConsoleConfig
from ar_sync.console.signin import LocalSignIn
from ar_sync.domain.errors import SettingsError
from ar_sync.domain.models import Invoice, InvoiceStatus
from ar_sync.messages.sending import MailSetup
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import Connection, PlatformSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TODAY = date(2026, 11, 16)
A = Connection(id="quickbooks:111", platform="quickbooks", external_id="111", name="Alpha Ltd",
               business_id="business-a", created_at=datetime(2026, 11, 1, tzinfo=UTC))
B = Connection(id="xero:222", platform="xero", external_id="222", name="Bravo Ltd",
               business_id="business-b", created_at=datetime(2026, 11, 1, tzinfo=UTC))


def invoice(conn: Connection, n: int, customer: str) -> Invoice:
    return Invoice(platform=conn.platform, tenant=conn.id, id=f"{conn.external_id}-{n}",
                   number=f"INV-{n}", customer_id=customer, customer_name=f"Customer {customer}",
                   customer_email=f"{customer}@example.com", issue_date=date(2026, 9, 1),
                   due_date=date(2026, 10, 1), currency="USD", total=Decimal("500.00"),
                   balance=Decimal("500.00"), status=InvoiceStatus.OPEN,
                   updated_at=datetime(2026, 10, 1, tzinfo=UTC))


def no_platform(platform: str) -> PlatformSettings:
    raise SettingsError(f"AR_SYNC_{platform.upper()}_CLIENT_ID is not set")


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "console.db", cipher=TokenCipher(TokenCipher.generate_key()))
    for conn, customer in ((A, "a1"), (B, "b1")):
        s.save_connection(conn)
        s.save_invoices(conn.id, [invoice(conn, 1, customer), invoice(conn, 2, customer)],
                        replace_all=True)
    return s


@pytest.fixture
def cfg(store: SQLiteStore) -> ConsoleConfig:
    return ConsoleConfig(store=store, settings_for=no_platform, mail=MailSetup,
                         public_url="http://127.0.0.1:8780", session_key=secrets.token_bytes(32),
                         signin=LocalSignIn("business-a"), today=TODAY)


def client(cfg: ConsoleConfig, business: str | None = None) -> TestClient:
    """A browser: signed in as `business` through a one-time link (None: not signed in)."""
    c = TestClient(build_app(cfg), base_url="http://127.0.0.1:8780", follow_redirects=False)
    if business is not None:
        assert isinstance(cfg.signin, LocalSignIn)
        answer = c.get(f"/login/{cfg.signin.issue(business)}")
        assert answer.status_code == 303
    return c


@pytest.fixture
def browser_a(cfg: ConsoleConfig) -> Iterator[TestClient]:
    with client(cfg, "business-a") as c:
        yield c
