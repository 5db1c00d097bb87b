"""Errors a connector raises, typed by what the caller should do about them."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error a connector raises; carries the platform's own message."""

    retryable = False

    def __init__(self, message: str, *, platform_code: str | None = None) -> None:
        super().__init__(message)
        self.platform_code = platform_code


class TransientError(ConnectorError):
    """5xx, connection reset, timeout: safe to retry a write with the same idempotency key."""

    retryable = True


class PlatformTimeoutError(TransientError):
    """The platform gave no answer within a call's deadline (a frozen or drip-feeding
    platform; a write may still have been applied). Not asked again within the run: the
    circuit breaker stops the tenant on it, and the next run reconciles."""


class RateLimitedError(TransientError):
    """429 after the connector's own retries were used up."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaReachedError(RateLimitedError):
    """A daily quota of the platform's is used up (Xero: the organisation's API e-mails):
    nothing was sent, and nothing of that kind can be until the quota resets. Retryable on a
    later run, and no sign that the platform is down (the circuit breaker ignores it)."""


class PlatformValidationError(ConnectorError):
    """400-class rejection (bad data, business rule): retrying will not help."""


class NotApplicableError(PlatformValidationError):
    """The write cannot apply to this invoice as it stands (e.g. QuickBooks: no BillEmail to
    send a reminder to). Recorded as skipped with the reason, not as a failure."""


class WriteVerificationError(PlatformValidationError):
    """A write landed but the platform's invoice is not what it should be (the total did not
    rise by exactly the fee, or another line changed). Never retried: the write happened, so a
    person must look; `expected` and `actual` carry both figures for them."""

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(f"{message} (expected {expected}, platform has {actual})")
        self.expected = expected
        self.actual = actual


class StaleObjectError(ConnectorError):
    """QuickBooks 5010: the invoice changed under us, even after one re-read."""

    retryable = True


class ReauthorizationRequiredError(ConnectorError):
    """The refresh token is gone (revoked, expired, rotated away): a person must reconnect."""


class BudgetExhaustedError(Exception):
    """The run's call or time budget is used up: stop cleanly, leftovers go first next run."""


class SettingsError(ValueError):
    pass


class TokensUnreadableError(Exception):
    """Stored tokens cannot be read with the keys at hand (the store's cipher raises a
    subclass); the core reports it without knowing how tokens are encrypted."""
