"""Exactly-once under crashes, stalls, lost responses, throttling and racing runners, over one
or several days (in-memory platform that replays e-mails by key but never notes or fees).

Runs AR_SYNC_FAULT_SCHEDULES random schedules per rule set (default 150; `pytest -m slow`
runs 2,000). test_protocol_breakages.py proves these schedules fail when the protocol breaks.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from journey_support import old_journey

from ar_sync.domain.models import Invoice
from ar_sync.sync.connector import Connection

from .fakes import FakeConnector, FakePlatform, FaultPlan
from .harness import Tally, run_schedule, scratch_dir

CONNECTION = Connection(id="fake:1", platform="fake", external_id="1", name="Fake Ltd")
TODAY = date(2026, 11, 16)


class FakeAdapter:
    def __init__(self) -> None:
        self.state = FakePlatform()

    def reset(self, invoices: list[Invoice]) -> None:
        self.state = FakePlatform(invoices={i.id: i for i in invoices})

    def connector(self, connection: Connection, rng: random.Random, *, faulty: bool
                  ) -> FakeConnector:
        plan = FaultPlan(rng=rng, platform_keys="email-only")
        if faulty:
            plan.p_transient_before = rng.choice([0, 0.1, 0.3])
            plan.p_drop_after = rng.choice([0, 0.1, 0.3])
            plan.p_throttle = rng.choice([0, 0.2])
        return FakeConnector(self.state, connection, plan)

    def effects(self) -> Counter[str]:
        return self.state.effects()


def make_invoices(rng: random.Random) -> list[Invoice]:
    invoices = []
    for n in range(rng.randint(3, 10)):
        currency = rng.choice(["USD", "GBP", "JPY", "EUR"])
        total = Decimal(rng.randint(50, 20000)) if currency != "JPY" else Decimal(
            rng.randint(5000, 900000))
        due = TODAY - timedelta(days=rng.randint(-10, 100))
        invoices.append(Invoice(
            platform="fake", tenant=CONNECTION.id, id=f"inv-{n}", number=f"INV-{1000 + n}",
            customer_id=f"c{n % 3}", customer_name=f"Customer {n % 3}",
            customer_email=f"c{n % 3}@example.com", issue_date=due - timedelta(days=30),
            due_date=due, currency=currency, total=total, balance=total,
            updated_at=datetime(2026, 10, 1, tzinfo=UTC)))
    return invoices


def _schedules(default: int) -> int:
    return int(os.environ.get("AR_SYNC_FAULT_SCHEDULES", default))


def _run(count: int, policy_name: str) -> Tally:
    tally = Tally()
    policy = old_journey(policy_name)
    adapter = FakeAdapter()
    with scratch_dir() as workdir:
        for seed in range(count):
            run_schedule(seed, adapter, make_invoices, policy, workdir, tally, CONNECTION)
    return tally


def check(tally: Tally) -> None:
    assert tally.schedules > 0 and tally.actions_expected > 0
    # the faults really happened
    assert tally.crashes > 0 and tally.concurrent_rounds > 0 and tally.stalls > 0
    assert tally.days > tally.schedules  # some schedules span several days (leftovers)
    assert tally.failures == []
    assert (tally.duplicates, tally.lost, tally.extra, tally.mismatch) == (0, 0, 0, 0)


@pytest.mark.parametrize("policy_name", ["default", "firm"])
def test_exactly_once_under_random_faults(policy_name: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    tally = _run(_schedules(150), policy_name)
    with capsys.disabled():
        print(f"\n[fault-injection fake/{policy_name}] {tally.line()}")
    check(tally)


@pytest.mark.slow
def test_exactly_once_full_suite(capsys: pytest.CaptureFixture[str]) -> None:
    tally = _run(_schedules(2000), "default")
    with capsys.disabled():
        print(f"\n[fault-injection fake/full] {tally.line()}")
    check(tally)
