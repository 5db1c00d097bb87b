"""Shared machinery of the local platform emulators: faults, counters, rate limits and a
WSGI server on 127.0.0.1 that can drop a response after applying a write (idempotency keys:
replay.py).

Both emulators (QuickBooks, Xero) build on this, so their fault switches behave the same way
and tests written against one read naturally against the other.
"""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

# An app sets environ[DROP_RESPONSE] = True after applying a write: the server then closes the
# socket without sending anything, so the client sees a connection error for a write that did
# happen (the case idempotency keys exist for).
DROP_RESPONSE = "ar_sync_emulators.drop_response"

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


# ----------------------------------------------------------------------------- faults


@dataclass
class _Switch:
    kind: str
    remaining: int
    match: str | None
    value: float

    def applies(self, path: str) -> bool:
        return self.remaining > 0 and (self.match is None or self.match in path)


@dataclass(frozen=True)
class Fault:
    """One fault taken for a request: what to do instead of (or before) answering."""

    kind: str  # "fail" | "timeout" | "throttle"
    value: float  # status code, seconds to sleep, or Retry-After seconds


class Faults:
    """Thread-safe fault switches, each consumed by the requests whose path matches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._switches: list[_Switch] = []
        self.token_epoch = 0  # access tokens issued before the current epoch are expired

    def _add(self, kind: str, n: int, match: str | None, value: float) -> None:
        with self._lock:
            self._switches.append(_Switch(kind, n, match, value))

    def fail_next(self, n: int = 1, status: int = 503, *, match: str | None = None) -> None:
        self._add("fail", n, match, status)

    def timeout_next(self, n: int = 1, seconds: float = 2.0, *, match: str | None = None) -> None:
        self._add("timeout", n, match, seconds)

    def throttle_next(self, n: int = 1, retry_after: int = 1, *,
                      match: str | None = None) -> None:
        self._add("throttle", n, match, retry_after)

    def drop_after_write(self, n: int = 1, *, match: str | None = None) -> None:
        self._add("drop", n, match, 0)

    def expire_tokens(self) -> None:
        """Every access token issued so far is expired from now on."""
        with self._lock:
            self.token_epoch += 1

    def clear(self) -> None:
        with self._lock:
            self._switches.clear()

    def _take(self, kinds: Iterable[str], path: str) -> _Switch | None:
        wanted = set(kinds)
        with self._lock:
            for switch in self._switches:
                if switch.kind in wanted and switch.applies(path):
                    switch.remaining -= 1
                    self._switches = [s for s in self._switches if s.remaining > 0]
                    return switch
        return None

    def before_request(self, path: str) -> Fault | None:
        """Consume a matching fail/timeout/throttle switch; the emulator acts on it."""
        switch = self._take(("fail", "timeout", "throttle"), path)
        return None if switch is None else Fault(switch.kind, switch.value)

    def take_drop(self, path: str) -> bool:
        """Called by an emulator after it applied a write: should the answer be dropped?"""
        return self._take(("drop",), path) is not None

    def pending(self) -> int:
        with self._lock:
            return sum(s.remaining for s in self._switches)


# ----------------------------------------------------------------------------- counters


class Counters:
    """Calls by endpoint template and writes applied / replayed, for tests and benchmarks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()
        self.writes_applied = 0
        self.writes_replayed = 0

    def call(self, endpoint: str) -> None:
        with self._lock:
            self.calls[endpoint] += 1

    def applied(self, n: int = 1) -> None:
        with self._lock:
            self.writes_applied += n

    def replayed(self, n: int = 1) -> None:
        with self._lock:
            self.writes_replayed += n

    @property
    def total_calls(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {"calls": dict(self.calls), "total_calls": sum(self.calls.values()),
                    "writes_applied": self.writes_applied,
                    "writes_replayed": self.writes_replayed}

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.writes_applied = 0
            self.writes_replayed = 0


@dataclass(frozen=True)
class Effect:
    """A write an emulator holds that carries an ar-sync key (for exactly-once checks)."""

    kind: str  # "note" | "late_fee" | "email"
    invoice_id: str
    key: str | None
    ref: str


# ----------------------------------------------------------------------------- HTTP helpers


@dataclass
class Request:
    """The parts of a WSGI request an emulator routes on."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    environ: WSGIEnvironment

    @classmethod
    def from_environ(cls, environ: WSGIEnvironment) -> Request:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""),
                                               keep_blank_values=True).items()}
        headers = {k[5:].replace("_", "-").lower(): str(v)
                   for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        return cls(method=str(environ["REQUEST_METHOD"]).upper(),
                   path=str(environ.get("PATH_INFO", "/")), query=query, headers=headers,
                   body=body, environ=environ)

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8"),
                                              keep_blank_values=True).items()}

    def drop_response(self) -> None:
        """Ask the server to close the socket instead of answering (after a write applied)."""
        self.environ[DROP_RESPONSE] = True


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, payload: object,
             headers: Iterable[tuple[str, str]] = ()) -> Response:
        data = json.dumps(payload, default=str).encode("utf-8")
        return cls(status, data, [("Content-Type", "application/json"), *headers])

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain") -> Response:
        return cls(status, text.encode("utf-8"), [("Content-Type", content_type)])

    @classmethod
    def redirect(cls, location: str) -> Response:
        return cls(302, b"", [("Location", location)])

    def with_headers(self, headers: Mapping[str, str]) -> Response:
        self.headers.extend(headers.items())
        return self

    def __call__(self, start_response: StartResponse) -> list[bytes]:
        from http import HTTPStatus

        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = "Status"
        start_response(f"{self.status} {reason}",
                       [*self.headers, ("Content-Length", str(len(self.body)))])
        return [self.body]


# ----------------------------------------------------------------------------- idempotency


@dataclass(frozen=True)
class Recorded:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def response(self) -> Response:
        return Response(self.status, self.body, list(self.headers))


# ----------------------------------------------------------------------------- rate limits


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    problem: str | None = None  # "minute" | "day" | "concurrent" (Xero's X-Rate-Limit-Problem)
    retry_after: int = 0
    minute_remaining: int | None = None
    day_remaining: int | None = None


class RateLimiter:
    """Per-tenant limits: calls a rolling minute, calls a rolling day, calls in flight.

    `None` disables a limit. A rejected call does not count. Call `release(tenant)` after every
    allowed call finishes (the concurrency slot).
    """

    def __init__(self, *, per_minute: int | None = None, per_day: int | None = None,
                 concurrent: int | None = None, clock: Clock = utcnow) -> None:
        self.per_minute = per_minute
        self.per_day = per_day
        self.concurrent = concurrent
        self._clock = clock
        self._lock = threading.Lock()
        self._minute: dict[str, collections.deque[datetime]] = collections.defaultdict(
            collections.deque)
        self._day: dict[str, collections.deque[datetime]] = collections.defaultdict(
            collections.deque)
        self._in_flight: collections.Counter[str] = collections.Counter()

    @staticmethod
    def _trim(window: collections.deque[datetime], now: datetime, span: timedelta) -> None:
        while window and now - window[0] >= span:
            window.popleft()

    @staticmethod
    def _wait(window: collections.deque[datetime], now: datetime, span: timedelta) -> int:
        seconds = (window[0] + span - now).total_seconds() if window else 1
        return max(1, int(seconds + 0.999))

    def acquire(self, tenant: str) -> RateDecision:
        with self._lock:
            now = self._clock()
            minute, day = self._minute[tenant], self._day[tenant]
            self._trim(minute, now, timedelta(minutes=1))
            self._trim(day, now, timedelta(days=1))
            if self.concurrent is not None and self._in_flight[tenant] >= self.concurrent:
                return self._decide(False, "concurrent", 1, tenant)
            if self.per_minute is not None and len(minute) >= self.per_minute:
                return self._decide(False, "minute",
                                    self._wait(minute, now, timedelta(minutes=1)), tenant)
            if self.per_day is not None and len(day) >= self.per_day:
                return self._decide(False, "day",
                                    self._wait(day, now, timedelta(days=1)), tenant)
            minute.append(now)
            day.append(now)
            self._in_flight[tenant] += 1
            return self._decide(True, None, 0, tenant)

    def _decide(self, allowed: bool, problem: str | None, retry_after: int,
                tenant: str) -> RateDecision:
        return RateDecision(
            allowed, problem, retry_after,
            None if self.per_minute is None else self.per_minute - len(self._minute[tenant]),
            None if self.per_day is None else self.per_day - len(self._day[tenant]),
        )

    def release(self, tenant: str) -> None:
        with self._lock:
            if self._in_flight[tenant] > 0:
                self._in_flight[tenant] -= 1

    def reset(self) -> None:
        with self._lock:
            self._minute.clear()
            self._day.clear()
            self._in_flight.clear()


# ----------------------------------------------------------------------------- server


class _DroppingServerHandler(ServerHandler):
    """Writes nothing at all when the app flagged the request with DROP_RESPONSE."""

    def finish_response(self) -> None:
        environ: WSGIEnvironment | None = getattr(self, "environ", None)
        if environ is not None and environ.get(DROP_RESPONSE):
            result = getattr(self, "result", None)
            if result is not None and hasattr(result, "close"):
                result.close()
            self.headers_sent = True  # so nothing else tries to write an error page
            self.status = None
            raise _Dropped
        super().finish_response()


class _Dropped(Exception):
    pass


class _QuietHandler(WSGIRequestHandler):
    """wsgiref's handler, silenced, with the response-dropping ServerHandler."""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _DroppingServerHandler(self.rfile, self.wfile,  # type: ignore[arg-type]
                                         self.get_stderr(),
                                         self.get_environ(), multithread=True)
        handler.request_handler = self  # type: ignore[attr-defined]
        app = self.server.get_app()  # type: ignore[attr-defined]
        try:
            handler.run(app)
        except _Dropped:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def get_stderr(self) -> Any:
        import io

        return io.StringIO()  # keep tracebacks of app errors off the test output


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


_AUTHORIZE_PATHS = ("/connect/oauth2", "/identity/connect/authorize")  # GETs that issue codes


def acknowledge(emulator: object, req: Request) -> None:
    """Before an emulator answers a request that may have changed its state (any write, a
    token grant, an authorization code), let `--state` persist it (persist.persisted sets
    `emulator.persist_now`): a platform never loses what it acknowledged."""
    hook: Callable[[], None] | None = getattr(emulator, "persist_now", None)
    if hook is not None and (req.method != "GET" or req.path.rstrip("/").lower().startswith(
            _AUTHORIZE_PATHS)):
        hook()


class EmulatorServer:
    """A WSGI app served on 127.0.0.1 (a free port by default) from a daemon thread."""

    def __init__(self, app: WSGIApplication, host: str = "127.0.0.1", port: int = 0,
                 on_start: Callable[[str], None] | None = None) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._on_start = on_start
        self._server: _ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> EmulatorServer:
        if self._server is not None:
            return self
        server = _ThreadingWSGIServer((self._host, self._port), _QuietHandler)
        server.set_app(self._app)
        self._server = server
        host, port = server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"emulator-{port}", daemon=True)
        self._thread.start()
        if self._on_start is not None:
            self._on_start(self.url)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def fault_response(fault: Fault, *, error: Callable[[int, str], Response]) -> Response | None:
    """Apply a fail/throttle/timeout fault; `error(status, message)` builds the platform's
    error envelope. A timeout sleeps and then lets the request go on (returns None)."""
    if fault.kind == "timeout":
        time.sleep(fault.value)
        return None
    if fault.kind == "throttle":
        response = error(429, "Too many requests (injected)")
        return response.with_headers({"Retry-After": str(int(fault.value))})
    return error(int(fault.value), "Service unavailable (injected)")

