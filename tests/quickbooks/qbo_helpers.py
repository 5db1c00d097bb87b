"""Helpers shared by the QuickBooks tests (a uniquely named module, importable from them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlparse

import requests

from ar_sync.store.memory import MemoryTokenStore
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import Connection, PlatformSettings
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator
from ar_sync_quickbooks import QuickBooksConnector, QuickBooksPlugin


class FakeClock:
    """A settable clock shared by the emulator and the connector."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now = self.now + timedelta(seconds=seconds)


@dataclass
class Session:
    emu: QuickBooksEmulator
    settings: PlatformSettings
    plugin: QuickBooksPlugin
    store: MemoryTokenStore
    connection: Connection
    budget: CallBudget
    sleeps: list[float]

    def open(self, budget: CallBudget | None = None) -> QuickBooksConnector:
        return self.plugin.open(self.settings, self.connection, self.store,
                                budget or self.budget, clock=self.emu.clock)


def connect(emu: QuickBooksEmulator, plugin: QuickBooksPlugin,
            settings: PlatformSettings) -> tuple[MemoryTokenStore, Connection]:
    """Consent through the emulator's HTTP authorize endpoint, then the plugin's exchange."""
    url = plugin.authorization_url(settings, state="st4te", code_challenge=None)
    redirect = requests.get(url, allow_redirects=False, timeout=5)
    assert redirect.status_code == 302
    params = {k: v[0] for k, v in parse_qs(urlparse(redirect.headers["Location"]).query).items()}
    assert params["state"] == "st4te"
    tokens, companies = plugin.exchange_code(settings, code=params["code"], code_verifier=None,
                                             callback_params=params)
    store = MemoryTokenStore()
    connection = Connection(id=f"quickbooks:{companies[0].external_id}", platform="quickbooks",
                            external_id=companies[0].external_id, name=companies[0].name)
    assert store.save_tokens(connection.id, tokens, expected_version=-1)
    return store, connection
