"""One retry policy for every platform call (tenacity).

Retried: TransientError (5xx, connection errors, timeouts) with exponential backoff and full
jitter, and RateLimitedError after the platform's Retry-After. Never retried here: validation
errors, stale objects, lost authorisation, an exhausted budget. Writes reach this function only
with their idempotency key attached, so a retried write cannot apply twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from ar_sync.errors import RateLimitedError, TransientError

T = TypeVar("T")
log = logging.getLogger(__name__)


def _wait(max_wait: float) -> Callable[[RetryCallState], float]:
    jitter = wait_random_exponential(multiplier=0.25, max=max_wait)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), max_wait)
        return float(jitter(state))

    return wait


def call_with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    attempts: int = 6,
    max_wait: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn`, retrying transient failures; re-raise the last error when attempts run out."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info("retrying %s after %s (attempt %d)", what, type(exc).__name__,
                 state.attempt_number)

    retrying = Retrying(
        retry=retry_if_exception_type(TransientError),
        stop=stop_after_attempt(attempts),
        wait=_wait(max_wait),
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )
    return retrying(fn)
