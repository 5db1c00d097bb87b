"""One Xero consent, several organisations: one token row per consent (authEventId), shared
and refreshed one at a time, so the organisations run in any order, concurrently, without
`invalid_grant`; a new consent for an organisation moves it to the new row cleanly."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from xero_support import FakeClock

from ar_sync.connect.onboarding import finish_connect, start_connect
from ar_sync.domain.errors import ReauthorizationRequiredError
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.memory import MemoryTokenStore
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import Connection
from ar_sync_emulators.books import demo_company
from ar_sync_emulators.xero.server import XeroEmulator
from ar_sync_xero import XeroConnector

KEY = TokenCipher.generate_key().decode()


@pytest.fixture
def emu3(clock: FakeClock) -> Iterator[XeroEmulator]:
    emulator = XeroEmulator(clock=clock, per_minute=None, per_day=None, concurrent=None)
    for n in range(3):
        emulator.seed(demo_company(n + 1, customers=3, invoices=8), name=f"Org {n + 1}")
    with emulator.serve():
        yield emulator


def _consent(emu: XeroEmulator, store: SQLiteStore, clock: FakeClock,
             tenants: list[str] | None = None) -> list[Connection]:
    """start_connect -> the consent screen (granting `tenants`) -> finish_connect."""
    settings = emu.settings()
    url = start_connect(store, "xero", "biz-1", settings, now=clock())
    if tenants is None:
        redirect = requests.get(url, allow_redirects=False, timeout=5).headers["Location"]
    else:
        q = dict(parse_qsl(urlsplit(url).query))
        redirect = emu.authorize(q["client_id"], q["redirect_uri"], q["state"],
                                 scope=q["scope"], code_challenge=q["code_challenge"],
                                 tenants=tenants)
    params = dict(parse_qsl(urlsplit(redirect).query))
    return finish_connect(store, params, settings, now=clock())


def _run_all(emu: XeroEmulator, store: SQLiteStore, clock: FakeClock,
             connections: list[Connection], order: list[int]) -> list[BaseException]:
    """Every organisation's fetch at once, one thread each, started in `order`."""
    errors: list[BaseException] = []
    connectors = [XeroConnector(emu.settings(), c, store, CallBudget(), clock=clock,
                                sleep=clock.sleep) for c in connections]

    def run(connector: XeroConnector) -> None:
        try:
            connector.fetch_open_invoices()
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(connectors[i],)) for i in order]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return errors


def test_organisations_of_one_consent_share_one_token_row(emu3: XeroEmulator, tmp_path: Path,
                                                          clock: FakeClock) -> None:
    store = SQLiteStore(tmp_path / "s.db", cipher=TokenCipher(KEY))
    connections = _consent(emu3, store, clock)
    assert len(connections) == 3
    assert len({c.token_id for c in connections}) == 1 and connections[0].token_id
    assert all(store.load_tokens(c.id) is None for c in connections)
    rng = random.Random(5)
    for round_ in range(6):
        clock.advance(31 * 60)  # every access token expired, the old refresh token's grace over
        order = rng.sample(range(3), 3)
        assert _run_all(emu3, store, clock, connections, order) == []
        assert emu3.identity.refreshes == round_ + 1  # one refresh per round, not three
    assert emu3.identity.grace_refreshes == 0  # nobody ever refreshed with a used token


def test_copies_per_organisation_lose_the_grant(emu3: XeroEmulator, clock: FakeClock,
                                                tmp_path: Path) -> None:
    """The failure the shared row prevents: a copy whose refresh token was rotated away."""
    store = SQLiteStore(tmp_path / "s.db", cipher=TokenCipher(KEY))
    first, second, _ = _consent(emu3, store, clock)
    tokens = store.load_tokens(first.token_key)
    assert tokens is not None
    copies = MemoryTokenStore()
    for c in (first, second):
        copies.save_tokens(c.id, tokens, expected_version=-1)
    own = [c.model_copy(update={"token_id": None}) for c in (first, second)]
    clock.advance(31 * 60)
    XeroConnector(emu3.settings(), own[0], copies, CallBudget(), clock=clock).fetch_open_invoices()
    clock.advance(31 * 60)
    with pytest.raises(ReauthorizationRequiredError, match="invalid_grant"):
        XeroConnector(emu3.settings(), own[1], copies, CallBudget(),
                      clock=clock).fetch_open_invoices()


def test_a_new_consent_moves_an_organisation_cleanly(emu3: XeroEmulator, tmp_path: Path,
                                                     clock: FakeClock) -> None:
    store = SQLiteStore(tmp_path / "s.db", cipher=TokenCipher(KEY))
    first = _consent(emu3, store, clock)
    moved = first[1].external_id
    (again,) = _consent(emu3, store, clock, tenants=[moved])
    assert again.id == first[1].id and again.token_id != first[1].token_id
    now = {c.id: c for c in store.list_connections()}
    assert now[first[1].id].token_id == again.token_id
    assert now[first[0].id].token_id == first[0].token_id  # the others keep their consent
    for _ in range(2):
        clock.advance(31 * 60)
        assert _run_all(emu3, store, clock, list(now.values()), [2, 1, 0]) == []
    assert emu3.identity.grace_refreshes == 0
