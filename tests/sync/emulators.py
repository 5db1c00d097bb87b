"""A fault-injection platform adapter over the real emulators, reached through the real SDKs.

A fresh emulator per schedule, tokens from the real OAuth flow, key replay chosen per adapter
(`email-only` by default: notes and fees are NOT replayed, so only the ledger keeps them single).
"""

from __future__ import annotations

import random
from collections import Counter
from contextlib import ExitStack
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from ar_sync.store.memory import MemoryTokenStore
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import Connection, Connector, load_plugin
from ar_sync_emulators.base import RateLimiter
from ar_sync_emulators.books import DemoCompany, demo_company
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator
from ar_sync_emulators.replay import ReplayMode
from ar_sync_emulators.xero.server import XeroEmulator

from .harness import START
from .rounds import Clock


class EmulatorAdapter:
    """One platform's emulator behind the harness's `Platform` protocol."""

    def __init__(self, platform: str, replay: ReplayMode | str = "email-only", *,
                 nz_gst: bool = False) -> None:
        self.platform = platform
        # Xero only: seed the NZ GST organisation (tax, discounts, tracking, lock date) sized
        # and seeded from the company the harness passes, instead of the company itself.
        self.nz_gst = nz_gst
        self.replay = ReplayMode.parse(replay)
        self.plugin = load_plugin(platform)
        self.stack = ExitStack()
        self.emu: Any = None
        self.tokens = MemoryTokenStore()
        self.connection: Connection | None = None
        # The emulator keeps the schedule's time, as a platform keeps the runners' (an e-mail
        # is reconciled by when the invoice's record says it was sent); the harness moves it.
        self.clock = Clock(START)

    def _new_emulator(self) -> Any:
        if self.platform == "quickbooks":
            emu = QuickBooksEmulator(clock=self.clock, rate_per_minute=100_000,
                                     replay=self.replay)
            emu.batch_limiter = RateLimiter(per_minute=None)  # a schedule's time stands still
            return emu
        return XeroEmulator(clock=self.clock, per_minute=100_000, per_day=1_000_000,
                            concurrent=50, replay=self.replay)

    def reset(self, company: DemoCompany) -> None:
        self.clock.set(START)
        self.stack.close()
        self.stack = ExitStack()
        self.emu = self._new_emulator()
        if self.nz_gst:
            self.emu.seed_nz_gst(invoices=len(company.invoices) + 8,
                                 seed=sum(int(i.total * 100) for i in company.invoices))
        else:
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
        return self.plugin.open(self.settings, self.connection, self.tokens, CallBudget(),
                                clock=self.clock)

    def effects(self) -> Counter[str]:
        return Counter(e.key for e in self.emu.effects() if e.key)

    def learn_keys(self, keys: set[str]) -> None:
        """Action keys runners claimed, for resolving batched fees' short references."""
        learn = getattr(self.emu, "learn_keys", None)
        if learn is not None:
            learn(keys)

    def close(self) -> None:
        self.stack.close()


def small_company(rng: random.Random) -> DemoCompany:
    return demo_company(seed=rng.randint(1, 10_000), customers=4, invoices=rng.randint(4, 8))
