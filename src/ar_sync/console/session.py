"""ASGI middleware: the signed session in `scope["session"]` (so `request.session` works),
written back only when a handler changed it, and the CSRF check of every unsafe request.

The CSRF check is here, not in each handler, so no form can forget it: a POST without the
session's token (form field `csrf` or header X-CSRF-Token, as htmx sends it) gets 403 before
any handler runs. Bodies are urlencoded forms, read once and replayed to the handler.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ar_sync.console.security import CSRF_FIELD, CSRF_HEADER, SessionCodec, csrf_ok

MAX_BODY = 512_000  # a rules file is at most 256 KB; forms are small
SAFE = ("GET", "HEAD", "OPTIONS")


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name:
                    return str(v)
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == name), None)


async def _read_body(receive: Receive) -> bytes | None:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if len(body) > MAX_BODY:
            return None
        if not message.get("more_body"):
            return body


class Sessions:
    def __init__(self, app: ASGIApp, codec: SessionCodec) -> None:
        self.app = app
        self.codec = codec

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = self.codec.load(_cookie(scope, self.codec.cookie_name))
        before = json.dumps(session, sort_keys=True)
        scope["session"] = session
        if scope["method"] not in SAFE:
            body = await _read_body(receive)
            if body is None:
                await PlainTextResponse("Too large.", 413)(scope, receive, send)
                return
            sent = _header(scope, CSRF_HEADER.encode())
            if sent is None and b"urlencoded" in (_header(scope, b"content-type") or "").encode():
                found = parse_qs(body.decode("utf-8", "replace")).get(CSRF_FIELD)
                sent = found[0] if found else None
            if not csrf_ok(session, sent):
                page = PlainTextResponse("This form has expired or did not come from the "
                                         "console. Go back, reload the page and try again.", 403)
                await page(scope, receive, send)
                return
            receive = _replay(body)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                now: dict[str, Any] = scope["session"]
                if json.dumps(now, sort_keys=True) != before:
                    headers = list(message.get("headers", []))
                    headers.append((b"set-cookie", self.codec.header(now or None).encode()))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


__all__ = ["Sessions"]
