"""Exactly-once through the real connectors, SDKs and HTTP, against both emulators.

Each schedule seeds a small company, then runs crashing and racing runners while the emulator
fails calls (5xx), throttles (429), drops responses after applying writes, and expires tokens.
The verdict is read from the emulator's own state (its `effects()`), not from our ledger.
Key replay is `email-only`: a note or fee written twice shows up twice.
AR_SYNC_EMULATOR_SCHEDULES sets how many schedules per platform (default 12 here).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest
from journey_support import old_journey

from ar_sync_emulators.books import demo_company

from .emulators import EmulatorAdapter, small_company
from .harness import Tally, run_one_crash, run_schedule, scratch_dir


@pytest.fixture(params=["quickbooks", "xero", "xero-nz-gst"])
def adapter(request: pytest.FixtureRequest) -> Iterator[EmulatorAdapter]:
    a = EmulatorAdapter(request.param.split("-")[0], nz_gst=request.param == "xero-nz-gst")
    yield a
    a.close()


def test_exactly_once_through_real_connectors(adapter: EmulatorAdapter,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    count = int(os.environ.get("AR_SYNC_EMULATOR_SCHEDULES", "12"))
    policy = old_journey("platform-email")
    tally = Tally()
    with scratch_dir() as workdir:
        for seed in range(count):
            # the connection id depends on the emulator's company id: learn it from a reset
            adapter.reset(small_company(random.Random(seed)))
            assert adapter.connection is not None
            run_schedule(seed, adapter, small_company, policy, workdir, tally,
                         adapter.connection)
    with capsys.disabled():
        org = " nz-gst" if adapter.nz_gst else ""
        print(f"\n[fault-injection {adapter.platform}{org}] {tally.line()}")
    assert tally.actions_expected > 0 and tally.crashes + tally.stalls > 0
    assert tally.failures == []
    assert (tally.duplicates, tally.lost, tally.extra, tally.mismatch) == (0, 0, 0, 0)


def _crash_at_every_write(adapter: EmulatorAdapter, label: str,
                          capsys: pytest.CaptureFixture[str]) -> None:
    """A crash before and after each of a run's first N write attempts (N from
    $AR_SYNC_BATCH_CRASHES, default 12), one runner at a time: nothing written twice, nothing
    lost, judged from the emulator's own state; crashes must land before, inside and after a
    batch call."""
    policy = old_journey("platform-email")
    tally = Tally()
    company = demo_company(seed=11, customers=4, invoices=12)
    try:
        with scratch_dir() as workdir:
            adapter.reset(company)
            assert adapter.connection is not None
            for n in range(1, int(os.environ.get("AR_SYNC_BATCH_CRASHES", "12")) + 1):
                for where in ("before", "after"):
                    run_one_crash(n * 2 + (where == "after"), adapter, company, policy,
                                  workdir, tally, adapter.connection, **{where: n})
    finally:
        adapter.close()
    with capsys.disabled():
        print(f"\n[fault-injection {label} batch crashes] {tally.line()}")
    assert all(tally.batch_crashes[k] > 0 for k in ("before", "inside", "after")), tally.line()
    assert tally.failures == []
    assert (tally.duplicates, tally.lost, tally.extra, tally.mismatch) == (0, 0, 0, 0)


def test_quickbooks_crashes_before_inside_and_after_a_batch_call(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Batched writes (QuickBooks /batch) under a crash at every write attempt of a run, the
    emulator failing, throttling and dropping answers meanwhile."""
    _crash_at_every_write(EmulatorAdapter("quickbooks"), "quickbooks", capsys)


def test_xero_crashes_before_inside_and_after_a_batch_call(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The same for Xero's batched fees (POST /Invoices?summarizeErrors=false), on the NZ GST
    organisation (fee lines on tax-inclusive, discounted, tracked invoices, fee invoices for
    part-paid and locked ones)."""
    _crash_at_every_write(EmulatorAdapter("xero", nz_gst=True), "xero", capsys)


@pytest.mark.parametrize("platform", ["quickbooks", "xero"])
def test_with_key_replay_off_a_crash_right_after_a_send_never_sends_again(
        platform: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A platform that forgets idempotency keys (replay `off`): a runner dies right after each
    of a run's first four platform e-mails in turn, while the emulator fails, throttles and
    drops answers; then random schedules of crashing, racing, stalled runners. A send the
    ledger never heard of is found on the invoice's own record (QuickBooks `EmailStatus` /
    `DeliveryInfo.DeliveryTime`, Xero's "Emailed" history entry) and not sent again. Before
    that reconciliation these schedules sent e-mails twice (the `duplicates` count)."""
    adapter = EmulatorAdapter(platform, replay="off")
    policy = old_journey("platform-email")
    tally = Tally()
    company = demo_company(seed=11, customers=8, invoices=24)
    try:
        with scratch_dir() as workdir:
            adapter.reset(company)
            assert adapter.connection is not None
            for n in range(1, 5):  # right after the run's 1st, 2nd, ... platform e-mail
                run_one_crash(500 + n, adapter, company, policy, workdir, tally,
                              adapter.connection, after=n, only="email")
            for seed in range(int(os.environ.get("AR_SYNC_REPLAY_OFF_SCHEDULES", "6"))):
                adapter.reset(small_company(random.Random(700 + seed)))
                run_schedule(700 + seed, adapter, small_company, policy, workdir, tally,
                             adapter.connection)
    finally:
        adapter.close()
    with capsys.disabled():
        print(f"\n[fault-injection {platform} replay off] {tally.line()}")
    assert tally.sent_then_crashed >= 4, tally.line()
    assert tally.failures == []
    assert (tally.duplicates, tally.lost, tally.extra, tally.mismatch) == (0, 0, 0, 0)
