"""Fixtures: a seeded QuickBooks emulator on 127.0.0.1 and a connector opened through the
plugin, with tokens obtained by the real OAuth flow (intuit-oauth AuthClient)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from qbo_helpers import Session, connect

from ar_sync.sync.budget import CallBudget
from ar_sync_emulators.books import DemoCompany, demo_company
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator
from ar_sync_quickbooks import QuickBooksPlugin


@pytest.fixture(scope="module")
def company() -> DemoCompany:
    return demo_company(invoices=120, customers=20)


@pytest.fixture
def qbo(company: DemoCompany) -> Iterator[Session]:
    emu = QuickBooksEmulator().seed(company)
    sleeps: list[float] = []
    plugin = QuickBooksPlugin(sleep=sleeps.append)
    with emu.serve():
        settings = emu.settings()
        store, connection = connect(emu, plugin, settings)
        emu.counters.reset()
        yield Session(emu, settings, plugin, store, connection, CallBudget(), sleeps)

