"""The e-mail fault suite: no customer gets two messages a day, no reminder twice, nothing
lost, across crashes, concurrent runners and a misbehaving SMTP server.

Default: 15 schedules (a few seconds). More: AR_SYNC_MAIL_SCHEDULES=400 pytest -m slow
tests/messaging/test_mail_faults.py -s (prints the figures the README quotes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ar_sync_emulators.smtp_sink import SmtpSink

from .helpers import rules
from .mail_harness import MailTally, run_schedule


@pytest.fixture(scope="module")
def sink() -> Iterator[SmtpSink]:
    with SmtpSink().serve() as running:
        yield running


def _suite(count: int, sink: SmtpSink, tmp_path: Path) -> MailTally:
    tally = MailTally()
    policy = rules()
    for seed in range(count):
        run_schedule(seed, policy, sink, tmp_path, tally)
    print("\n" + tally.line())
    return tally


def test_mail_faults(sink: SmtpSink, tmp_path: Path) -> None:
    tally = _suite(15, sink, tmp_path)
    assert tally.failures == []
    assert tally.duplicates == 0 and tally.lost == 0
    assert tally.crashes > 0 and tally.concurrent_rounds > 0 and tally.server_faults > 0
    assert tally.messages > 0 and tally.ambiguous > 0  # the faults did bite


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_mail_faults_many(sink: SmtpSink, tmp_path: Path) -> None:
    tally = _suite(int(os.environ.get("AR_SYNC_MAIL_SCHEDULES", "400")), sink, tmp_path)
    assert tally.failures == []
    assert tally.duplicates == 0 and tally.lost == 0
