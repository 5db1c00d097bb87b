"""retry.write_reconciled: a write whose answer was lost is looked for before it is repeated."""

from __future__ import annotations

import pytest

from ar_sync.domain.errors import PlatformValidationError, RateLimitedError, TransientError
from ar_sync.sync.retry import write_reconciled


class Platform:
    """A write that applies, then (optionally) loses its answer; `find` sees what was applied."""

    def __init__(self, lose: int = 0, refuse: int = 0) -> None:
        self.applied: list[str] = []
        self.lose, self.refuse = lose, refuse
        self.finds = 0
        self.sleeps: list[float] = []

    def write(self) -> str:
        if self.refuse:
            self.refuse -= 1
            raise TransientError("503 before anything happened")
        self.applied.append(f"ref-{len(self.applied)}")
        if self.lose:
            self.lose -= 1
            raise TransientError("connection reset after the write")
        return self.applied[-1]

    def find(self) -> str | None:
        self.finds += 1
        return self.applied[0] if self.applied else None

    def call(self, *, attempts: int = 3, find: bool = True) -> str:
        return write_reconciled(self.write, self.find if find else (lambda: None), what="t",
                                attempts=attempts, sleep=self.sleeps.append)


def test_first_try_needs_no_search() -> None:
    p = Platform()
    assert p.call() == "ref-0" and p.finds == 0 and p.sleeps == []


def test_lost_answer_is_found_not_written_again() -> None:
    p = Platform(lose=1)
    assert p.call() == "ref-0"
    assert p.applied == ["ref-0"] and p.finds == 1 and p.sleeps == []


def test_refused_write_is_tried_again_after_a_search_and_a_pause() -> None:
    p = Platform(refuse=2)
    assert p.call() == "ref-0"
    assert p.applied == ["ref-0"] and p.finds == 2 and len(p.sleeps) == 2
    assert all(0 <= s <= 30 for s in p.sleeps)


def test_gives_up_after_its_attempts_with_the_last_error() -> None:
    p = Platform(refuse=3)
    with pytest.raises(TransientError, match="503"):
        p.call(attempts=3)
    assert p.applied == [] and p.finds == 2


def test_without_a_marker_the_write_is_repeated_under_its_key() -> None:
    p = Platform(lose=1)  # an e-mail: nothing to find, the platform's key is the guard
    assert p.call(find=False) == "ref-1"
    assert p.applied == ["ref-0", "ref-1"] and len(p.sleeps) == 1


@pytest.mark.parametrize("error", [RateLimitedError("429", retry_after=1.0),
                                   PlatformValidationError("400")])
def test_throttling_and_refusals_are_not_retried_here(error: Exception) -> None:
    calls = []

    def write() -> str:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        write_reconciled(write, lambda: "found", what="t", sleep=lambda s: None)
    assert calls == [1]


def test_pauses_grow_exponentially_from_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    bounds: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return high

    monkeypatch.setattr("ar_sync.sync.retry.random.uniform", uniform)
    p = Platform(refuse=3)
    assert p.call(attempts=4) == "ref-0"
    assert bounds == [(0, 0.5), (0, 1.0), (0, 2.0)] and p.sleeps == [0.5, 1.0, 2.0]
    capped = Platform(refuse=1)
    write_reconciled(capped.write, capped.find, what="t", max_wait=0.3,
                     sleep=capped.sleeps.append)
    assert bounds[-1] == (0, 0.3)
