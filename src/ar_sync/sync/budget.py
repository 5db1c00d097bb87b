"""A run's budget: how many platform calls and how much wall time it may still use.

Connectors spend from it before every HTTP call and feed it the platform's remaining-call
headers; the sync loop checks it before each action. When it runs out the run stops cleanly
and what is left goes first next run.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ar_sync.domain.errors import BudgetExhaustedError


@dataclass
class CallBudget:
    """Calls and time left for one run against one tenant (thread-safe)."""

    max_calls: int | None = None
    # seconds of wall time left, e.g. Lambda's context.get_remaining_time_in_millis() / 1000
    remaining_time: Callable[[], float] | None = None
    # stop starting new work when less than this is left (a call plus a ledger write must fit)
    time_reserve_seconds: float = 5.0
    calls: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)
    platform_remaining: int | None = None  # e.g. Xero's X-DayLimit-Remaining
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def until(cls, deadline_monotonic: float, *, max_calls: int | None = None) -> CallBudget:
        return cls(max_calls=max_calls,
                   remaining_time=lambda: deadline_monotonic - time.monotonic())

    def calls_left(self) -> int | None:
        limits = [x for x in (
            None if self.max_calls is None else self.max_calls - self.calls,
            self.platform_remaining,
        ) if x is not None]
        return min(limits) if limits else None

    def time_left(self) -> float | None:
        return None if self.remaining_time is None else self.remaining_time()

    def can_spend(self, calls: int = 1) -> bool:
        left = self.calls_left()
        if left is not None and left < calls:
            return False
        t = self.time_left()
        return t is None or t > self.time_reserve_seconds

    def spend(self, endpoint: str, calls: int = 1) -> None:
        """Record a call about to be made; raise BudgetExhaustedError if it does not fit."""
        with self._lock:
            if not self.can_spend(calls):
                raise BudgetExhaustedError(
                    f"budget used up before {endpoint}: {self.calls} calls made, "
                    f"{self.calls_left()} calls and {self.time_left()} s left"
                )
            self.calls += calls
            self.by_endpoint[endpoint] += calls

    def observe_remaining(self, remaining: int | None) -> None:
        """Feed the platform's own count of calls left (the tighter of day/minute limits)."""
        if remaining is not None:
            with self._lock:
                self.platform_remaining = remaining
