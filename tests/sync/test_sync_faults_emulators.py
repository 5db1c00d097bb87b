"""Exactly-once through the real connectors, SDKs and HTTP, against both emulators.

Each schedule seeds a small company, then runs crashing and racing runners while the emulator
fails calls (5xx), throttles (429), drops responses after applying writes, and expires tokens.
The verdict is read from the emulator's own state (its `effects()`), not from our ledger.
AR_SYNC_EMULATOR_SCHEDULES sets how many schedules per platform (default 12 here).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from ar_sync.budget import CallBudget
from ar_sync.connector import Connection, Connector, load_plugin
from ar_sync.policy import load_policy
from ar_sync.sandbox.demo import DemoCompany, demo_company
from ar_sync.sandbox.quickbooks import QuickBooksEmulator
from ar_sync.sandbox.xero import XeroEmulator
from ar_sync.store.memory import MemoryTokenStore

from .harness import Tally, run_schedule


class EmulatorAdapter:
    """A fresh emulator per schedule, tokens from the real OAuth flow, faults switched on."""

    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.plugin = load_plugin(platform)
        self.stack = ExitStack()
        self.emu: Any = None
        self.tokens = MemoryTokenStore()
        self.connection: Connection | None = None

    def _new_emulator(self) -> Any:
        if self.platform == "quickbooks":
            return QuickBooksEmulator(rate_per_minute=100_000)
        return XeroEmulator(per_minute=100_000, per_day=1_000_000, concurrent=50)

    def reset(self, company: DemoCompany) -> None:
        self.stack.close()
        self.stack = ExitStack()
        self.emu = self._new_emulator()
        self.emu.seed(company)
        self.stack.enter_context(self.emu.serve())
        self.settings = self.emu.settings()
        url = self.plugin.authorization_url(self.settings, state="s", code_challenge=None)
        location = requests.get(url, allow_redirects=False, timeout=5).headers["Location"]
        params = dict(parse_qsl(urlsplit(location).query))
        tokens, companies = self.plugin.exchange_code(
            self.settings, code=params["code"], code_verifier=None, callback_params=params)
        self.connection = Connection(id=f"{self.platform}:{companies[0].external_id}",
                                     platform=self.platform,
                                     external_id=companies[0].external_id)
        self.tokens = MemoryTokenStore()
        self.tokens.save_tokens(self.connection.id, tokens, expected_version=-1)

    def connector(self, connection: Connection, rng: random.Random, *, faulty: bool
                  ) -> Connector:
        if faulty:
            faults = self.emu.faults
            if rng.random() < 0.5:
                faults.fail_next(rng.randint(1, 3), status=rng.choice([500, 503]))
            if rng.random() < 0.5:
                faults.throttle_next(rng.randint(1, 4), retry_after=0)
            if rng.random() < 0.6:
                faults.drop_after_write(rng.randint(1, 3))
            if rng.random() < 0.3:
                faults.expire_tokens()
        assert self.connection is not None
        return self.plugin.open(self.settings, self.connection, self.tokens, CallBudget())

    def effects(self) -> Counter[str]:
        return Counter(e.key for e in self.emu.effects() if e.key)

    def close(self) -> None:
        self.stack.close()


def small_company(rng: random.Random) -> DemoCompany:
    return demo_company(seed=rng.randint(1, 10_000), customers=4, invoices=rng.randint(4, 8))


@pytest.fixture(params=["quickbooks", "xero"])
def adapter(request: pytest.FixtureRequest) -> Iterator[EmulatorAdapter]:
    a = EmulatorAdapter(request.param)
    yield a
    a.close()


def test_exactly_once_through_real_connectors(adapter: EmulatorAdapter, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    count = int(os.environ.get("AR_SYNC_EMULATOR_SCHEDULES", "12"))
    policy = load_policy("default")
    tally = Tally()
    for seed in range(count):
        # the connection id depends on the emulator's company id: learn it from a reset
        adapter.reset(small_company(random.Random(seed)))
        assert adapter.connection is not None
        run_schedule(seed, adapter, small_company, policy, tmp_path, tally, adapter.connection)
    with capsys.disabled():
        print(f"\n[fault-injection {adapter.platform}] {tally.line()}")
    assert tally.actions_expected > 0 and tally.crashes > 0
    assert tally.failures == []
    assert (tally.duplicates, tally.lost, tally.extra) == (0, 0, 0)
