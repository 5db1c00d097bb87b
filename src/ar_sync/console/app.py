"""The console as one ASGI application: the same handlers locally (uvicorn on 127.0.0.1)
and on Lambda (Mangum behind API Gateway); only the ConsoleConfig differs.

Every route but the static files and sign-in needs a signed-in business; each company route
checks that the company is that business's (404 otherwise); every POST passes the CSRF check
(session.py); every answer carries the security headers (security.py).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ar_sync.console import companies, customers, preview, rules, runs
from ar_sync.console.config import ConsoleConfig
from ar_sync.console.pages import business, config, render
from ar_sync.console.security import SecurityHeaders, SessionCodec
from ar_sync.console.session import Sessions

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
Endpoint = Callable[[Request], Awaitable[Response]]


def signed_in(endpoint: Endpoint) -> Endpoint:
    """Only for a signed-in business; anyone else gets the sign-in answer."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        if business(request) is None:
            cfg = config(request)
            return cfg.signin.anonymous(request, cfg.prefix)
        return await endpoint(request)

    return guarded


async def sign_out(request: Request) -> Response:
    request.session.clear()
    return render(request, "signin.html", signed_out=True)


def _guarded(routes: list[Any]) -> list[BaseRoute]:
    return [Route(r.path, signed_in(r.endpoint), methods=list(r.methods or []), name=r.name)
            for r in routes]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if exc.status_code == 404 else "This request cannot be handled."
    return render(request, "error.html", status=exc.status_code, message=message)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("console error on %s", request.url.path)
    return render(request, "error.html", status=500,
                  message="Something went wrong on our side; nothing was changed by it. "
                          "Try again, and if it happens again, look at the server log.")


def build_app(cfg: ConsoleConfig) -> Starlette:
    routes: list[BaseRoute] = [
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        *cfg.signin.routes(),
        Route("/logout", sign_out, methods=["POST"]),
        *_guarded(companies.routes() + preview.routes() + rules.routes()
                  + customers.routes() + runs.routes()),
    ]
    top: list[BaseRoute] = [Mount(cfg.prefix, routes=routes)] if cfg.prefix else routes
    app = Starlette(
        routes=top,
        middleware=[Middleware(SecurityHeaders),
                    Middleware(Sessions, codec=SessionCodec(cfg.session_key, cfg.secure))],
        exception_handlers={HTTPException: _http_error, 500: _server_error})
    app.state.config = cfg
    return app


__all__ = ["build_app", "signed_in"]
