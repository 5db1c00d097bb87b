"""The shared retry policy and the run budget."""

from __future__ import annotations

import pytest

from ar_sync.domain.errors import (
    BudgetExhaustedError,
    PlatformValidationError,
    RateLimitedError,
    TransientError,
)
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.retry import call_with_retries


def _flaky(failures: list[Exception], result: str = "ok"):  # type: ignore[no-untyped-def]
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if failures:
            raise failures.pop(0)
        return result

    return fn, calls


def test_transient_errors_are_retried_then_succeed() -> None:
    sleeps: list[float] = []
    fn, calls = _flaky([TransientError("503"), TransientError("reset")])
    assert call_with_retries(fn, what="t", sleep=sleeps.append) == "ok"
    assert calls["n"] == 3 and len(sleeps) == 2


def test_rate_limit_waits_exactly_retry_after() -> None:
    sleeps: list[float] = []
    fn, _ = _flaky([RateLimitedError("429", retry_after=7), RateLimitedError("429", retry_after=2)])
    call_with_retries(fn, what="t", sleep=sleeps.append)
    assert sleeps == [7, 2]


def test_retry_after_is_capped() -> None:
    sleeps: list[float] = []
    fn, _ = _flaky([RateLimitedError("429", retry_after=3600)])
    call_with_retries(fn, what="t", sleep=sleeps.append, max_wait=30)
    assert sleeps == [30]


def test_validation_errors_are_not_retried() -> None:
    fn, calls = _flaky([PlatformValidationError("bad line")])
    with pytest.raises(PlatformValidationError):
        call_with_retries(fn, what="t", sleep=lambda s: None)
    assert calls["n"] == 1


def test_gives_up_after_attempts_with_last_error() -> None:
    fn, calls = _flaky([TransientError(str(i)) for i in range(10)])
    with pytest.raises(TransientError, match="2"):
        call_with_retries(fn, what="t", attempts=3, sleep=lambda s: None)
    assert calls["n"] == 3


def test_budget_counts_calls_and_stops() -> None:
    budget = CallBudget(max_calls=3)
    budget.spend("GET /a")
    budget.spend("GET /a")
    assert budget.can_spend(1) and not budget.can_spend(2)
    budget.spend("POST /b")
    with pytest.raises(BudgetExhaustedError):
        budget.spend("POST /b")
    assert budget.by_endpoint == {"GET /a": 2, "POST /b": 1}


def test_budget_respects_platform_remaining_and_time() -> None:
    budget = CallBudget(max_calls=100)
    budget.observe_remaining(1)
    assert budget.calls_left() == 1
    left = [10.0]
    timed = CallBudget(remaining_time=lambda: left[0], time_reserve_seconds=5)
    assert timed.can_spend()
    left[0] = 4.0
    assert not timed.can_spend()


def test_a_call_without_an_answer_is_neither_retried_nor_reconciled_in_the_run() -> None:
    """PlatformTimeoutError (a silent platform): one deadline per run, not one per attempt;
    write_reconciled does not ask the silent platform whether the write is there either."""
    import time as _time
    from datetime import UTC, datetime

    from ar_sync.domain.errors import PlatformTimeoutError
    from ar_sync.sync.deadline import within
    from ar_sync.sync.retry import write_reconciled
    from ar_sync.sync.run_report import ActionOutcome, Breaker

    calls: list[str] = []

    def silent() -> str:
        calls.append("call")
        raise PlatformTimeoutError("no answer within 30 s")

    with pytest.raises(PlatformTimeoutError):
        call_with_retries(silent, what="read", sleep=lambda _s: None)
    looked: list[str] = []
    with pytest.raises(PlatformTimeoutError):
        write_reconciled(silent, lambda: looked.append("find") or None, what="write",
                         sleep=lambda _s: None)
    assert calls == ["call", "call"] and looked == []
    with pytest.raises(PlatformTimeoutError, match=r"drip-fed: no answer within 0\.2 s"):
        within(0.2, lambda: _time.sleep(5), what="drip-fed")  # a read timeout never fires
    assert within(1.0, lambda: "answered", what="quick") == "answered"
    now = datetime(2026, 11, 16, tzinfo=UTC)
    breaker = Breaker(lambda: now)
    retry = ActionOutcome("k", "note", "i", "1", "r", "retry")
    assert not breaker.opens(retry, started=now)  # a 5xx after retries: counted
    assert breaker.opens(ActionOutcome("k", "note", "i", "1", "r", "retry", silent=True),
                         started=now)  # no answer at all: stop at once
