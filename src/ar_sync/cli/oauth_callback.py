"""A one-shot HTTP listener on 127.0.0.1 for the OAuth redirect of `ar-sync connect`.

The platform sends the browser back to the registered redirect URI with `code` and `state`;
this server hands those query parameters to a function (the CLI's finish_connect), answers the
browser with a short page (200 connected, 400/403 refused), and lets the CLI wait for the
outcome. It never logs the request line, because the query carries the authorization code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit


class CallbackRefused(Exception):
    """The handler refused the callback; `status` is the HTTP status for the browser page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class CallbackResult:
    """What happened to the first callback: a value, a refusal, or an unexpected error."""

    value: Any = None
    error: BaseException | None = None


Handler = Callable[[dict[str, str]], tuple[Any, str]]  # params -> (value, success message)


def _page(title: str, message: str) -> bytes:
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title></head><body style=\"font-family:sans-serif;"
            f"margin:3rem\"><h1>{escape(title)}</h1><p>{escape(message)}</p></body></html>"
            ).encode()


class CallbackServer:
    """Serve the redirect path until the first callback with a `state` or an `error`."""

    def __init__(self, host: str, port: int, path: str, handler: Handler | None = None) -> None:
        self.path = path or "/"
        self.handler = handler  # may be set after construction, once the port is known
        self._done = threading.Event()
        self._taken = threading.Lock()
        self.result = CallbackResult()
        outer = self

        class _Request(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                return  # the query string holds the authorization code: never log it

        self._server = HTTPServer((host, port), _Request)
        self.port: int = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="ar-sync-oauth-callback")

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if url.path != self.path or not ({"state", "error", "code"} & params.keys()):
            self._answer(request, 404, "Not found", "This is ar-sync's OAuth callback.")
            return
        if self.handler is None:
            self._answer(request, 503, "Not ready", "Try again in a moment.")
            return
        if not self._taken.acquire(blocking=False):
            self._answer(request, 409, "Already handled",
                         "This connection attempt is finished; return to the terminal.")
            return
        try:
            self.result.value, message = self.handler(params)
            self._answer(request, 200, "Connected", message)
        except CallbackRefused as exc:
            self.result.error = exc
            self._answer(request, exc.status, "Not connected", str(exc))
        except BaseException as exc:  # surfaced in the CLI's thread, not lost in this one
            self.result.error = exc
            self._answer(request, 500, "Not connected",
                         "ar-sync hit an unexpected error; see the terminal.")
        finally:
            self._done.set()

    @staticmethod
    def _answer(request: BaseHTTPRequestHandler, status: int, title: str, message: str) -> None:
        body = _page(title, message)
        request.send_response(status)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Cache-Control", "no-store")
        request.end_headers()
        request.wfile.write(body)

    def wait(self, timeout: float) -> bool:
        """True once a callback was handled; False when `timeout` seconds passed first."""
        return self._done.wait(timeout)

    @contextmanager
    def running(self) -> Iterator[CallbackServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)


def with_port(uri: str, port: int) -> str:
    """The same redirect URI on another port."""
    parts = urlsplit(uri)
    host = parts.hostname or "127.0.0.1"
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path, parts.query, ""))


__all__ = ["CallbackRefused", "CallbackResult", "CallbackServer", "Handler", "with_port"]
