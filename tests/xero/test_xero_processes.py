"""Several Xero organisations under one consent, run at once from separate processes (not
threads: the in-process row lock does not reach across them) against the emulator over HTTP.
The token row's versioned save is the only guard between processes: every round, every
access token is expired first and the emulator's clock moved past the 30-minute grace of
every used refresh token, so each process meets a 401 and refreshes (or takes the tokens
another process stored): no `invalid_grant`, ever, and the stored tokens keep working. The
same run with one copy of the tokens per organisation (what ar-sync did before) fails."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from xero_procs import run_organisation
from xero_support import FakeClock

from ar_sync.connect.onboarding import finish_connect, start_connect
from ar_sync.store.crypto import TokenCipher
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import Connection
from ar_sync_emulators.books import demo_company
from ar_sync_emulators.xero.server import XeroEmulator

KEY = TokenCipher.generate_key().decode()
ORGS = 3


@pytest.fixture
def emu(clock: FakeClock) -> Iterator[XeroEmulator]:
    emulator = XeroEmulator(clock=clock, per_minute=None, per_day=None, concurrent=None)
    for n in range(ORGS):
        emulator.seed(demo_company(n + 1, customers=3, invoices=8), name=f"Org {n + 1}")
    with emulator.serve():
        yield emulator


def _rounds(emu: XeroEmulator, clock: FakeClock, db: Path, connections: list[Connection]
            ) -> list[tuple[str, list[str], str | None, int]]:
    """The first organisation alone, then every organisation at once (one process each),
    twice; what each run reported."""
    ctx = multiprocessing.get_context("spawn")
    settings = emu.settings()
    reports = []
    for running in ([connections[0]], connections, connections):
        clock.advance(31 * 60)  # the grace of every refresh token used so far is over
        emu.faults.expire_tokens()  # and every access token issued so far is refused (401)
        barrier, out = ctx.Barrier(len(running)), ctx.Queue()
        procs = [ctx.Process(target=run_organisation,
                             args=(str(db), KEY, settings, c.id, barrier, out))
                 for c in running]
        for p in procs:
            p.start()
        reports += [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
    return reports


@pytest.mark.parametrize("shared", [True, False], ids=["one-row-per-grant", "copies"])
def test_organisations_of_one_grant_refresh_from_separate_processes(
        emu: XeroEmulator, clock: FakeClock, tmp_path: Path, shared: bool) -> None:
    db = tmp_path / "shared.db"
    store = SQLiteStore(db, cipher=TokenCipher(KEY))
    settings = emu.settings()
    url = start_connect(store, "xero", "biz-1", settings, now=clock())
    redirect = requests.get(url, allow_redirects=False, timeout=5).headers["Location"]
    connections = finish_connect(store, dict(parse_qsl(urlsplit(redirect).query)), settings,
                                 now=clock())
    assert len(connections) == ORGS and len({c.token_key for c in connections}) == 1
    token_row = connections[0].token_key
    first = store.load_tokens(token_row)
    assert first is not None
    if not shared:  # the old way: a copy of the grant's tokens per organisation
        connections = [c.model_copy(update={"token_id": None}) for c in connections]
        for c in connections:
            store.save_connection(c)
            store.save_tokens(c.id, first, expected_version=-1)
        reports = _rounds(emu, clock, db, connections)
        assert any("invalid_grant" in " ".join(errors) for _, errors, _, _ in reports)
        return
    refreshes = emu.identity.refreshes
    for connection_id, errors, stopped, calls in _rounds(emu, clock, db, connections):
        assert errors == [] and stopped is None, (connection_id, errors, stopped)
        assert calls > 0
    assert emu.identity.refreshes >= refreshes + 3  # at least one refresh per round
    stored = store.load_tokens(token_row)
    assert stored is not None and stored.version > first.version
    # the stored refresh token is the live one: a refresh with it succeeds
    assert emu.identity.refresh(stored.refresh_token)["access_token"]
    store.close()
