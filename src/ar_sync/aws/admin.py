"""Admin routes (behind the JWT authorizer): a business sets its companies' rules, go-live
and pauses in the serverless deployment, as `ar-sync rules apply`, `go-live` and `pause` do
locally. Registered on ar_sync.aws.http's resolver (imported at its end); each route answers
404 for a tenant that is not the caller's (the token's `sub`), so nothing about other
businesses' companies leaks.

  PUT  /admin/tenants/{tenant}/rules            body: the YAML (or {"rules": YAML, "note"})
  GET  /admin/tenants/{tenant}/rules            current version; ?history=1 for all
  POST /admin/tenants/{tenant}/rules/rollback   {"version": N} (default: the previous one)
  POST /admin/tenants/{tenant}/go-live          {"date": "YYYY-MM-DD", "mode": "live|preview"}
  POST /admin/tenants/{tenant}/pauses           {"invoice"|"customer", "until", "reason", "note"}
  POST /admin/tenants/{tenant}/resume           {"invoice"|"customer"}
  PUT  /admin/tenants/{tenant}/mail             {"from_address", "reply_to", "smtp_username",
                                                 "smtp_password", "webhook_secret"} (null
                                                 clears one; missing keeps it)
  GET  /admin/tenants/{tenant}/mail             the addresses, and which secrets are set
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import ValidationError

from ar_sync.aws import config
from ar_sync.aws.api import app, caller_business, error_response
from ar_sync.aws.config import logger
from ar_sync.delivery import webhook_http
from ar_sync.domain.pauses import REASONS
from ar_sync.rules.policy import Policy, PolicyError
from ar_sync.sync import company_settings as change
from ar_sync.sync.company_rules import company_today
from ar_sync.sync.company_settings import SettingsChangeError
from ar_sync.sync.company_store import CompanyMail, RulesVersion
from ar_sync.sync.connector import Connection
from ar_sync.sync.mail import webhook_urls

MAX_RULES_BYTES = 256_000


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _refused(exc: _Refused) -> Response[Any]:
    return error_response(exc.status, str(exc))


app.exception_handler(_Refused)(_refused)


def _json(status: int, body: dict[str, Any]) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=body, headers={"Cache-Control": "no-store"})


def _tenant(tenant: str) -> Connection:
    """The caller's connection `tenant`; 404 when unknown or another business's."""
    business = caller_business()
    connection = config.store().get_connection(unquote(tenant))
    if connection is None or connection.business_id != business:
        raise _Refused(404, "no such company in your account")
    return connection


def _body() -> dict[str, Any]:
    try:
        data = json.loads(app.current_event.body or "{}")
    except ValueError:
        raise _Refused(400, "the body must be JSON") from None
    if not isinstance(data, dict):
        raise _Refused(400, "the body must be a JSON object")
    return data


def _day(value: Any, field: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _Refused(400, f"{field}: {value!r} is not a date (YYYY-MM-DD)") from None


def _version_json(v: RulesVersion) -> dict[str, Any]:
    return {"version": v.version, "source": v.source, "note": v.note,
            "created_at": v.created_at.isoformat(), "text": v.text}


def _webhooks_vetted(policy: Policy) -> list[str]:
    """Webhook hosts resolved and checked now too (and again at every send): a business's
    rules must not point ar-sync at the network it runs in."""
    return webhook_http.unsafe_targets(webhook_urls(policy))


@app.put("/admin/tenants/<tenant>/rules")
def put_rules(tenant: str) -> Response[Any]:
    connection = _tenant(tenant)
    raw = app.current_event.body or ""
    note = ""
    if "json" in (app.current_event.headers.get("content-type") or ""):
        data = _body()
        raw, note = str(data.get("rules") or ""), str(data.get("note") or "")
    if not raw.strip() or len(raw.encode()) > MAX_RULES_BYTES:
        raise _Refused(400, f"send the rules YAML (at most {MAX_RULES_BYTES} bytes)")
    try:  # validated exactly as a run will parse it; `extends` only of a shipped set
        applied = change.apply_rules(config.store(), connection.id, raw, source="admin API",
                                     now=datetime.now(UTC), note=note, vet=_webhooks_vetted)
    except PolicyError as exc:
        return _json(400, {"error": "invalid rules", "issues": [str(i) for i in exc.issues]})
    except change.RulesRefusedError as exc:
        logger.warning("rules refused: unsafe webhook", extra={"tenant": connection.id})
        return _json(400, {"error": "invalid rules", "issues": exc.issues})
    if applied.unchanged:
        return _json(200, {"version": applied.version, "unchanged": True})
    logger.info("rules applied", extra={"tenant": connection.id, "version": applied.version})
    return _json(201, {"version": applied.version})


@app.get("/admin/tenants/<tenant>/rules")
def get_rules(tenant: str) -> Response[Any]:
    connection = _tenant(tenant)
    versions = config.store().rules_versions(connection.id)
    if (app.current_event.query_string_parameters or {}).get("history"):
        return _json(200, {"versions": [_version_json(v) for v in versions]})
    if not versions:
        return _json(200, {"version": None, "rules": connection.rules})
    return _json(200, _version_json(versions[-1]))


@app.post("/admin/tenants/<tenant>/rules/rollback")
def rollback_rules(tenant: str) -> Response[Any]:
    connection = _tenant(tenant)
    wanted = _body().get("version")
    try:
        version, target = change.rollback_rules(config.store(), connection.id,
                                         None if wanted is None else int(wanted),
                                         now=datetime.now(UTC))
    except (SettingsChangeError, ValueError, TypeError):
        raise _Refused(404, "no such earlier rules version") from None
    return _json(201, {"version": version, "same_as": target.version})


@app.post("/admin/tenants/<tenant>/go-live")
def go_live(tenant: str) -> Response[Any]:
    connection = _tenant(tenant)
    data = _body()
    mode = str(data.get("mode") or "live")
    if mode not in ("live", "preview"):
        raise _Refused(400, "mode: live or preview")
    updated = change.go_live(config.store(), connection, on=_day(data.get("date"), "date"),
                      preview=mode == "preview", today=company_today(config.store(), connection))
    when = updated.go_live or company_today(config.store(), connection)
    logger.info("go-live", extra={"tenant": connection.id, "mode": mode, "date": str(when)})
    return _json(200, {"tenant": connection.id, "mode": mode, "go_live": when.isoformat()})


@app.put("/admin/tenants/<tenant>/mail")
def put_mail(tenant: str) -> Response[Any]:
    """The company's own sender; stored encrypted, secrets never answered back."""
    connection = _tenant(tenant)
    data = _body()
    store = config.store()
    current = store.company_mail(connection.id) or CompanyMail()
    try:
        mail = CompanyMail.model_validate({**current.model_dump(), **data})
    except ValidationError as exc:
        issues = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                  for e in exc.errors(include_url=False, include_input=False)]
        return _json(400, {"error": "invalid mail settings", "issues": issues})
    store.save_company_mail(connection.id, mail)
    logger.info("mail settings saved", extra={"tenant": connection.id, "fields": sorted(data)})
    return _json(200, mail.public())


@app.get("/admin/tenants/<tenant>/mail")
def get_mail(tenant: str) -> Response[Any]:
    connection = _tenant(tenant)
    return _json(200, (config.store().company_mail(connection.id) or CompanyMail()).public())


def _target(connection: Connection, data: dict[str, Any]) -> tuple[str | None, str | None]:
    """(invoice id, customer id) from an invoice number/id or a customer id/name."""
    invoice, customer = data.get("invoice"), data.get("customer")
    if (invoice is None) == (customer is None):
        raise _Refused(400, "name one invoice or one customer")
    open_ = config.store().open_invoices(connection.id)
    if invoice is not None:
        found = next((i for i in open_ if str(invoice) in (i.id, i.number)), None)
        if found is None:
            raise _Refused(404, f"no open invoice {invoice!r} (it must have been fetched)")
        return found.id, None
    match = next((i for i in open_ if str(customer) in (i.customer_id, i.customer_name)), None)
    if match is None:
        raise _Refused(404, f"no customer {customer!r} with open invoices")
    return None, match.customer_id


@app.post("/admin/tenants/<tenant>/pauses")
def add_pause(tenant: str) -> Response[Any]:
    connection = _tenant(tenant)
    data = _body()
    invoice_id, customer_id = _target(connection, data)
    today = company_today(config.store(), connection)
    until = _day(data.get("until"), "until")
    reason = data.get("reason") or "other"
    if reason not in REASONS:
        raise _Refused(400, f"reason: one of {', '.join(REASONS)}")
    try:
        pause = change.new_pause(invoice_id=invoice_id, customer_id=customer_id, until=until,
                          reason=reason, note=str(data.get("note") or ""), today=today)
    except SettingsChangeError as exc:
        raise _Refused(400, str(exc)) from None
    pause_id = config.store().add_pause(connection.id, pause)
    return _json(201, {"id": pause_id, **pause.model_dump(mode="json")})


@app.post("/admin/tenants/<tenant>/resume")
def resume(tenant: str) -> Response[Any]:
    connection = _tenant(tenant)
    data = _body()
    if data.get("invoice") is not None:  # a paused invoice may have been paid meanwhile
        known = next((i.id for i in config.store().open_invoices(connection.id)
                      if str(data["invoice"]) in (i.id, i.number)), str(data["invoice"]))
        ended = config.store().end_pauses(connection.id, invoice_id=known,
                                          on=company_today(config.store(), connection))
    else:
        customer_id = _target(connection, data)[1]
        ended = config.store().end_pauses(connection.id, customer_id=customer_id,
                                          on=company_today(config.store(), connection))
    if not ended:
        raise _Refused(404, "nothing paused there")
    return _json(200, {"ended": ended})
