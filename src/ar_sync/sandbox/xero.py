"""A local Xero (Accounting API 2.0 + identity) emulator, served over real HTTP on 127.0.0.1.

It speaks what the Xero connector uses, in Xero's own shapes, so xero-python's deserializer is
the judge of fidelity: OAuth2 with rotating single-use refresh tokens, /connections, invoices
(list with where/Statuses/paging/If-Modified-Since, create/update, history, e-mail, online
invoice), contacts, Idempotency-Key replay, Xero's rate limits and their headers, and the shared
fault switches. State lives in memory (sandbox/xero_model.py); this module is the HTTP shell.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode
from wsgiref.types import StartResponse, WSGIEnvironment

from ar_sync.connector import PlatformSettings
from ar_sync.money import UnknownCurrencyError, normalise_currency, round_money
from ar_sync.sandbox.common import (
    Counters,
    Effect,
    EmulatorServer,
    Faults,
    IdempotencyCache,
    RateDecision,
    RateLimiter,
    ReplayMode,
    Request,
    Response,
    fault_response,
    utcnow,
)
from ar_sync.sandbox.demo import DemoCompany
from ar_sync.sandbox.xero_identity import DEFAULT_SCOPES, Grant, GrantError, Identity
from ar_sync.sandbox.xero_model import (
    CONTACT_WHERE_FIELDS,
    INVOICE_WHERE_FIELDS,
    Organisation,
    ValidationFailed,
    XHistory,
    XInvoice,
    XLine,
    XPayment,
    contact_json,
    contact_record,
    dumps,
    history_json,
    invoice_json,
    invoice_record,
    ms_date,
    parse_xero_date,
    seed_organisation,
    stable_id,
    truncate_ms,
)
from ar_sync.sandbox.xero_where import WhereError, parse_where

API = "/api.xro/2.0"
MARKER = re.compile(r"ar-sync:([A-Za-z0-9_\-]+)")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_STATUSES = {"DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"}
_WRITE_METHODS = {"POST", "PUT"}
# Either Xero's granular invoice scope or the broad one it replaces (apps before March 2026).
_INVOICE_SCOPES = {"accounting.invoices", "accounting.transactions"}

# (method, regex over the lower-cased path, endpoint template for the counters)
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), t) for m, p, t in (
        ("GET", r"^/identity/connect/authorize$", "GET /identity/connect/authorize"),
        ("POST", r"^/connect/token$", "POST /connect/token"),
        ("POST", r"^/connect/revocation$", "POST /connect/revocation"),
        ("GET", r"^/connections$", "GET /connections"),
        ("GET", r"^/online/(?P<token>[^/]+)$", "GET /online/{token}"),
        ("GET", r"^/api\.xro/2\.0/invoices$", "GET /api.xro/2.0/Invoices"),
        ("POST", r"^/api\.xro/2\.0/invoices$", "POST /api.xro/2.0/Invoices"),
        ("PUT", r"^/api\.xro/2\.0/invoices$", "PUT /api.xro/2.0/Invoices"),
        ("GET", r"^/api\.xro/2\.0/invoices/(?P<id>[^/]+)$", "GET /api.xro/2.0/Invoices/{id}"),
        ("POST", r"^/api\.xro/2\.0/invoices/(?P<id>[^/]+)$",
         "POST /api.xro/2.0/Invoices/{id}"),
        ("GET", r"^/api\.xro/2\.0/invoices/(?P<id>[^/]+)/history$",
         "GET /api.xro/2.0/Invoices/{id}/History"),
        ("PUT", r"^/api\.xro/2\.0/invoices/(?P<id>[^/]+)/history$",
         "PUT /api.xro/2.0/Invoices/{id}/History"),
        ("POST", r"^/api\.xro/2\.0/invoices/(?P<id>[^/]+)/email$",
         "POST /api.xro/2.0/Invoices/{id}/Email"),
        ("GET", r"^/api\.xro/2\.0/invoices/(?P<id>[^/]+)/onlineinvoice$",
         "GET /api.xro/2.0/Invoices/{id}/OnlineInvoice"),
        ("GET", r"^/api\.xro/2\.0/contacts$", "GET /api.xro/2.0/Contacts"),
        ("GET", r"^/api\.xro/2\.0/contacts/(?P<id>[^/]+)$", "GET /api.xro/2.0/Contacts/{id}"),
    )
]


def _problem(status: int, title: str, detail: str) -> Response:
    """Xero's gateway error body (401, 403, 429, 5xx)."""
    return Response.json(status, {"Type": None, "Title": title, "Status": status,
                                  "Detail": detail, "Instance": stable_id(detail, title),
                                  "Extensions": {}})


def _validation(messages: Iterable[str], element: dict[str, Any] | None = None) -> Response:
    """Xero's ValidationException envelope (ErrorNumber 10), as the SDK expects it."""
    el = dict(element or {})
    el["ValidationErrors"] = [{"Message": m} for m in messages]
    return Response(400, dumps({"ErrorNumber": 10, "Type": "ValidationException",
                                "Message": "A validation exception occurred",
                                "Elements": [el]}), [("Content-Type", "application/json")])


def _bad_request(kind: str, message: str, number: int = 16) -> Response:
    return Response.json(400, {"ErrorNumber": number, "Type": kind, "Message": message})


def _not_found() -> Response:
    return Response.text(404, "The resource you're looking for cannot be found")


def _xero_ok(payload: dict[str, Any], now: datetime) -> Response:
    body = {"Id": stable_id(str(now.timestamp())), "Status": "OK",
            "ProviderName": "ar-sync Xero emulator", "DateTimeUTC": ms_date(now), **payload}
    return Response(200, dumps(body), [("Content-Type", "application/json")])


def _parse_since(value: str) -> datetime:
    """If-Modified-Since as clients send it: ISO 8601 (naive = UTC) or an HTTP date."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        moment = parsedate_to_datetime(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _amount(value: object, what: str) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(f"{what} must be a number") from exc


class XeroEmulator:
    """Emulated Xero: one app registration, any number of organisations (tenants)."""

    def __init__(self, clock: Callable[[], datetime] | None = None,
                 access_token_ttl: float = 1800, *, per_minute: int | None = 60,
                 per_day: int | None = 5000, concurrent: int | None = 5,
                 app_per_minute: int | None = 10_000, client_id: str = "XEROEMUCLIENTID0001",
                 client_secret: str = "xero-emulator-secret",  # noqa: S107
                 replay: ReplayMode | str | None = None) -> None:
        self.clock = clock or utcnow
        self.faults = Faults()
        self.counters = Counters()
        self.idempotency = IdempotencyCache(replay, clock=lambda: self.clock())
        self.limiter = RateLimiter(per_minute=per_minute, per_day=per_day,
                                   concurrent=concurrent, clock=self.clock)
        self.app_limiter = RateLimiter(per_minute=app_per_minute, clock=self.clock)
        self.identity = Identity(clock=self.clock, client_id=client_id,
                                 client_secret=client_secret, access_token_ttl=access_token_ttl,
                                 epoch=lambda: self.faults.token_epoch)
        self.orgs: dict[str, Organisation] = {}
        self.url = ""
        self._lock = threading.RLock()
        self._server: EmulatorServer | None = None

    # ------------------------------------------------------------------ seeding and inspection

    def seed(self, company: DemoCompany, tenant_id: str | None = None,
             name: str | None = None) -> str:
        """Add an organisation built from the neutral demo company; returns its tenant id."""
        tenant = tenant_id or stable_id("tenant", company.name, str(len(self.orgs)))
        org = seed_organisation(company, tenant, self.clock())
        if name:
            org.name = name
        with self._lock:
            self.orgs[tenant] = org
        return tenant

    @property
    def tenant_id(self) -> str:
        """The first organisation's tenant id (most tests have one)."""
        return next(iter(self.orgs))

    def org(self, tenant_id: str | None = None) -> Organisation:
        return self.orgs[tenant_id or self.tenant_id]

    def invoice(self, invoice_id: str, tenant_id: str | None = None) -> XInvoice:
        return self.org(tenant_id).invoices[invoice_id]

    def invoice_by_number(self, number: str, tenant_id: str | None = None) -> XInvoice:
        return next(i for i in self.org(tenant_id).invoices.values() if i.number == number)

    def pay(self, invoice_id: str, amount: Decimal | str, tenant_id: str | None = None) -> None:
        """Record a payment: lowers AmountDue, PAID when settled, bumps UpdatedDateUTC."""
        with self._lock:
            inv = self.invoice(invoice_id, tenant_id)
            now = self.clock()
            paid = round_money(Decimal(amount), inv.currency)
            if inv.status != "AUTHORISED" or paid <= 0 or paid > inv.amount_due:
                raise ValueError(f"cannot pay {paid} on {inv.number} ({inv.status}, "
                                 f"due {inv.amount_due})")
            inv.payments.append(XPayment(stable_id(inv.id, "pay", str(len(inv.payments))),
                                         paid, now.date()))
            if inv.amount_due == 0:
                inv.status = "PAID"
            self._touch(inv, "Paid" if inv.status == "PAID" else "Payment",
                        f"Payment received of {paid}")

    def touch(self, invoice_id: str, tenant_id: str | None = None) -> None:
        """Mark an invoice changed now (an edit someone made in Xero)."""
        with self._lock:
            self._touch(self.invoice(invoice_id, tenant_id), "Edited", "Edited in Xero")

    def corrupt(self, invoice_id: str, tenant_id: str | None = None, **fields: Any) -> None:
        """Force raw JSON fields onto an invoice (None removes one): a malformed invoice."""
        with self._lock:
            inv = self.invoice(invoice_id, tenant_id)
            inv.overrides.update(fields)
            inv.updated = truncate_ms(self.clock())

    def effects(self) -> list[Effect]:
        """Every note, late fee (line or fee invoice) and e-mail that carries an ar-sync key."""
        out: list[Effect] = []
        with self._lock:
            for org in self.orgs.values():
                by_number = {i.number: i.id for i in org.invoices.values()}
                for inv in org.invoices.values():
                    for n, rec in enumerate(inv.history):
                        for key in MARKER.findall(rec.details) if rec.changes == "Note" else ():
                            out.append(Effect("note", inv.id, key, f"{inv.id}/history/{n}"))
                    fee_invoice_keys = MARKER.findall(inv.reference)
                    for line in inv.lines:  # a fee invoice's own line is not a second fee
                        for key in MARKER.findall(line.description):
                            if key not in fee_invoice_keys:
                                out.append(Effect("late_fee", inv.id, key, line.id))
                    for key in fee_invoice_keys:
                        target = next((by_number[n] for n in re.findall(r"INV-\d+",
                                                                        inv.reference)
                                       if n in by_number and by_number[n] != inv.id), inv.id)
                        out.append(Effect("late_fee", target, key, inv.id))
                for n, (invoice_id, key, _) in enumerate(org.emails):
                    out.append(Effect("email", invoice_id, key, f"email-{n}"))
        return out

    # ------------------------------------------------------------------ OAuth helpers

    def authorize(self, client_id: str, redirect_uri: str, state: str, *,
                  scope: str | None = None, code_challenge: str | None = None,
                  tenants: Iterable[str] | None = None) -> str:
        """What the consent screen does: the redirect URL carrying `code` and `state`."""
        granted = tuple(tenants) if tenants is not None else tuple(self.orgs)
        scopes = tuple((scope or " ".join(DEFAULT_SCOPES)).split())
        code = self.identity.consent(client_id, redirect_uri, granted, scopes, code_challenge)
        sep = "&" if "?" in redirect_uri else "?"
        return f"{redirect_uri}{sep}{urlencode({'code': code, 'state': state})}"

    def settings(self, redirect_uri: str = "http://127.0.0.1:8765/callback") -> PlatformSettings:
        """An app registration pointing every endpoint at this emulator (serve() first)."""
        if not self.url:
            raise RuntimeError("start the emulator (serve()) before asking for its settings")
        return PlatformSettings(
            client_id=self.identity.client_id, client_secret=self.identity.client_secret,
            redirect_uri=redirect_uri, scopes=DEFAULT_SCOPES,
            endpoints={"api": self.url + API, "token": self.url + "/connect/token",
                       "authorize": self.url + "/identity/connect/authorize",
                       "revoke": self.url + "/connect/revocation",
                       "identity": self.url, "connections": self.url + "/connections"})

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> EmulatorServer:
        """The HTTP server (a context manager); `self.url` is set once it has started."""

        def started(url: str) -> None:
            self.url = url

        self._server = EmulatorServer(self, host=host, port=port, on_start=started)
        return self._server

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        req = Request.from_environ(environ)
        return self.handle(req)(start_response)

    def handle(self, req: Request) -> Response:
        path = req.path.rstrip("/").lower() or "/"
        found = next(((m, template) for method, pattern, template in _ROUTES
                      if method == req.method and (m := pattern.match(path))), None)
        if found is None:
            return _not_found()
        m, template = found
        self.counters.call(template)
        fault = self.faults.before_request(req.path)
        if fault is not None:
            injected = fault_response(fault, error=lambda s, msg: _problem(s, "Injected", msg))
            if injected is not None:
                if injected.status == 429:
                    injected.with_headers({"X-Rate-Limit-Problem": "minute"})
                return injected
        params = m.groupdict()
        if template.startswith("GET /identity"):
            return self._authorize_endpoint(req)
        if template == "POST /connect/token":
            return self._token_endpoint(req)
        if template == "POST /connect/revocation":
            self.identity.revoke(req.form().get("token", ""))
            return Response(200)
        if template.startswith("GET /online"):
            return self._online_page(params["token"])
        grant, rejected = self._bearer(req)
        if rejected is not None:
            return rejected
        assert grant is not None
        if template == "GET /connections":
            return self._connections(grant)
        return self._api(req, grant, template, params.get("id"))

    # ------------------------------------------------------------------ identity endpoints

    def _authorize_endpoint(self, req: Request) -> Response:
        q = req.query
        if q.get("response_type") != "code" or not q.get("redirect_uri"):
            return Response.text(400, "invalid_request")
        try:
            location = self.authorize(q.get("client_id", ""), q["redirect_uri"],
                                      q.get("state", ""), scope=q.get("scope"),
                                      code_challenge=q.get("code_challenge"))
        except GrantError as exc:
            return Response.text(400, exc.code)
        return Response.redirect(location)

    def _token_endpoint(self, req: Request) -> Response:
        form = req.form()
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = req.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            import base64

            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        try:
            self.identity.check_client(client_id, secret)
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                tokens = self.identity.exchange(form.get("code", ""), form.get("redirect_uri"),
                                                form.get("code_verifier"))
            elif grant_type == "refresh_token":
                tokens = self.identity.refresh(form.get("refresh_token", ""))
            else:
                raise GrantError("unsupported_grant_type")
        except GrantError as exc:
            return Response.json(exc.status, {"error": exc.code})
        return Response.json(200, tokens, [("Cache-Control", "no-store")])

    def _bearer(self, req: Request) -> tuple[Grant | None, Response | None]:
        header = req.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        grant = self.identity.check_access(token) if token else None
        if grant is None:
            detail = "TokenExpired: token expired" if token else "No token provided"
            resp = _problem(401, "Unauthorized", detail)
            return None, resp.with_headers({"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return grant, None

    def _connections(self, grant: Grant) -> Response:
        stamp = grant.created.strftime("%Y-%m-%dT%H:%M:%S.%f")
        rows = [{"id": stable_id(grant.id, t), "authEventId": grant.id, "tenantId": t,
                 "tenantType": "ORGANISATION", "tenantName": self.orgs[t].name,
                 "createdDateUtc": stamp, "updatedDateUtc": stamp}
                for t in grant.tenants if t in self.orgs]
        return Response.json(200, rows)

    def _online_page(self, token: str) -> Response:
        with self._lock:
            for org in self.orgs.values():
                for page in org.invoices.values():
                    if page.online_token == token:
                        return Response.text(
                            200, f"<html><body><h1>{org.name}</h1><p>Invoice {page.number}: "
                                 f"{page.amount_due} {page.currency} due</p></body></html>",
                            "text/html")
        return _not_found()

    # ------------------------------------------------------------------ API shell

    def _rate_headers(self, decision: RateDecision, app: RateDecision) -> dict[str, str]:
        out: dict[str, str] = {}
        if decision.minute_remaining is not None:
            out["X-MinLimit-Remaining"] = str(decision.minute_remaining)
        if decision.day_remaining is not None:
            out["X-DayLimit-Remaining"] = str(decision.day_remaining)
        if app.minute_remaining is not None:
            out["X-AppMinLimit-Remaining"] = str(app.minute_remaining)
        return out

    def _api(self, req: Request, grant: Grant, template: str, obj_id: str | None) -> Response:
        tenant = req.headers.get("xero-tenant-id", "").strip()
        if not tenant:
            return _problem(403, "Forbidden", "AuthenticationUnsuccessful")
        if not _GUID.match(tenant):
            return _bad_request("ValidationException",
                                "Xero-Tenant-Id is not a valid GUID", number=10)
        if tenant not in grant.tenants or tenant not in self.orgs:
            return _problem(403, "Forbidden", "AuthenticationUnsuccessful")
        if not set(grant.scopes) & _INVOICE_SCOPES:
            return _problem(401, "Unauthorized", "AuthorizationUnsuccessful: insufficient scope")
        app = self.app_limiter.acquire("app")
        if not app.allowed:
            return _problem(429, "Too Many Requests", "App minute limit exceeded").with_headers(
                {"Retry-After": str(app.retry_after), "X-Rate-Limit-Problem": "appminute"})
        decision = self.limiter.acquire(tenant)
        if not decision.allowed:
            self.app_limiter.release("app")
            return _problem(429, "Too Many Requests", f"{decision.problem} limit exceeded"
                            ).with_headers({"Retry-After": str(decision.retry_after),
                                            "X-Rate-Limit-Problem": str(decision.problem),
                                            **self._rate_headers(decision, app)})
        try:
            resp = self._write_or_read(req, self.orgs[tenant], template, obj_id)
        finally:
            self.limiter.release(tenant)
            self.app_limiter.release("app")
        return resp.with_headers(self._rate_headers(decision, app))

    def _write_or_read(self, req: Request, org: Organisation, template: str,
                       obj_id: str | None) -> Response:
        if req.method not in _WRITE_METHODS:
            return self._dispatch(req, org, template, obj_id)
        key = req.headers.get("idempotency-key")
        if key is None:
            return self._apply_write(req, org, template, obj_id)
        scope = f"{org.tenant_id}:{req.path.lower()}"
        with self.idempotency.lock(key, req.method, scope):
            recorded = self.idempotency.get(key, req.method, scope)
            if recorded is not None:
                self.counters.replayed()
                return recorded.response()
            resp = self._apply_write(req, org, template, obj_id)
            if resp.status < 500 and resp.status != 429:
                self.idempotency.put(key, req.method, scope, resp)
            return resp

    def _apply_write(self, req: Request, org: Organisation, template: str,
                     obj_id: str | None) -> Response:
        resp = self._dispatch(req, org, template, obj_id)
        if 200 <= resp.status < 300:
            self.counters.applied()
            if self.faults.take_drop(req.path):
                req.drop_response()
        return resp

    def _dispatch(self, req: Request, org: Organisation, template: str,
                  obj_id: str | None) -> Response:
        try:
            body = json.loads(req.body, parse_float=Decimal) if req.body else {}
        except ValueError:
            return _bad_request("PostDataInvalidException", "The request body is not valid JSON",
                                number=17)
        with self._lock:
            try:
                return self._route(req, org, template, obj_id, body)
            except ValidationFailed as exc:
                element = None
                if obj_id and obj_id in org.invoices:
                    element = invoice_json(org, org.invoices[obj_id], summary=True)
                return _validation(exc.messages, element)
            except WhereError as exc:
                return _bad_request("QueryParseException", str(exc))

    def _route(self, req: Request, org: Organisation, template: str, obj_id: str | None,
               body: Any) -> Response:
        now = self.clock()
        verb = template.split(" ", 1)[0]
        tail = template.rsplit("/", 1)[-1]
        if template == "GET /api.xro/2.0/Invoices":
            return self._list_invoices(req, org, now)
        if template in ("POST /api.xro/2.0/Invoices", "PUT /api.xro/2.0/Invoices"):
            items = body.get("Invoices") if isinstance(body, dict) else None
            if not isinstance(items, list) or not items:
                raise ValidationFailed("Invoices must be specified")
            done = [self._upsert(org, item, None, create_only=(verb == "PUT")) for item in items]
            return _xero_ok({"Invoices": [invoice_json(org, i) for i in done]}, now)
        if template == "GET /api.xro/2.0/Contacts":
            return self._list_contacts(req, org, now)
        if template == "GET /api.xro/2.0/Contacts/{id}":
            contact = org.contacts.get((obj_id or "").lower())
            if contact is None:
                return _not_found()
            return _xero_ok({"Contacts": [contact_json(contact)]}, now)
        inv = self._find(org, obj_id or "")
        if inv is None:
            return _not_found()
        if template == "GET /api.xro/2.0/Invoices/{id}":
            return _xero_ok({"Invoices": [invoice_json(org, inv)]}, now)
        if template == "POST /api.xro/2.0/Invoices/{id}":
            items = body.get("Invoices") if isinstance(body, dict) else None
            item = items[0] if isinstance(items, list) and items else body
            updated = self._upsert(org, item, inv, create_only=False)
            return _xero_ok({"Invoices": [invoice_json(org, updated)]}, now)
        if tail == "History":
            if verb == "GET":
                return _xero_ok({"HistoryRecords": [history_json(h) for h in
                                                    reversed(inv.history)]}, now)
            return self._add_history(inv, body, now)
        if tail == "Email":
            return self._email(org, inv, req, now)
        if tail == "OnlineInvoice":
            if inv.status in ("DRAFT", "DELETED") or inv.type != "ACCREC":
                raise ValidationFailed("An online invoice can only be retrieved for an "
                                       "approved sales invoice")
            url = f"{self.url or 'https://in.xero.com'}/online/{inv.online_token}"
            return _xero_ok({"OnlineInvoices": [{"OnlineInvoiceUrl": url}]}, now)
        return _not_found()

    # ------------------------------------------------------------------ reads

    @staticmethod
    def _find(org: Organisation, ref: str) -> XInvoice | None:
        """Xero accepts an InvoiceID or an InvoiceNumber in the path."""
        inv = org.invoices.get(ref.lower())
        if inv is None:
            inv = next((i for i in org.invoices.values() if i.number.lower() == ref.lower()),
                       None)
        return inv

    def _list_invoices(self, req: Request, org: Organisation, now: datetime) -> Response:
        q = {k.lower(): v for k, v in req.query.items()}
        unknown = set(q) - {"where", "order", "ids", "invoicenumbers", "contactids", "statuses",
                            "page", "pagesize", "summaryonly", "includearchived",
                            "createdbymyapp", "unitdp", "searchterm"}
        if unknown:
            return _bad_request("QueryParseException",
                                f"unsupported parameter(s): {', '.join(sorted(unknown))}")
        predicate = parse_where(q.get("where", ""), INVOICE_WHERE_FIELDS)
        statuses = {s.strip().upper() for s in q.get("statuses", "").split(",") if s.strip()}
        if statuses - _STATUSES:
            return _bad_request("ValidationException",
                                f"unknown status {sorted(statuses - _STATUSES)[0]}", number=10)
        ids = {s.strip().lower() for s in q.get("ids", "").split(",") if s.strip()}
        numbers = {s.strip() for s in q.get("invoicenumbers", "").split(",") if s.strip()}
        contacts = {s.strip().lower() for s in q.get("contactids", "").split(",") if s.strip()}
        term = q.get("searchterm", "").lower()
        since = None
        if "if-modified-since" in req.headers:
            try:
                since = _parse_since(req.headers["if-modified-since"])
            except (TypeError, ValueError):
                return _bad_request("ValidationException", "If-Modified-Since is not a date",
                                    number=10)
        summary = q.get("summaryonly", "").lower() == "true"
        rows = [inv for inv in org.invoices.values()
                if (not statuses or inv.status in statuses)
                and (inv.status != "DELETED" or "DELETED" in statuses)
                and (not ids or inv.id in ids) and (not numbers or inv.number in numbers)
                and (not contacts or inv.contact_id in contacts)
                and (not term or term in inv.number.lower() or term in inv.reference.lower())
                and (since is None or inv.updated > since)
                and predicate(invoice_record(org, inv))]
        rows = self._order(rows, q.get("order", ""))
        payload: dict[str, Any] = {}
        if "page" in q:
            try:
                page, size = int(q["page"]), int(q.get("pagesize", "100"))
            except ValueError:
                return _bad_request("ValidationException", "page and pageSize must be numbers",
                                    number=10)
            if page < 1 or not 1 <= size <= 1000:
                return _bad_request("ValidationException",
                                    "page must be >= 1 and pageSize between 1 and 1000",
                                    number=10)
            count = len(rows)
            rows = rows[(page - 1) * size: page * size]
            payload["pagination"] = {"page": page, "pageSize": size,
                                     "pageCount": (count + size - 1) // size, "itemCount": count}
            lines = not summary
        else:
            lines = False  # Xero leaves line items out of unpaged lists
        payload["Invoices"] = [invoice_json(org, inv, lines=lines, summary=summary)
                               for inv in rows]
        return _xero_ok(payload, now)

    @staticmethod
    def _order(rows: list[XInvoice], order: str) -> list[XInvoice]:
        if not order.strip():
            return rows
        field, _, direction = order.strip().partition(" ")
        keys: dict[str, Callable[[XInvoice], Any]] = {
            "updateddateutc": lambda i: i.updated, "invoicenumber": lambda i: i.number,
            "duedate": lambda i: i.due_date or date.min, "date": lambda i: i.date,
            "amountdue": lambda i: i.amount_due}
        key = keys.get(field.lower())
        if key is None or direction.strip().upper() not in ("", "ASC", "DESC"):
            raise WhereError(f"unsupported order {order!r}")
        return sorted(rows, key=key, reverse=direction.strip().upper() == "DESC")

    def _list_contacts(self, req: Request, org: Organisation, now: datetime) -> Response:
        q = {k.lower(): v for k, v in req.query.items()}
        predicate = parse_where(q.get("where", ""), CONTACT_WHERE_FIELDS)
        ids = {s.strip().lower() for s in q.get("ids", "").split(",") if s.strip()}
        rows = [c for c in org.contacts.values()
                if (not ids or c.id in ids) and predicate(contact_record(c))]
        payload: dict[str, Any] = {}
        if "page" in q:
            page, size = int(q["page"]), int(q.get("pagesize", "100"))
            if page < 1 or not 1 <= size <= 1000:
                raise WhereError("page must be >= 1 and pageSize between 1 and 1000")
            count = len(rows)
            rows = rows[(page - 1) * size: page * size]
            payload["pagination"] = {"page": page, "pageSize": size,
                                     "pageCount": (count + size - 1) // size, "itemCount": count}
        summary = q.get("summaryonly", "").lower() == "true"
        payload["Contacts"] = [contact_json(c, summary=summary) for c in rows]
        return _xero_ok(payload, now)

    # ------------------------------------------------------------------ writes

    def _touch(self, inv: XInvoice, changes: str, details: str) -> None:
        now = self.clock()
        inv.updated = truncate_ms(now)
        inv.history.append(XHistory(now, changes, details))

    def _add_history(self, inv: XInvoice, body: Any, now: datetime) -> Response:
        records = body.get("HistoryRecords") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            raise ValidationFailed("HistoryRecords must be specified")
        added: list[XHistory] = []
        for rec in records:
            details = str((rec or {}).get("Details") or "").strip()
            if not details:
                raise ValidationFailed("The Details field is required")
            if len(details) > 2500:
                raise ValidationFailed("The Details field must be 2500 characters or less")
            added.append(XHistory(now, "Note", details, user="ar-sync (API)"))
        inv.history.extend(added)  # a note does not change the invoice's UpdatedDateUTC
        return _xero_ok({"HistoryRecords": [history_json(h) for h in added]}, now)

    def _email(self, org: Organisation, inv: XInvoice, req: Request, now: datetime) -> Response:
        if inv.type != "ACCREC" or inv.status not in ("SUBMITTED", "AUTHORISED", "PAID"):
            raise ValidationFailed("Invoice must be of status SUBMITTED, AUTHORISED or PAID "
                                   "to be emailed")
        contact = org.contacts[inv.contact_id]
        if not contact.email:
            raise ValidationFailed("The contact must have a valid email address")
        org.emails.append((inv.id, req.headers.get("idempotency-key"), now))
        inv.history.append(XHistory(now, "Emailed",
                                    f"INV {inv.number} sent to {contact.email}"))
        if not inv.sent_to_contact:
            inv.sent_to_contact = True
            inv.updated = truncate_ms(now)
        return Response(204)

    def _upsert(self, org: Organisation, data: Any, existing: XInvoice | None, *,
                create_only: bool) -> XInvoice:
        if not isinstance(data, dict):
            raise ValidationFailed("An invoice must be an object")
        if existing is None and data.get("InvoiceID"):
            existing = self._find(org, str(data["InvoiceID"]))
            if existing is None:
                raise ValidationFailed("Invoice could not be found")
            if create_only:
                raise ValidationFailed("PUT creates invoices; use POST to update one")
        if existing is None:
            return self._create(org, data)
        self._update(org, existing, data)
        return existing

    def _lines(self, data: Any, currency: str, existing: list[XLine]) -> list[XLine]:
        if not isinstance(data, list) or not data:
            raise ValidationFailed("One or more line items must be specified")
        by_id = {line.id: line for line in existing}
        out: list[XLine] = []
        for raw in data:
            raw = raw or {}
            old = by_id.get(str(raw.get("LineItemID", "")).lower())
            description = str(raw.get("Description", old.description if old else "")).strip()
            if not description:
                raise ValidationFailed("Description is required for line items")
            qty = _amount(raw.get("Quantity", old.quantity if old else 1), "Quantity")
            if "UnitAmount" in raw:
                unit = _amount(raw["UnitAmount"], "UnitAmount")
            elif "LineAmount" in raw:
                unit = _amount(raw["LineAmount"], "LineAmount") / (qty or 1)
            elif old is not None:
                unit = old.unit_amount
            else:
                raise ValidationFailed("UnitAmount is required for line items")
            if len(description) > 4000:
                raise ValidationFailed("Description must be 4000 characters or less")
            line_id = old.id if old else stable_id(description, str(len(out)), str(self.clock()))
            out.append(XLine(line_id, description, qty, round_money(unit, currency),
                             str(raw.get("AccountCode", old.account_code if old else "200"))))
        return out

    def _create(self, org: Organisation, data: dict[str, Any]) -> XInvoice:
        errors: list[str] = []
        if data.get("Type") != "ACCREC":
            errors.append("Invoice Type must be ACCREC (the emulator holds sales invoices only)")
        contact_ref = data.get("Contact") or {}
        contact = org.contacts.get(str(contact_ref.get("ContactID", "")).lower()) or next(
            (c for c in org.contacts.values() if c.name == contact_ref.get("Name")), None)
        if contact is None:
            errors.append("A Contact must be specified for this type of transaction")
        status = str(data.get("Status") or "DRAFT").upper()
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            errors.append(f"Invoice Status {status} is not valid for a new invoice")
        if status == "AUTHORISED" and not data.get("DueDate"):
            errors.append("Due Date is required")
        if errors:
            raise ValidationFailed(*errors)
        assert contact is not None
        try:
            currency = normalise_currency(str(data.get("CurrencyCode") or contact.currency))
        except UnknownCurrencyError as exc:
            raise ValidationFailed(f"The currency {data.get('CurrencyCode')} is not valid"
                                   ) from exc
        now = self.clock()
        number = str(data.get("InvoiceNumber") or org.new_number())
        if any(i.number == number for i in org.invoices.values()):
            raise ValidationFailed("Invoice # must be unique.")
        inv = XInvoice(
            id=stable_id(org.tenant_id, "created", number, str(now.timestamp())),
            number=number, type="ACCREC", contact_id=contact.id,
            date=parse_xero_date(data["Date"]) if data.get("Date") else now.date(),
            due_date=parse_xero_date(data["DueDate"]) if data.get("DueDate") else None,
            currency=currency, status=status,
            lines=self._lines(data.get("LineItems"), currency, []),
            reference=str(data.get("Reference") or ""), updated=truncate_ms(now),
            online_token=stable_id("online", org.tenant_id, number))
        if len(inv.reference) > 255:
            raise ValidationFailed("Reference must be 255 characters or less")
        inv.history.append(XHistory(now, "Created", f"INV {number} created via the API."))
        if status == "AUTHORISED":
            inv.history.append(XHistory(now, "Approved", f"INV {number} approved."))
        org.invoices[inv.id] = inv
        return inv

    def _update(self, org: Organisation, inv: XInvoice, data: dict[str, Any]) -> None:
        if inv.status in ("PAID", "VOIDED", "DELETED"):
            raise ValidationFailed("Invoice not of valid status for modification")
        changed: list[str] = []
        if "LineItems" in data:
            if inv.payments:
                raise ValidationFailed("This document cannot be edited as it has a payment or "
                                       "credit note allocated to it.")
            inv.lines = self._lines(data["LineItems"], inv.currency, inv.lines)
            changed.append("line items")
        if "Reference" in data:
            reference = str(data["Reference"] or "")
            if len(reference) > 255:
                raise ValidationFailed("Reference must be 255 characters or less")
            inv.reference = reference
            changed.append("reference")
        if data.get("DueDate"):
            inv.due_date = parse_xero_date(data["DueDate"])
            changed.append("due date")
        status = str(data.get("Status") or inv.status).upper()
        if status != inv.status:
            allowed = {("DRAFT", "SUBMITTED"), ("DRAFT", "AUTHORISED"),
                       ("SUBMITTED", "AUTHORISED"), ("AUTHORISED", "VOIDED"),
                       ("DRAFT", "DELETED"), ("SUBMITTED", "DELETED")}
            if (inv.status, status) not in allowed or (status == "VOIDED" and inv.payments):
                raise ValidationFailed(f"Invoice cannot go from {inv.status} to {status}")
            inv.status = status
            changed.append(f"status {status}")
        if changed:
            self._touch(inv, "Edited", f"INV {inv.number} updated: {', '.join(changed)}.")
