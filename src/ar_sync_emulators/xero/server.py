"""A local Xero (Accounting API 2.0 + identity) emulator, served over real HTTP on 127.0.0.1.

It speaks what the Xero connector uses, in Xero's own shapes, so xero-python's deserializer is
the judge of fidelity: OAuth2 with rotating single-use refresh tokens, /connections, invoices
(list with where/Statuses/paging/If-Modified-Since, create/update, history, e-mail, online
invoice), contacts, Idempotency-Key replay, Xero's rate limits and their headers, and the shared
fault switches. State lives in memory (xero/model.py); this module is the HTTP shell.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from wsgiref.types import StartResponse, WSGIEnvironment

from ar_sync.domain.money import round_money
from ar_sync.sync.connector import PlatformSettings
from ar_sync_emulators.base import (
    Counters,
    Effect,
    EmulatorServer,
    Faults,
    RateDecision,
    RateLimiter,
    Request,
    Response,
    acknowledge,
    fault_response,
    utcnow,
)
from ar_sync_emulators.books import DemoCompany
from ar_sync_emulators.pdf import invoice_pdf
from ar_sync_emulators.replay import IdempotencyCache, ReplayMode
from ar_sync_emulators.xero import credit as xero_credit
from ar_sync_emulators.xero import groups as xero_groups
from ar_sync_emulators.xero.api import (
    bad_request,
    list_contacts,
    list_invoices,
    not_found,
    problem,
    validation,
    xero_ok,
)
from ar_sync_emulators.xero.effects import org_effects
from ar_sync_emulators.xero.identity import (
    DEFAULT_SCOPES,
    DEFAULT_USER,
    Grant,
    GrantError,
    Identity,
    connection_rows,
)
from ar_sync_emulators.xero.model import (
    Organisation,
    ValidationFailed,
    XInvoice,
    XPayment,
    contact_json,
    history_json,
    invoice_json,
    organisation_json,
    routes,
    seed_organisation,
    stable_id,
    truncate_ms,
)
from ar_sync_emulators.xero.seed import nz_gst_organisation
from ar_sync_emulators.xero.where import WhereError
from ar_sync_emulators.xero.writes import (
    EmailLimitReached,
    add_history,
    email,
    find_invoice,
    save_many,
    touch,
    upsert,
)

API = "/api.xro/2.0"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
IDEMPOTENCY_KEY_MAX = 128  # Xero: "at most 128 characters"
_WRITE_METHODS = {"POST", "PUT"}
# Either Xero's granular invoice scope or the broad one it replaces (apps before March 2026).
_INVOICE_SCOPES = {"accounting.invoices", "accounting.transactions"}
# GET /Organisation and /TaxRates need a settings scope (Xero-OpenAPI: getOrganisations).
_SETTINGS_SCOPES = {"accounting.settings", "accounting.settings.read"}
_CONTACT_SCOPES = {"accounting.contacts", "accounting.contacts.read"}
_SETTINGS_TEMPLATES = {"GET /api.xro/2.0/Organisation", "GET /api.xro/2.0/TaxRates",
                       "GET /api.xro/2.0/Accounts"}

_ROUTES = routes(
    "GET /identity/connect/authorize", "POST /connect/token", "POST /connect/revocation",
    "GET /connections", "GET /online/{token}",
    "GET /api.xro/2.0/Invoices", "POST /api.xro/2.0/Invoices", "PUT /api.xro/2.0/Invoices",
    "GET /api.xro/2.0/Invoices/{id}", "POST /api.xro/2.0/Invoices/{id}",
    "GET /api.xro/2.0/Invoices/{id}/History", "PUT /api.xro/2.0/Invoices/{id}/History",
    "POST /api.xro/2.0/Invoices/{id}/History", "POST /api.xro/2.0/Invoices/{id}/Email",
    "GET /api.xro/2.0/Invoices/{id}/OnlineInvoice",
    "GET /api.xro/2.0/Organisation", "GET /api.xro/2.0/TaxRates", "GET /api.xro/2.0/Accounts",
    "GET /api.xro/2.0/Contacts", "GET /api.xro/2.0/Contacts/{id}",
    *xero_credit.ROUTES, *xero_groups.ROUTES,
)


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
        self.known_keys: set[str] = set()  # learn_keys(): effects() bookkeeping only
        self.limiter = RateLimiter(per_minute=per_minute, per_day=per_day,
                                   concurrent=concurrent, clock=self.clock)
        self.app_limiter = RateLimiter(per_minute=app_per_minute, clock=self.clock)
        self.identity = Identity(clock=self.clock, client_id=client_id,
                                 client_secret=client_secret, access_token_ttl=access_token_ttl,
                                 epoch=lambda: self.faults.token_epoch)
        self.orgs: dict[str, Organisation] = {}
        # (user, tenant) -> (authEventId, connected at): one connection per user and
        # organisation; a newer consent that includes the organisation takes it over.
        self.connections: dict[tuple[str, str], tuple[str, datetime]] = {}
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

    def add_organisation(self, org: Organisation) -> str:
        """Add a ready-built organisation (e.g. ar_sync_emulators/xero/seed.py's GST one)."""
        with self._lock:
            self.orgs[org.tenant_id] = org
        return org.tenant_id

    def seed_nz_gst(self, tenant_id: str | None = None, **options: Any) -> str:
        """Add the New Zealand GST organisation of ar_sync_emulators/xero/seed.py."""
        tenant = tenant_id or stable_id("tenant", "nz-gst", str(len(self.orgs)))
        return self.add_organisation(nz_gst_organisation(tenant, self.clock(), **options))

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
            touch(inv, now, "Paid" if inv.status == "PAID" else "Payment",
                  f"Payment received of {paid}")

    def group(self, name: str, contact_id: str, tenant_id: str | None = None) -> str:
        """Put a contact in a contact group (made if missing), as in the Xero UI; its id."""
        with self._lock:
            return xero_groups.add_to_group(self.org(tenant_id), name, contact_id).id

    def touch(self, invoice_id: str, tenant_id: str | None = None) -> None:
        """Mark an invoice changed now (an edit someone made in Xero)."""
        with self._lock:
            touch(self.invoice(invoice_id, tenant_id), self.clock(), "Edited", "Edited in Xero")

    def corrupt(self, invoice_id: str, tenant_id: str | None = None, **fields: Any) -> None:
        """Force raw JSON fields onto an invoice (None removes one): a malformed invoice."""
        with self._lock:
            inv = self.invoice(invoice_id, tenant_id)
            inv.overrides.update(fields)
            inv.updated = truncate_ms(self.clock())

    def effects(self) -> list[Effect]:
        """Every note, late fee (line or fee invoice) and e-mail that carries an ar-sync key."""
        with self._lock:
            return [e for org in self.orgs.values() for e in org_effects(org, self.known_keys)]

    def learn_keys(self, keys: Iterable[str]) -> None:
        """Bookkeeping for effects() only: action keys the caller knows ar-sync meant to write
        (a batch call carries one Idempotency-Key for all its fees, so the short references
        on batched fees are resolved through these; a fee nobody claimed stays "AR-…")."""
        with self._lock:
            self.known_keys.update(keys)

    # ------------------------------------------------------------------ OAuth helpers

    def authorize(self, client_id: str, redirect_uri: str, state: str, *,
                  scope: str | None = None, code_challenge: str | None = None,
                  tenants: Iterable[str] | None = None, user: str = DEFAULT_USER) -> str:
        """What the consent screen does: the redirect URL carrying `code` and `state`."""
        granted = tuple(tenants) if tenants is not None else tuple(self.orgs)
        scopes = tuple((scope or " ".join(DEFAULT_SCOPES)).split())
        code, grant = self.identity.consent(client_id, redirect_uri, granted, scopes,
                                            code_challenge, user=user)
        with self._lock:
            for tenant in granted:
                self.connections[(grant.user, tenant)] = (grant.id, self.clock())
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
        response = self.handle(req)
        acknowledge(self, req)  # --state: saved before the answer goes out
        return response(start_response)

    def handle(self, req: Request) -> Response:
        path = req.path.rstrip("/").lower() or "/"
        found = next(((m, template) for method, pattern, template in _ROUTES
                      if method == req.method and (m := pattern.match(path))), None)
        if found is None:
            return not_found()
        m, template = found
        self.counters.call(template)
        fault = self.faults.before_request(req.path)
        if fault is not None:
            injected = fault_response(fault, error=lambda s, msg: problem(s, "Injected", msg))
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
            return self._connections(grant, req)
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
            resp = problem(401, "Unauthorized", detail)
            return None, resp.with_headers({"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return grant, None

    def _connections(self, grant: Grant, req: Request) -> Response:
        """The user's connections to this app; `?authEventId=` keeps one consent's."""
        with self._lock:
            rows = connection_rows(self.connections, grant.user,
                                   {t: o.name for t, o in self.orgs.items()},
                                   req.query.get("authEventId"))
        return Response.json(200, rows)

    def _connected(self, grant: Grant, tenant: str) -> bool:
        with self._lock:
            found = self.connections.get((grant.user, tenant))
        return found is not None and found[0] == grant.id and tenant in self.orgs

    def _online_page(self, token: str) -> Response:
        with self._lock:
            for org in self.orgs.values():
                for page in org.invoices.values():
                    if page.online_token == token:
                        return Response.text(
                            200, f"<html><body><h1>{org.name}</h1><p>Invoice {page.number}: "
                                 f"{page.amount_due} {page.currency} due</p></body></html>",
                            "text/html")
        return not_found()

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
            return problem(403, "Forbidden", "AuthenticationUnsuccessful")
        if not _GUID.match(tenant):
            return bad_request("ValidationException",
                                "Xero-Tenant-Id is not a valid GUID", number=10)
        if not self._connected(grant, tenant):
            return problem(403, "Forbidden", "AuthenticationUnsuccessful")
        if not set(grant.scopes) & (_SETTINGS_SCOPES if template in _SETTINGS_TEMPLATES
                                    else _CONTACT_SCOPES if "/ContactGroups" in template
                                    else _INVOICE_SCOPES):
            return problem(401, "Unauthorized", "AuthorizationUnsuccessful: insufficient scope")
        app = self.app_limiter.acquire("app")
        if not app.allowed:
            return problem(429, "Too Many Requests", "App minute limit exceeded").with_headers(
                {"Retry-After": str(app.retry_after), "X-Rate-Limit-Problem": "appminute"})
        decision = self.limiter.acquire(tenant)
        if not decision.allowed:
            self.app_limiter.release("app")
            return problem(429, "Too Many Requests", f"{decision.problem} limit exceeded"
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
        if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
            return bad_request("ValidationException", "Idempotency-Key must be at most "
                               f"{IDEMPOTENCY_KEY_MAX} characters", number=10)
        if key is None:
            return self._apply_write(req, org, template, obj_id)
        scope = f"{org.tenant_id}:{req.path.lower()}"
        org.request_keys.add(key)  # bookkeeping for effects() only (effect_keys.py)
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
            return bad_request("PostDataInvalidException", "The request body is not valid JSON",
                                number=17)
        with self._lock:
            try:
                return self._route(req, org, template, obj_id, body)
            except ValidationFailed as exc:
                element = None
                if obj_id and obj_id in org.invoices:
                    element = invoice_json(org, org.invoices[obj_id], summary=True)
                return validation(exc.messages, element)
            except WhereError as exc:
                return bad_request("QueryParseException", str(exc))

    def _route(self, req: Request, org: Organisation, template: str, obj_id: str | None,
               body: Any) -> Response:
        now = self.clock()
        verb = template.split(" ", 1)[0]
        tail = template.rsplit("/", 1)[-1]
        if template == "GET /api.xro/2.0/Invoices":
            return list_invoices(req, org, now)
        if template in ("POST /api.xro/2.0/Invoices", "PUT /api.xro/2.0/Invoices"):
            return self._save_invoices(req, org, body, create_only=(verb == "PUT"), now=now)
        if template == "GET /api.xro/2.0/Organisation":
            return xero_ok({"Organisations": [organisation_json(org)]}, now)
        if template == "GET /api.xro/2.0/TaxRates":
            return xero_ok({"TaxRates": [r.json() for r in org.tax.rates.values()]}, now)
        if template == "GET /api.xro/2.0/Accounts":
            return xero_ok({"Accounts": [a.json() for a in org.tax.accounts.values()]}, now)
        if "/ContactGroups" in template:  # customer pauses: ar_sync_emulators/xero/groups.py
            status, payload = xero_groups.route(org, template, obj_id, req.query)
            return xero_ok(payload, now) if status == 200 else not_found()
        if "/CreditNotes" in template:  # waivers: ar_sync_emulators/xero/credit.py
            status, payload = xero_credit.route(org, template, obj_id, body, req.query, now)
            return xero_ok(payload, now) if status == 200 else not_found()
        if template == "GET /api.xro/2.0/Contacts":
            return list_contacts(req, org, now)
        if template == "GET /api.xro/2.0/Contacts/{id}":
            contact = org.contacts.get((obj_id or "").lower())
            if contact is None:
                return not_found()
            return xero_ok({"Contacts": [contact_json(contact)]}, now)
        inv = find_invoice(org, obj_id or "")
        if inv is None:
            return not_found()
        if template == "GET /api.xro/2.0/Invoices/{id}":
            if "application/pdf" in req.headers.get("accept", ""):  # the invoice as a PDF
                contact = org.contacts[inv.contact_id]
                return Response(200, invoice_pdf([
                    f"{org.name} - Invoice {inv.number}", f"To: {contact.name}",
                    f"Due: {inv.due_date}", f"Total: {inv.total} {inv.currency}  "
                    f"Amount due: {inv.amount_due}"]), [("Content-Type", "application/pdf")])
            return xero_ok({"Invoices": [invoice_json(org, inv)]}, now)
        if template == "POST /api.xro/2.0/Invoices/{id}":
            items = body.get("Invoices") if isinstance(body, dict) else None
            item = items[0] if isinstance(items, list) and items else body
            updated = upsert(org, item, inv, now, create_only=False)
            return xero_ok({"Invoices": [invoice_json(org, updated)]}, now)
        if tail == "History":
            if verb == "GET":
                return xero_ok({"HistoryRecords": [history_json(h) for h in
                                                   reversed(inv.history)]}, now)
            # PUT and POST behave the same (Xero docs, History and Notes)
            added = add_history(inv.history, body, now)
            return xero_ok({"HistoryRecords": [history_json(h) for h in added]}, now)
        if tail == "Email":
            try:
                email(org, inv, req.headers.get("idempotency-key"), now)
            except EmailLimitReached as exc:
                return validation([str(exc)])
            return Response(204)
        if tail == "OnlineInvoice":
            if inv.status in ("DRAFT", "DELETED") or inv.type != "ACCREC":
                raise ValidationFailed("An online invoice can only be retrieved for an "
                                       "approved sales invoice")
            url = f"{self.url or 'https://in.xero.com'}/online/{inv.online_token}"
            return xero_ok({"OnlineInvoices": [{"OnlineInvoiceUrl": url}]}, now)
        return not_found()

    def _save_invoices(self, req: Request, org: Organisation, body: Any, *, create_only: bool,
                       now: datetime) -> Response:
        items = body.get("Invoices") if isinstance(body, dict) else None
        summarize = req.query.get("summarizeErrors", "true").lower() != "false"
        return xero_ok({"Invoices": save_many(org, items, now, create_only=create_only,
                                              summarize=summarize)}, now)
