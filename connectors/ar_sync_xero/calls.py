"""Every Xero HTTP call goes through here: budget, retries, 401 refresh, error mapping.

xero-python talks urllib3 and raises its own exceptions; this module turns them into
ar_sync.domain.errors types carrying Xero's own message, reads Xero's remaining-call headers
into the run's CallBudget, and lets ar_sync.sync.retry decide what to retry (writes only ever
reach the platform with their Idempotency-Key, so a retried write cannot apply twice).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import urllib3
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import ApiException, OAuth2Error

from ar_sync.domain.errors import (
    BudgetExhaustedError,
    ConnectorError,
    PlatformTimeoutError,
    PlatformValidationError,
    RateLimitedError,
    ReauthorizationRequiredError,
    TransientError,
)
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.deadline import DEADLINE, within
from ar_sync.sync.retry import call_with_retries

T = TypeVar("T")
log = logging.getLogger(__name__)
Timeout = tuple[float, float]


class NotFound(ConnectorError):
    """404: the object is not there (get_invoice answers None)."""


def new_api_client(token_getter: Callable[[], Mapping[str, Any]] | None = None) -> ApiClient:
    """An ApiClient whose token comes from ar-sync (never refreshed by the SDK itself) and
    whose urllib3 pool does not retry on its own (our retries count against the budget)."""
    # Configuration() hands out copies of a process-wide default whatever it is given, so the
    # token holder is set on this instance afterwards (never shared between connections).
    config = Configuration()
    config.oauth2_token = OAuth2Token()
    client = ApiClient(config, oauth2_token_getter=token_getter or (lambda: {}),
                       oauth2_token_saver=lambda token: None)
    client.rest_client.pool_manager.connection_pool_kw["retries"] = False
    return client


def sdk_token(access_token: str) -> dict[str, Any]:
    """The dict xero-python's OAuth2Token wants; no expiry, so the SDK never refreshes."""
    return {"access_token": access_token, "scope": [], "expires_in": None,
            "expires_at": None, "token_type": "Bearer", "refresh_token": None}


def _headers(exc_or_headers: Any) -> Mapping[str, str]:
    headers = getattr(exc_or_headers, "headers", exc_or_headers)
    try:
        return {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
    except (TypeError, ValueError):
        return {}


def _body(exc: ApiException) -> Any:
    try:
        return json.loads(exc.body or b"")
    except (TypeError, ValueError):
        return None


def xero_message(exc: ApiException) -> tuple[str, str | None]:
    """Xero's own words for a failure, and its error type, from any of its envelopes."""
    body = _body(exc)
    if isinstance(body, dict):
        found: list[str] = []
        for element in body.get("Elements") or []:
            for err in (element or {}).get("ValidationErrors") or []:
                if err.get("Message"):
                    found.append(str(err["Message"]))
        if found:
            return "; ".join(found), str(body.get("Type") or "ValidationException")
        for key in ("Message", "Detail", "detail", "error_description", "error"):
            if body.get(key):
                return str(body[key]), str(body.get("Type") or body.get("Title") or
                                           body.get("error") or "") or None
    if isinstance(exc.body, bytes | str) and exc.body:
        text = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else exc.body
        return text[:300], None
    return f"HTTP {exc.status} {exc.reason}", None


def map_error(exc: Exception, what: str) -> Exception:
    """An SDK or urllib3 failure as the ar_sync error type that says what to do about it."""
    if isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError):  # no byte in time
        return PlatformTimeoutError(f"Xero {what}: no answer ({type(exc).__name__})")
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError):
        return TransientError(f"Xero {what}: connection failed ({type(exc).__name__})")
    if not isinstance(exc, ApiException):
        return exc
    status = int(exc.status or 0) if str(exc.status or "0").isdigit() else 400
    message, code = xero_message(exc)
    text = f"Xero {what}: {message}"
    headers = _headers(exc)
    if status == 429:
        problem = headers.get("x-rate-limit-problem", "minute")
        if problem == "day":
            return BudgetExhaustedError(f"{text} (Xero day limit reached)")
        retry_after = headers.get("retry-after")
        return RateLimitedError(f"{text} ({problem} limit)",
                                retry_after=float(retry_after) if retry_after else None)
    if status == 404:
        return NotFound(text, platform_code="404")
    if status in (401, 403):
        return ReauthorizationRequiredError(text, platform_code=code or str(status))
    if status >= 500 or status == 0:
        return TransientError(text, platform_code=code or str(status))
    return PlatformValidationError(text, platform_code=code or str(status))


class Caller:
    """Runs SDK calls for one connection with budget, retries and one re-auth on 401."""

    def __init__(self, budget: CallBudget, *, access_token: Callable[[], str],
                 after_unauthorized: Callable[[str], str],
                 sleep: Callable[[float], None] = time.sleep, attempts: int = 6,
                 max_wait: float = 30.0, deadline: float = DEADLINE) -> None:
        self.budget = budget
        self._deadline = deadline  # for one whole HTTP call (sync.deadline)
        self.silent: str | None = None  # the call Xero did not answer: no more this session
        self._access_token = access_token
        self._after_unauthorized = after_unauthorized
        self._sleep = sleep
        self._attempts = attempts
        self._max_wait = max_wait
        self.current_token: str | None = None
        self.minute_remaining: int | None = None
        self.client = new_api_client(self._sdk_token)

    def _sdk_token(self) -> dict[str, Any]:
        if self.current_token is None:
            self.current_token = self._access_token()
        return sdk_token(self.current_token)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Xero's remaining-call headers: the day limit bounds the run's budget; the minute
        limit is left to 429 + Retry-After (a minute's wait is cheaper than stopping)."""
        day = headers.get("x-daylimit-remaining")
        minute = headers.get("x-minlimit-remaining")
        if minute is not None and minute.lstrip("-").isdigit():
            self.minute_remaining = int(minute)
        if day is not None and day.lstrip("-").isdigit():
            self.budget.observe_remaining(int(day))

    def call(self, endpoint: str, fn: Callable[[], tuple[T, int, Any]], *,
             write: bool = False) -> T:
        """`fn` performs one SDK call with `_return_http_data_only=False`. A write retries only
        429s here; the connector reconciles before anything else (write_reconciled)."""

        def attempt() -> T:
            reauthorized = False
            while True:
                if self.silent is not None:  # one deadline per run for a silent platform
                    raise PlatformTimeoutError(f"Xero {endpoint}: not asked, Xero gave no "
                                               f"answer to {self.silent} in this run")
                self.budget.spend(endpoint)
                self.current_token = self._access_token()
                try:
                    data, _status, headers = within(self._deadline, fn, what=f"Xero {endpoint}")
                except PlatformTimeoutError:
                    self.silent = endpoint
                    raise
                except OAuth2Error as exc:
                    raise ReauthorizationRequiredError(f"Xero {endpoint}: {type(exc).__name__}"
                                                       ) from exc
                except (ApiException, urllib3.exceptions.HTTPError, ConnectionError,
                        TimeoutError) as exc:
                    if isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError):
                        self.silent = endpoint
                    if isinstance(exc, ApiException):
                        self.observe(_headers(exc))
                        if exc.status == 401 and not reauthorized:
                            reauthorized = True
                            rejected = self.current_token or ""
                            self.current_token = self._after_unauthorized(rejected)
                            continue
                    raise map_error(exc, endpoint) from exc
                self.observe(_headers(headers))
                return data

        return call_with_retries(attempt, what=f"Xero {endpoint}", attempts=self._attempts,
                                 max_wait=self._max_wait, sleep=self._sleep,
                                 retry_on=RateLimitedError if write else TransientError)
