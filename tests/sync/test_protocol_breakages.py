"""Meta-tests: the fault suites can fail. Each deliberate breakage of the protocol (see
breakages.py) must make the very same fault-injection schedules that pass on the intact code
report duplicates, losses or a ledger/platform mismatch — read from the platform's state,
with notes and fees not replayed by key (`email-only`)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from journey_support import old_journey

from .breakages import EMULATOR_BREAKAGES, FAKE_BREAKAGES
from .emulators import EmulatorAdapter, small_company
from .harness import Tally, run_schedule, scratch_dir
from .test_sync_faults_fake import CONNECTION, FakeAdapter, make_invoices

FAKE_SCHEDULES = 200  # at most; each breakage is caught within 1–50 (≈0.1 s each)
EMULATOR_SCHEDULES = 12


def _until_caught(run: Callable[[int, Tally], None], limit: int) -> Tally:
    tally = Tally()
    for seed in range(limit):
        run(seed, tally)
        if tally.failures:
            break
    return tally


@pytest.mark.parametrize("name", sorted(FAKE_BREAKAGES))
def test_fake_fault_suite_catches(name: str, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    FAKE_BREAKAGES[name](monkeypatch)
    policy = old_journey("platform-email")
    with scratch_dir() as workdir:
        tally = _until_caught(lambda seed, t: run_schedule(
            seed, FakeAdapter(), make_invoices, policy, workdir, t, CONNECTION), FAKE_SCHEDULES)
    with capsys.disabled():
        print(f"\n[breakage {name}] caught after {tally.schedules} schedule(s): "
              f"{tally.failures[:1]}")
    assert tally.failures, f"{name}: {FAKE_SCHEDULES} schedules passed with the protocol broken"


@pytest.mark.parametrize("name", sorted(EMULATOR_BREAKAGES))
def test_emulator_fault_suite_catches(name: str, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    platform, breakage = EMULATOR_BREAKAGES[name]
    breakage(monkeypatch)
    policy = old_journey("platform-email")
    adapter = EmulatorAdapter(platform)

    def run(seed: int, tally: Tally) -> None:
        adapter.reset(small_company(random.Random(seed)))
        assert adapter.connection is not None
        run_schedule(seed, adapter, small_company, policy, workdir, tally, adapter.connection)

    try:
        with scratch_dir() as workdir:
            tally = _until_caught(run, EMULATOR_SCHEDULES)
    finally:
        adapter.close()
    with capsys.disabled():
        print(f"\n[breakage {name}] caught after {tally.schedules} schedule(s): "
              f"{tally.failures[:1]}")
    assert tally.failures, f"{name}: {EMULATOR_SCHEDULES} schedules passed, protocol broken"
