"""A total deadline for one platform call, however the platform answers (or does not).

A socket timeout bounds each read, not the call: a platform that drip-feeds its answer, or a
frozen process that accepted the connection and never answers, can hold a call for its read
timeout again and again. `within` runs the call on a daemon thread and stops waiting at the
deadline with PlatformTimeoutError; the abandoned call ends by its own read timeout (set to
the deadline as well), and being a daemon it never holds the process's exit. The connectors
wrap every HTTP call in it; DEADLINE is the default.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from ar_sync.domain.errors import PlatformTimeoutError

T = TypeVar("T")
DEADLINE = 30.0  # seconds for one HTTP call, connect to last byte


class _Outcome(Generic[T]):
    """What the worker thread leaves for the caller: a value or an exception."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None


def within(seconds: float, fn: Callable[[], T], *, what: str) -> T:
    """`fn()`, or PlatformTimeoutError when it has not returned after `seconds`."""
    outcome: _Outcome[T] = _Outcome()

    def work() -> None:
        try:
            outcome.value = fn()
        except BaseException as exc:  # handed to the caller, never lost on this thread
            outcome.error = exc
        finally:
            outcome.done.set()

    threading.Thread(target=work, name="ar-sync-platform-call", daemon=True).start()
    if not outcome.done.wait(seconds):
        raise PlatformTimeoutError(f"{what}: no answer within {seconds:g} s")
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]  # set when no error


__all__ = ["DEADLINE", "within"]
