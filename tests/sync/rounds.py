"""What the fault-injection schedules share (harness.py, test_sync_waivers_faults.py,
messaging/mail_harness.py): the counts, a clock the runners read while the schedule moves it,
and a round of concurrent runners."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class ScheduleTally:
    """The counts every fault schedule keeps (each harness adds its own, and prints them)."""

    schedules: int = 0
    runs: int = 0
    crashes: int = 0
    duplicates: int = 0
    lost: int = 0
    failures: list[str] = field(default_factory=list)


class Clock:
    """The schedule's time: runners in several threads read it, the schedule sets it."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment


def run_round(threads: Iterable[threading.Thread]) -> None:
    """Start the round's runners together and wait for every one."""
    started = list(threads)
    for t in started:
        t.start()
    for t in started:
        t.join()
