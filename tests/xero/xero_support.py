"""Helpers for the Xero tests: a fake clock, the emulator, and connected connectors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from sync.rounds import Clock

from ar_sync.connect.tokens import pkce_pair
from ar_sync.store.memory import MemoryTokenStore
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import Connection
from ar_sync_emulators.books import demo_company
from ar_sync_emulators.xero.server import XeroEmulator
from ar_sync_xero import XeroConnector, XeroPlugin

START = datetime(2026, 11, 16, 12, 0, tzinfo=UTC)


class FakeClock(Clock):
    """Shared by emulator and connector; `sleep` advances it, so Retry-After costs no time."""

    def __init__(self, start: datetime = START) -> None:
        super().__init__(start)
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock) -> Iterator[XeroEmulator]:
    emulator = XeroEmulator(clock=clock)
    emulator.seed(demo_company())
    with emulator.serve():
        yield emulator


@pytest.fixture
def nz(clock: FakeClock) -> Iterator[XeroEmulator]:
    """The New Zealand GST organisation (ar_sync_emulators/xero/seed.py), served."""
    emulator = XeroEmulator(clock=clock)
    emulator.seed_nz_gst()
    with emulator.serve():
        yield emulator


def access_token(emu: XeroEmulator, scope: str | None = None) -> str:
    """An access token from the authorization-code grant (client id and secret as Basic)."""
    s = emu.settings()
    code = parse_qs(urlparse(emu.authorize(s.client_id, s.redirect_uri, "st",
                                           scope=scope)).query)["code"][0]
    got = requests.post(s.endpoints["token"], data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": s.redirect_uri},
        auth=(s.client_id, s.client_secret), timeout=5)
    assert got.status_code == 200, got.text
    return str(got.json()["access_token"])


@dataclass
class Session:
    connector: XeroConnector
    store: MemoryTokenStore
    budget: CallBudget
    connection: Connection


def connect(emu: XeroEmulator, clock: FakeClock, *, budget: CallBudget | None = None,
            tenant: str | None = None, scopes: tuple[str, ...] | None = None,
            **options: object) -> Session:
    """The real consent flow over HTTP: authorize (302), exchange, /connections, open."""
    settings = emu.settings()
    if scopes is not None:
        settings = settings.model_copy(update={"scopes": scopes})
    plugin = XeroPlugin(clock=clock)
    verifier, challenge = pkce_pair()
    url = plugin.authorization_url(settings, state="st-1", code_challenge=challenge)
    redirect = requests.get(url, allow_redirects=False, timeout=5)
    assert redirect.status_code == 302
    query = parse_qs(urlparse(redirect.headers["Location"]).query)
    assert query["state"] == ["st-1"]
    tokens, companies = plugin.exchange_code(settings, code=query["code"][0],
                                             code_verifier=verifier, callback_params={})
    external = tenant or companies[0].external_id
    connection = Connection(id=f"xero:{external}", platform="xero", external_id=external,
                            name=companies[0].name)
    store = MemoryTokenStore()
    assert store.save_tokens(connection.id, tokens, expected_version=-1)
    budget = budget or CallBudget()
    connector = XeroConnector(settings, connection, store, budget, clock=clock,
                              sleep=clock.sleep, **options)  # type: ignore[arg-type]
    return Session(connector, store, budget, connection)


@pytest.fixture
def session(emu: XeroEmulator, clock: FakeClock) -> Session:
    return connect(emu, clock)
