"""Rendering: the Jinja2 templates (autoescaped: customer names and rules text are user
data), the values every page needs, and the company a route names, checked against the
signed-in business (another business's company answers 404, as if it did not exist)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ar_sync.console.config import PLATFORMS, ConsoleConfig
from ar_sync.console.security import CSRF_FIELD
from ar_sync.domain.money import format_money
from ar_sync.sync.connector import Connection

_ENV = Environment(loader=PackageLoader("ar_sync.console", "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   trim_blocks=True, lstrip_blocks=True)


def _money(amount: Decimal | str | int | None, currency: str = "") -> str:
    if amount is None:
        return "–"
    return format_money(Decimal(str(amount)), currency) if currency else f"{Decimal(str(amount)):,}"


def _day(value: date | datetime | str | None) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        try:
            return _day(datetime.fromisoformat(value))
        except ValueError:
            return value
    if isinstance(value, datetime):
        return f"{value:%d %b %Y, %H:%M} UTC"
    return f"{value:%d %b %Y}"


_ENV.filters["money"] = _money
_ENV.filters["day"] = _day
_ENV.globals["PLATFORMS"] = PLATFORMS


def config(request: Request) -> ConsoleConfig:
    cfg: ConsoleConfig = request.app.state.config
    return cfg


def business(request: Request) -> str | None:
    value = request.session.get("business")
    return str(value) if value else None


def flash(request: Request, message: str, kind: str = "ok") -> None:
    """A one-line message shown on the next page (after a redirect)."""
    request.session.setdefault("flash", []).append([kind, message])


def render(request: Request, template: str, *, status: int = 200,
           **values: Any) -> HTMLResponse:
    cfg = config(request)
    values.setdefault("company", None)
    page = _ENV.get_template(template).render(
        base=cfg.prefix, csrf=request.session.get(CSRF_FIELD, ""), business=business(request),
        flashes=request.session.pop("flash", []), status=status, **values)
    return HTMLResponse(page, status_code=status)


def companies(request: Request) -> list[Connection]:
    """The signed-in business's companies (no one else's), by name."""
    mine = business(request)
    return sorted((c for c in config(request).store.list_connections() if c.business_id == mine),
                  key=lambda c: (c.name or c.external_id).lower())


def company(request: Request) -> Connection:
    """The route's company if it is the signed-in business's; else 404."""
    tenant = request.path_params.get("tenant", "")
    found = config(request).store.get_connection(tenant)
    if found is None or found.business_id != business(request):
        raise HTTPException(404, "No such company in your account.")
    return found


def today_for(request: Request, connection: Connection) -> date:
    """The day a run would plan for: the configured one (the demo's), else the company's."""
    from ar_sync.sync.company_rules import choose_rules

    cfg = config(request)
    if cfg.today is not None:
        return cfg.today
    return choose_rules(cfg.store, connection).policy.today(cfg.clock())


__all__ = ["business", "companies", "company", "config", "flash", "render", "today_for"]
