"""The Connect screen: the business's companies with their state, connecting one through
the platform's OAuth consent (new companies start in preview), and going live."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ar_sync.connect.onboarding import OnboardingError, finish_connect, start_connect
from ar_sync.connect.tokens import new_state
from ar_sync.console.config import PLATFORMS, ConsoleConfig
from ar_sync.console.pages import business, companies, company, config, flash, render, today_for
from ar_sync.console.security import fingerprint
from ar_sync.domain.errors import ConnectorError, SettingsError
from ar_sync.sync.company_settings import SettingsChangeError, go_live, start_in_preview
from ar_sync.sync.connector import Connection, PlatformSettings, UnknownConnectorError
from ar_sync.sync.status import TokenHealth, run_summary, token_health

MAX_PENDING = 5


@dataclass(frozen=True)
class CompanyRow:
    connection: Connection
    health: TokenHealth
    last_run: str | None  # when it started (ISO)
    last_summary: str
    next_run: str


def _settings(cfg: ConsoleConfig, platform: str) -> PlatformSettings:
    """The platform's app settings, with the console's own callback as the redirect URI."""
    settings = cfg.settings_for(platform)
    return settings.model_copy(update={
        "redirect_uri": cfg.url(f"/connect/{platform}/callback")})


def _available(cfg: ConsoleConfig) -> dict[str, str | None]:
    """Each platform, and why it cannot be connected here (None: it can)."""
    out: dict[str, str | None] = {}
    for platform in PLATFORMS:
        try:
            cfg.settings_for(platform)
            out[platform] = None
        except (SettingsError, UnknownConnectorError) as exc:
            out[platform] = str(exc)
    return out


async def overview(request: Request) -> Response:
    cfg = config(request)
    now = cfg.clock()
    rows = []
    for c in companies(request):
        report = cfg.store.last_report(c.id)
        rows.append(CompanyRow(c, token_health(cfg.store, c, now),
                               (report or {}).get("started_at"), run_summary(report),
                               "not until you go live" if c.mode == "preview" else cfg.schedule))
    return render(request, "companies.html", rows=rows, available=_available(cfg))


async def connect(request: Request) -> Response:
    cfg = config(request)
    platform = request.path_params["platform"]
    if platform not in PLATFORMS:
        return render(request, "error.html", status=404, message="Unknown platform.")
    try:
        settings = _settings(cfg, platform)
        state = new_state()
        url = start_connect(cfg.store, platform, str(business(request)), settings,
                            now=cfg.clock(), state=state, max_pending=MAX_PENDING)
    except (SettingsError, UnknownConnectorError) as exc:
        flash(request, f"{PLATFORMS[platform]} is not set up on this server: {exc}", "error")
        return RedirectResponse(cfg.prefix + "/", 303)
    except (OnboardingError, ConnectorError) as exc:
        flash(request, f"Could not start the connection to {PLATFORMS[platform]}: {exc}",
              "error")
        return RedirectResponse(cfg.prefix + "/", 303)
    request.session.setdefault("oauth", {})[platform] = fingerprint(state)
    return RedirectResponse(url, 303)


async def callback(request: Request) -> Response:
    """Back from the consent page: the state must be the one this browser started."""
    cfg = config(request)
    platform = request.path_params["platform"]
    params = {k: v for k, v in request.query_params.items()}
    expected = (request.session.get("oauth") or {}).pop(platform, None)
    if platform not in PLATFORMS or not expected or fingerprint(
            params.get("state", "")) != expected:
        return render(request, "error.html", status=400, message=(
            "This connection was not started from this browser, or it was already used. "
            "Start it again with the Connect button."))
    before = {c.id for c in cfg.store.list_connections()}
    try:
        connections = finish_connect(cfg.store, params, _settings(cfg, platform),
                                     now=cfg.run_clock(), business_id=str(business(request)))
    except OnboardingError as exc:
        return render(request, "error.html", status=400, message=str(exc))
    except ConnectorError as exc:
        return render(request, "error.html", status=502,
                      message=f"{PLATFORMS[platform]} refused the connection: {exc}")
    for c in connections:
        if c.id not in before:
            start_in_preview(cfg.store, c, cfg.new_company_rules)
    names = ", ".join(c.name or c.external_id for c in connections)
    flash(request, f"Connected {names}. It is in preview: nothing is written or sent until "
                   "you press Go live.")
    return RedirectResponse(f"{cfg.prefix}/c/{connections[0].id}/preview", 303)


async def go_live_view(request: Request) -> Response:
    cfg = config(request)
    connection = company(request)
    form = await request.form()
    today = today_for(request, connection)
    preview = form.get("mode") == "preview"
    when: date | None = None
    try:
        if not preview and form.get("when") == "date":
            when = date.fromisoformat(str(form.get("date") or ""))
            if when < today:
                raise SettingsChangeError(f"{when:%d %b %Y} is in the past")
    except ValueError as exc:
        message = str(exc) if isinstance(exc, SettingsChangeError) else "Pick a date."
        flash(request, f"Not live yet: {message}", "error")
        return RedirectResponse(f"{cfg.prefix}/c/{connection.id}/preview", 303)
    updated = go_live(cfg.store, connection, on=when, preview=preview, today=today)
    name = updated.name or updated.external_id
    if preview:
        flash(request, f"{name} is back in preview: runs report and write nothing.")
    else:
        flash(request, f"{name} is live from {updated.go_live:%d %b %Y}: runs from then on "
                       "write back and send.")
    return RedirectResponse(f"{cfg.prefix}/c/{connection.id}/preview", 303)


async def company_home(request: Request) -> Response:
    connection = company(request)
    page = "preview" if connection.mode == "preview" else "customers"
    return RedirectResponse(f"{config(request).prefix}/c/{connection.id}/{page}", 303)


def routes() -> list[Any]:
    return [Route("/", overview, name="overview"),
            Route("/connect/{platform}", connect, methods=["POST"]),
            Route("/connect/{platform}/callback", callback),
            Route("/c/{tenant}", company_home),
            Route("/c/{tenant}/go-live", go_live_view, methods=["POST"])]


__all__ = ["routes"]
