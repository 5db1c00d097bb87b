"""Runs (each saved run report, with the sends a person should check, and a "run now"
button) and the Report screen (the aging, DSO and risk page of `ar-sync report`)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ar_sync.console.pages import company, config, flash, render, today_for
from ar_sync.domain.errors import SettingsError
from ar_sync.report.figures import build_report
from ar_sync.report.html import render_html
from ar_sync.sync.connector import Connection, UnknownConnectorError
from ar_sync.sync.run import run_tenant
from ar_sync.sync.status import run_summary

REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
              "frame-ancestors 'self'; base-uri 'none'")


async def runs_page(request: Request) -> Response:
    connection = company(request)
    reports = config(request).store.recent_reports(connection.id, limit=20)
    for r in reports:
        r["summary"] = run_summary(r)
        r["to_check"] = [a for a in r.get("actions", []) if a.get("outcome") == "ambiguous"]
        r["problems"] = [a for a in r.get("actions", []) if a.get("outcome") in ("failed",
                                                                                  "retry")]
    return render(request, "runs.html", company=connection, reports=reports)


def _run(request: Request, connection: Connection) -> str:
    cfg = config(request)
    if cfg.run_now is not None:
        return cfg.run_now(connection)
    report = run_tenant(cfg.store, connection.id, settings=cfg.settings_for(connection.platform),
                        mail=cfg.mail(), today=cfg.today, clock=cfg.run_clock)
    if report.errors:
        return "The run stopped: " + "; ".join(report.errors)
    what = "Preview run (nothing written)" if report.dry_run else "Run finished"
    return f"{what}: {run_summary(report.to_dict())}."


async def run_now(request: Request) -> Response:
    connection = company(request)
    try:
        message = await run_in_threadpool(_run, request, connection)
        flash(request, message, "error" if message.startswith("The run stopped") else "ok")
    except (SettingsError, UnknownConnectorError) as exc:
        flash(request, f"Cannot run: {exc}", "error")
    return RedirectResponse(f"{config(request).prefix}/c/{connection.id}/runs", 303)


async def report_page(request: Request) -> Response:
    return render(request, "report.html", company=company(request))


async def report_document(request: Request) -> Response:
    """The report itself, framed by the Report screen (its own CSP: styles inline, no
    script, framed only by the console)."""
    cfg = config(request)
    connection = company(request)
    invoices = cfg.store.open_invoices(connection.id) + cfg.store.paid_invoices(connection.id)
    report = build_report(invoices, cfg.store.history(connection.id),
                          as_of=today_for(request, connection),
                          title=connection.name or connection.external_id)
    return HTMLResponse(render_html([report]), headers={"content-security-policy": REPORT_CSP,
                                                        "x-frame-options": "SAMEORIGIN"})


def routes() -> list[Any]:
    return [Route("/c/{tenant}/runs", runs_page),
            Route("/c/{tenant}/runs", run_now, methods=["POST"]),
            Route("/c/{tenant}/report", report_page),
            Route("/c/{tenant}/report/page", report_document)]


__all__ = ["routes"]
