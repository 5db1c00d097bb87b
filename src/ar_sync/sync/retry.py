"""One retry policy for every platform call (tenacity).

Retried: TransientError (5xx, connection errors, timeouts) with exponential backoff and full
jitter, and RateLimitedError after the platform's Retry-After. Never retried here: validation
errors, stale objects, lost authorisation, an exhausted budget. Writes reach this function only
with their idempotency key attached, and (`write_reconciled`) a write whose answer was lost is
looked for on the platform before it is tried again: the platform's key replay is a second
guard, never the only one (its scope and retention are not always documented).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from ar_sync.domain.errors import PlatformTimeoutError, RateLimitedError, TransientError

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
    retry_on: type[TransientError] = TransientError,
) -> T:
    """Call `fn`, retrying transient failures; re-raise the last error when attempts run out.
    `retry_on=RateLimitedError` for a write: see `write_reconciled`. A platform that gave no
    answer within a call's deadline (PlatformTimeoutError) is not asked again: a silent
    platform stops the tenant within one deadline, not one per attempt."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info("retrying %s after %s (attempt %d)", what, type(exc).__name__,
                 state.attempt_number)

    retrying = Retrying(
        retry=retry_if_exception(lambda exc: isinstance(exc, retry_on)
                                 and not isinstance(exc, PlatformTimeoutError)),
        stop=stop_after_attempt(attempts),
        wait=_wait(max_wait),
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )
    return retrying(fn)


# How far a platform's clock may run behind ours when a send is looked for on the invoice's
# record after a lost answer ("sent since just before the first try").
CLOCK_SKEW = timedelta(minutes=5)


def write_reconciled(
    write: Callable[[], T],
    find: Callable[[], T | None],
    *,
    what: str,
    attempts: int = 3,
    max_wait: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """One platform write, tried again after an ambiguous failure only if it is not there.

    `write` must retry nothing but 429s itself (rejected before the platform did anything). A
    5xx, a timeout or a lost connection may come after the platform applied the write, so
    `find` (the connector's `find_effect` for this key) looks for it first; only when it is not
    found is the write repeated, with the same idempotency key. E-mails leave no marker: for
    them `find` looks for a send on the invoice's own record since just before the first try
    (CLOCK_SKEW), so a platform that forgot the key does not send twice.
    """
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except (RateLimitedError, PlatformTimeoutError):
            raise  # refused before anything happened / a silent platform: not asked again
        except TransientError as exc:
            if attempt == attempts:
                raise
            found = find()
            if found is not None:
                log.info("%s: answer lost, but the write is there", what)
                return found
            log.info("retrying %s after %s (attempt %d)", what, type(exc).__name__, attempt)
            sleep(random.uniform(0, min(max_wait, 0.25 * 2 ** attempt)))
    raise AssertionError("unreachable")  # pragma: no cover

