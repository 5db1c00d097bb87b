"""One python-quickbooks client per company, speaking through ar-sync's own HTTP layer.

The SDK builds URLs, bodies and parses Fault envelopes; this subclass decides where requests
go (`api_url`), which token they carry (the rotation-safe TokenManager), what they cost (the
run's CallBudget) and how failures are typed (ar_sync.domain.errors), so retries are safe.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import requests
from quickbooks import QuickBooks
from quickbooks.exceptions import AuthorizationException, QuickbooksException

from ar_sync.domain.errors import (
    ConnectorError,
    PlatformTimeoutError,
    PlatformValidationError,
    RateLimitedError,
    ReauthorizationRequiredError,
    StaleObjectError,
    TransientError,
)
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.deadline import DEADLINE, within
from ar_sync.sync.retry import call_with_retries
from ar_sync_quickbooks.mapping import parse_retry_after

MINOR_VERSION = 75
PRODUCTION_API = "https://quickbooks.api.intuit.com/v3"
SANDBOX_API = "https://sandbox-quickbooks.api.intuit.com/v3"
STALE_OBJECT = 5010
NOT_FOUND = 610
T = TypeVar("T")


class TokenSource(Protocol):
    """What the client needs from the TokenManager (kept narrow for unit tests)."""

    def access_token(self) -> str: ...

    def after_unauthorized(self, rejected_access_token: str) -> str: ...


def _fault_message(response: requests.Response) -> tuple[str, str | None]:
    """The platform's own message and code from a Fault envelope (either case of keys)."""
    try:
        body = response.json()
    except ValueError:
        return (response.text[:200] or response.reason or "no body"), None
    fault = body.get("Fault") or body.get("fault") or {}
    errors = fault.get("Error") or fault.get("error") or []
    if not errors:
        return json.dumps(body)[:200], None
    first = errors[0]
    message = first.get("Message") or first.get("message") or ""
    detail = first.get("Detail") or first.get("detail") or ""
    text = f"{message}: {detail}" if detail and detail != message else str(message)
    return text, str(first.get("code") or "") or None


def endpoint_of(url: str) -> str:
    """`POST .../company/123/invoice/45` -> `invoice/{id}`: a budget bucket, no ids."""
    tail = url.split("/company/", 1)[-1].split("?", 1)[0].split("/")[1:]
    return "/".join("{id}" if part.isdigit() else part for part in tail) or "company"


class QuickBooksClient(QuickBooks):  # type: ignore[misc]  # the SDK is untyped
    """A python-quickbooks client bound to one realm; never the SDK's global instance."""

    def __init__(self, *, realm_id: str, api_url: str, tokens: TokenSource, budget: CallBudget,
                 http: requests.Session | None = None, timeout: float = 10.0,
                 deadline: float = DEADLINE) -> None:
        self._api_url = api_url.rstrip("/")
        self._tokens = tokens
        self._budget = budget
        self._http = http or requests.Session()
        self._timeout = timeout  # to connect
        self._deadline = deadline  # for the whole call, connect to last byte (sync.deadline)
        self.silent: str | None = None  # the call QuickBooks did not answer: no more this run
        self.http_calls = 0

    def __new__(cls, **kwargs: Any) -> QuickBooksClient:
        # Not QuickBooks.__new__: it hands out the process-wide instance when someone enabled
        # the SDK's global mode. Each company gets its own object, always.
        instance: QuickBooksClient = object.__new__(cls)
        instance.company_id = kwargs["realm_id"]
        instance.minorversion = MINOR_VERSION
        instance.use_decimal = True
        instance.invoice_link = False
        return instance

    @property
    def api_url(self) -> str:
        return self._api_url

    def process_request(self, request_type: str, url: str, headers: Any = "",
                        params: Any = "", data: Any = "") -> requests.Response:
        """Send one request: budget first, bearer token, one retry after a 401; 429, 5xx and
        connection failures become TransientError subclasses for call_with_retries."""
        headers = dict(headers or {})
        endpoint = f"{request_type} {endpoint_of(url)}"
        token = self._tokens.access_token()
        response = self._send(request_type, url, headers, params, data, token, endpoint)
        if response.status_code == 401:
            token = self._tokens.after_unauthorized(token)
            response = self._send(request_type, url, headers, params, data, token, endpoint)
            if response.status_code == 401:
                message, _ = _fault_message(response)
                raise ReauthorizationRequiredError(f"QuickBooks rejected a fresh token: {message}")
        if response.status_code == 429:
            message, code = _fault_message(response)
            raise RateLimitedError(f"QuickBooks throttled {endpoint}: {message}",
                                   retry_after=parse_retry_after(
                                       response.headers.get("Retry-After")))
        if response.status_code >= 500:
            message, code = _fault_message(response)
            raise TransientError(f"QuickBooks {response.status_code} on {endpoint}: {message}",
                                 platform_code=code)
        return response

    def _send(self, method: str, url: str, headers: dict[str, str], params: Any, data: Any,
              token: str, endpoint: str) -> requests.Response:
        if self.silent is not None:  # one deadline per run for a silent platform
            raise PlatformTimeoutError(f"QuickBooks {endpoint}: not asked, QuickBooks gave no "
                                       f"answer to {self.silent} in this run")
        self._budget.spend(endpoint)
        self.http_calls += 1
        try:
            return within(self._deadline, lambda: self._http.request(
                method, url, headers={**headers, "Authorization": f"Bearer {token}"},
                params=params, data=data, timeout=(self._timeout, self._deadline)),
                what=f"QuickBooks {endpoint}")
        except PlatformTimeoutError:
            self.silent = endpoint
            raise
        except requests.Timeout as exc:  # no byte for a whole deadline: the same silence
            self.silent = endpoint
            raise PlatformTimeoutError(f"QuickBooks gave no answer on {endpoint}") from exc
        except requests.ConnectionError as exc:
            raise TransientError(f"QuickBooks connection failed on {endpoint}: "
                                 f"{type(exc).__name__}") from exc


def map_sdk_error(exc: QuickbooksException) -> ConnectorError:
    """A python-quickbooks exception as an ar_sync error carrying the platform's message."""
    code = int(exc.error_code) if str(exc.error_code).isdigit() else 0
    text = f"{exc.message}: {exc.detail}" if exc.detail else str(exc.message)
    if code == STALE_OBJECT:
        return StaleObjectError(text, platform_code=str(code))
    if isinstance(exc, AuthorizationException) and code in (401, 3200, 3201, 3202):
        return ReauthorizationRequiredError(text, platform_code=str(code))
    if code == 10000 and "reading json" in str(exc.message).lower():
        return TransientError(text, platform_code=str(code))
    if code >= 10000:
        return TransientError(text, platform_code=str(code))
    return PlatformValidationError(text, platform_code=str(code) if code else None)


def run(fn: Callable[[], T], *, what: str, sleep: Callable[[float], None],
        attempts: int = 6, max_wait: float = 30.0, write: bool = False) -> T:
    """call_with_retries around one SDK operation, with SDK exceptions typed first. A write
    retries only 429s here; the connector reconciles before anything else (write_reconciled)."""

    def attempt() -> T:
        try:
            return fn()
        except QuickbooksException as exc:
            raise map_sdk_error(exc) from exc

    return call_with_retries(attempt, what=what, attempts=attempts, max_wait=max_wait,
                             sleep=sleep, retry_on=RateLimitedError if write else TransientError)


def api_url_for(endpoints: Mapping[str, str]) -> str:
    if endpoints.get("api"):
        return endpoints["api"]
    return SANDBOX_API if endpoints.get("environment") == "sandbox" else PRODUCTION_API


def utcnow() -> datetime:
    return datetime.now(UTC)
