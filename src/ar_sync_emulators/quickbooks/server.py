"""A local QuickBooks Online (Accounting API v3, minorversion 75) emulator, served over HTTP.

Covers what ar-sync's connector uses, with QBO's own shapes and failure modes: OAuth2 with an
OpenID discovery document and rotating refresh tokens (qbo_oauth), the query language subset
(qbo_query), CDC with deletions, invoice read/create/full and sparse update with the SyncToken
check (5010), delete, send, editions with their tax codes and line kinds (qbo_tax, qbo_lines),
Items, Accounts, Attachable notes, /batch (qbo_entities), `requestid` replay per company,
401/429 and the Fault envelope. The README's emulator section lists the sources.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from ar_sync.domain.money import round_money, to_decimal
from ar_sync.sync.connector import PlatformSettings
from ar_sync_emulators.base import (
    Clock,
    Counters,
    Effect,
    EmulatorServer,
    Faults,
    RateLimiter,
    Request,
    Response,
    acknowledge,
    fault_response,
    utcnow,
)
from ar_sync_emulators.books import DemoCompany
from ar_sync_emulators.effect_keys import keys_in
from ar_sync_emulators.pdf import invoice_pdf
from ar_sync_emulators.quickbooks.credit import CREDIT_ENTITIES, credit_effects
from ar_sync_emulators.quickbooks.entities import (
    BATCH_REQUEST_ID_MAX,
    REQUEST_ID_MAX,
    WRITABLE,
    QboEntities,
)
from ar_sync_emulators.quickbooks.lines import normalise_lines
from ar_sync_emulators.quickbooks.links import LINK_PATH, link_page, wants_link, with_link
from ar_sync_emulators.quickbooks.oauth import SCOPE, AccessGrant, QboOAuth, RefreshGrant
from ar_sync_emulators.quickbooks.payments import link_payment, seed_payments
from ar_sync_emulators.quickbooks.query import QueryError, parse_query, run_query
from ar_sync_emulators.quickbooks.shapes import (
    COMPANY_TZ,
    FEE_FOR_RE,
    MARKER_RE,
    QboFault,
    fault,
    parse_qbo_time,
    qbo_time,
    response_time,
    seed_rows,
)
from ar_sync_emulators.quickbooks.tax import Edition, tax_rows
from ar_sync_emulators.quickbooks.tax import edition as _edition
from ar_sync_emulators.replay import IdempotencyCache, ReplayMode

DEFAULT_REALM = "9341453000000001"
DEFAULT_CLIENT_ID = "ABdemoClientIdForArSyncSandbox"
DEFAULT_CLIENT_SECRET = "demo-secret-not-for-production"  # noqa: S105 - a local emulator's
ENTITIES = ("Invoice", "Customer", "Item", "Account", "Attachable", "TaxCode", "TaxRate",
            "CompanyInfo", *CREDIT_ENTITIES)
BATCH_PER_MINUTE = 40  # /batch requests a minute per company


_Fail = QboFault


@dataclass(frozen=True)
class Send:
    invoice_id: str
    to: str
    request_id: str | None


__all__ = ["SCOPE", "QuickBooksEmulator", "Send"]


class QuickBooksEmulator(QboOAuth, QboEntities):
    """In-memory QBO company (one realm) with an HTTP face; see the module docstring.
    `edition` is "US" (default), "UK", "CA" or "AU"."""

    def __init__(self, clock: Clock | None = None, access_token_ttl: float = 3600, *,
                 refresh_token_ttl: float = 100 * 86400, realm_id: str = DEFAULT_REALM,
                 client_id: str = DEFAULT_CLIENT_ID,
                 client_secret: str = DEFAULT_CLIENT_SECRET,
                 rate_per_minute: int | None = 500, concurrent: int | None = 10,
                 company_name: str = "Demo Trading Co",
                 replay: ReplayMode | str | None = None,
                 edition: Edition | str = "US") -> None:
        self.clock: Clock = clock or utcnow
        self.access_token_ttl = access_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self.realm_id = realm_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.company_name = company_name
        self.faults = Faults()
        self.counters = Counters()
        self.limiter = RateLimiter(per_minute=rate_per_minute, concurrent=concurrent,
                                   clock=self.clock)
        self.idempotency = IdempotencyCache(replay, clock=lambda: self.clock())
        self.batch_limiter = RateLimiter(per_minute=BATCH_PER_MINUTE, clock=self.clock)
        self._request_paths: dict[str, str] = {}  # requestid -> the path it was first used on
        self.known_keys: set[str] = set()  # learn_keys(): effects() bookkeeping only
        self.edition = _edition(edition)
        self.rows: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in ENTITIES}
        self.deleted: dict[str, dict[str, dict[str, Any]]] = {}  # entity -> id -> CDC stub
        self._install_tax()
        self.sends: list[Send] = []
        self._paid: dict[str, Decimal] = {}
        self._next_id = 5000
        self._lock = threading.RLock()
        self._codes: dict[str, tuple[str, str]] = {}  # code -> (client_id, redirect_uri)
        self._access: dict[str, AccessGrant] = {}
        self._refresh: dict[str, RefreshGrant] = {}
        self._server: EmulatorServer | None = None
        self.url = ""

    # ------------------------------------------------------------------ seeding & helpers

    def seed(self, company: DemoCompany) -> QuickBooksEmulator:
        return self.seed_rows(company.name, seed_rows(company, self.clock()))

    def seed_rows(self, name: str, rows: dict[str, dict[str, dict[str, Any]]],
                  paid: dict[str, Decimal] | None = None) -> QuickBooksEmulator:
        """Replace the company with `rows` (entity -> id -> JSON). Invoices are priced here,
        as QBO would; amounts paid from `paid`, else TotalAmt - Balance as given."""
        with self._lock:
            self.company_name = name
            self.rows = {e: {} for e in ENTITIES}
            self.deleted = {}
            self._install_tax()
            for entity, table in rows.items():
                self.rows[entity].update(table)
            for iid, inv in self.rows["Invoice"].items():
                inv["Line"] = normalise_lines(inv.get("Line") or [], set(self.rows["Item"]))
                self._paid[iid] = (paid[iid] if paid is not None and iid in paid else
                                   to_decimal(inv["TotalAmt"]) - to_decimal(inv["Balance"]))
                self._recompute(inv)
            seed_payments(self, self._paid)  # a paid amount always has its Payment
        return self

    def _install_tax(self) -> None:
        """The edition's TaxCode / TaxRate entities and the CompanyInfo saying its country."""
        stamp = qbo_time(self.clock() - timedelta(days=400))
        for entity, table in tax_rows(self.edition, stamp).items():
            self.rows[entity].update(table)
        self.rows["CompanyInfo"] = {self.realm_id: {
            "Id": self.realm_id, "CompanyName": self.company_name,
            "Country": self.edition.country, "SyncToken": "0", "domain": "QBO",
            "sparse": False, "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}}}

    def _new_id(self) -> str:
        with self._lock:
            self._next_id += 1
            return str(self._next_id)

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        with self._lock:
            return self.rows["Invoice"][invoice_id]

    def invoice_by_number(self, number: str) -> dict[str, Any]:
        with self._lock:
            for inv in self.rows["Invoice"].values():
                if inv.get("DocNumber") == number:
                    return inv
        raise KeyError(number)

    def _touch(self, row: dict[str, Any], *, bump: bool = True) -> None:
        if bump:
            row["SyncToken"] = str(int(row.get("SyncToken", "0")) + 1)
        stamp = qbo_time(self.clock())
        row.setdefault("MetaData", {"CreateTime": stamp})["LastUpdatedTime"] = stamp

    def pay(self, invoice_id: str, amount_paid: Decimal | str | int,
            on: date | None = None) -> dict[str, Any]:
        """Record a customer payment (a Payment entity linked to the invoice, dated `on`,
        default today in the company's zone): the balance drops, SyncToken and update time
        move."""
        with self._lock:
            inv = self.rows["Invoice"][invoice_id]
            value = round_money(to_decimal(amount_paid), str(inv["CurrencyRef"]["value"]))
            self._paid[invoice_id] = self._paid.get(invoice_id, Decimal(0)) + value
            day = on or self.clock().astimezone(COMPANY_TZ).date()
            link_payment(self, inv, value, day, self.clock())
            self._recompute(inv)
            self._touch(inv)
            return inv

    def delete(self, invoice_id: str) -> None:
        """Delete an invoice as a person in the QBO UI would (only /cdc still reports it)."""
        with self._lock:
            inv = self.rows["Invoice"][invoice_id]
            self._delete("Invoice", {"Id": invoice_id, "SyncToken": inv["SyncToken"]})

    def void(self, invoice_id: str) -> dict[str, Any]:
        """Void an invoice as the QBO UI does: amounts to zero, the memo says Voided."""
        with self._lock:
            inv = self.rows["Invoice"][invoice_id]
            for line in inv.get("Line", []):
                if "Amount" in line:
                    line["Amount"] = 0
                detail = line.get("SalesItemLineDetail")
                if detail:
                    detail.pop("TaxInclusiveAmt", None)
                    detail["UnitPrice"] = 0
            inv["PrivateNote"] = "Voided"
            self._paid[invoice_id] = Decimal(0)
            self._recompute(inv)
            self._touch(inv)
            return inv

    def edit(self, invoice_id: str, **fields: Any) -> dict[str, Any]:
        """Change an invoice as a person in the QBO UI would (SyncToken moves)."""
        with self._lock:
            inv = self.rows["Invoice"][invoice_id]
            inv.update(fields)
            self._recompute(inv)
            self._touch(inv)
            return inv

    def effects(self) -> list[Effect]:
        """Notes, late fees and e-mails the company holds that carry ar-sync keys."""
        out: list[Effect] = []
        with self._lock:
            for att in self.rows["Attachable"].values():
                for ref in att.get("AttachableRef", []):
                    entity = ref.get("EntityRef", {})
                    if entity.get("type") == "Invoice":
                        for key in MARKER_RE.findall(att.get("Note", "")):
                            out.append(Effect("note", entity.get("value", ""), key, att["Id"]))
            for inv in self.rows["Invoice"].values():
                note = inv.get("PrivateNote", "") or ""
                for line in note.splitlines():
                    found = MARKER_RE.search(line)
                    if not found:
                        continue
                    if "late fee" in line.lower():
                        linked = FEE_FOR_RE.search(line)
                        target = linked.group(1) if linked else inv["Id"]
                        out.append(Effect("late_fee", target, found.group(1), inv["Id"]))
                    else:
                        out.append(Effect("note", inv["Id"], found.group(1), inv["Id"]))
                for ln in inv.get("Line", []):  # a fee invoice's own line is no second fee
                    keys = keys_in(ln.get("Description"), [*self._request_paths,
                                                            *self.known_keys])
                    if keys and not FEE_FOR_RE.search(note):
                        out.append(Effect("late_fee", inv["Id"], keys[0],
                                          f"{inv['Id']}:{ln.get('Id', '')}"))
            out.extend(Effect("email", s.invoice_id, s.request_id, s.invoice_id)
                       for s in self.sends)
            out.extend(credit_effects(self))
        return out

    def learn_keys(self, keys: Iterable[str]) -> None:
        """Bookkeeping for effects() only: action keys the caller knows ar-sync meant to write.
        A batched fee line carries only its short reference and its write travelled under a
        short bId, so effects() resolves it through these (a fee nobody claimed stays
        "AR-…")."""
        with self._lock:
            self.known_keys.update(keys)

    # ------------------------------------------------------------------ OAuth shortcuts

    # ------------------------------------------------------------------ server

    def serve(self, port: int = 0) -> EmulatorServer:
        def remember(url: str) -> None:
            self.url = url

        self._server = EmulatorServer(self, port=port, on_start=remember)
        return self._server

    def settings(self, redirect_uri: str = "http://127.0.0.1:8765/callback") -> PlatformSettings:
        if not self.url:
            raise RuntimeError("start the emulator first (with emu.serve(): ...)")
        return PlatformSettings(
            client_id=self.client_id, client_secret=self.client_secret,
            redirect_uri=redirect_uri, scopes=(SCOPE,),
            endpoints={"api": f"{self.url}/v3",
                       "discovery": f"{self.url}/.well-known/openid-configuration",
                       "authorize": f"{self.url}/connect/oauth2",
                       "token": f"{self.url}/oauth2/v1/tokens/bearer",
                       "revoke": f"{self.url}/oauth2/v1/tokens/revoke"})

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        request = Request.from_environ(environ)
        try:
            response = self._dispatch(request)
        except _Fail as exc:
            response = fault(exc.status, exc.code, exc.message, exc.detail, exc.kind,
                             self.clock())
        except Exception as exc:  # an emulator bug must still answer like QBO would
            response = fault(500, "10000", "An application error has occurred.", repr(exc),
                             "SystemFault", self.clock())
        acknowledge(self, request)  # --state: saved before the answer goes out
        return response(start_response)

    # ------------------------------------------------------------------ routing

    def _dispatch(self, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        if path == "/.well-known/openid-configuration":
            return Response.json(200, self._discovery())
        if path == "/connect/oauth2" and req.method == "GET":
            return self._authorize_endpoint(req)
        if path == "/oauth2/v1/tokens/bearer" and req.method == "POST":
            return self._with_faults(req, "POST /oauth2/v1/tokens/bearer", self._token_endpoint)
        if path == "/oauth2/v1/tokens/revoke" and req.method == "POST":
            return self._revoke_endpoint(req)
        if path.startswith(LINK_PATH) and req.method == "GET":
            return self._link_page(path[len(LINK_PATH):])
        parts = path.strip("/").split("/")
        if len(parts) >= 4 and parts[0] == "v3" and parts[1] == "company":
            return self._api(req, parts[2], parts[3:])
        return Response.json(404, {"error": "not_found", "path": path})

    def _with_faults(self, req: Request, template: str,
                     handler: Callable[[Request], Response]) -> Response:
        self.counters.call(template)
        injected = self.faults.before_request(req.path)
        if injected is not None:
            early = fault_response(injected, error=self._error)
            if early is not None:
                return early
        return handler(req)

    def _error(self, status: int, message: str) -> Response:
        if status == 429:
            return fault(429, "3001", "message=ThrottleExceeded; errorCode=003001; "
                         "statusCode=429", "The request limit has been reached.",
                         "SERVICE", self.clock())
        return fault(status, "10000", "An application error has occurred while processing "
                     "your request", message, "SystemFault", self.clock())

    # ------------------------------------------------------------------ API

    def _api(self, req: Request, realm: str, rest: list[str]) -> Response:
        template = self._template(req.method, rest)
        self.counters.call(template)
        if not self._authorized(req, realm):
            return fault(401, "3200", "message=AuthenticationFailed; errorCode=003200; "
                         "statusCode=401", "Token expired or invalid", "AUTHENTICATION",
                         self.clock())
        decision = self.limiter.acquire(realm)
        if not decision.allowed:
            return self._error(429, "rate").with_headers(
                {"Retry-After": str(decision.retry_after)})
        try:
            injected = self.faults.before_request(req.path)
            if injected is not None:
                early = fault_response(injected, error=self._error)
                if early is not None:
                    return early
            request_id = req.query.get("requestid")
            limit = BATCH_REQUEST_ID_MAX if rest[0].lower() == "batch" else REQUEST_ID_MAX
            if request_id is not None and len(request_id) > limit:
                return fault(400, "2050", "String length is either shorter or longer than "
                             "supported by specification", f"requestid is {len(request_id)} "
                             f"characters; Max allowed is {limit}", now=self.clock())
            if rest[0].lower() == "batch" and req.method == "POST":
                batch = self.batch_limiter.acquire(realm)
                if not batch.allowed:
                    return self._error(429, "batch").with_headers(
                        {"Retry-After": str(batch.retry_after)})
            if req.method == "POST" and request_id and rest[0] != "query":
                return self._idempotent(req, request_id, rest)
            return self._route(req, rest)
        finally:
            self.limiter.release(realm)

    @staticmethod
    def _template(method: str, rest: list[str]) -> str:
        shape = "/".join("{id}" if p.isdigit() else p for p in rest)
        return f"{method} /v3/company/{{realm}}/{shape}"

    def _idempotent(self, req: Request, request_id: str, rest: list[str]) -> Response:
        """A requestid is unique per company, not per endpoint: reused on another request it
        still answers with the first request's recorded response."""
        with self._lock:
            path = self._request_paths.setdefault(request_id, req.path)
        with self.idempotency.lock(request_id, "POST", path):
            recorded = self.idempotency.get(request_id, "POST", path)
            if recorded is not None:
                self.counters.replayed()
                return recorded.response()
            response = self._route(req, rest)
            if response.status < 500:
                self.idempotency.put(request_id, "POST", path, response)
            if response.status == 200 and self.faults.take_drop(req.path):
                req.drop_response()
            return response

    def _route(self, req: Request, rest: list[str]) -> Response:
        head = rest[0].lower()
        if head == "query":
            text = req.body.decode() if req.method == "POST" else req.query.get("query", "")
            return self._ok({"QueryResponse": self._query(text)})
        if head == "cdc" and req.method == "GET":
            return self._ok(self._cdc(req.query))
        if head == "batch" and req.method == "POST":
            return self._ok(self._batch(req))
        if head == "invoice" and len(rest) == 3 and rest[2] == "send" and req.method == "POST":
            inv = self._send(rest[1], req.query.get("sendTo"), req.query.get("requestid"))
            return self._ok({"Invoice": inv})
        if head == "invoice" and len(rest) == 3 and rest[2] == "pdf" and req.method == "GET":
            return self._pdf(rest[1])
        if head == "companyinfo" and len(rest) == 2 and req.method == "GET":
            with self._lock:  # one per company, whatever realm id it was given later
                info = next(iter(self.rows["CompanyInfo"].values()))
                return self._ok({"CompanyInfo": {**info, "Id": rest[1],
                                                 "CompanyName": self.company_name}})
        entity = self._entity(head)
        if len(rest) == 2 and req.method == "GET":
            row = self._read(entity, rest[1])
            if entity == "Invoice" and wants_link(req.query.get("include", "")):  # qbo_links
                with self._lock:
                    row = with_link(row, self.rows["Customer"], base_url=self.url,
                                    realm=self.realm_id)
            return self._ok({entity: row})
        if len(rest) == 1 and req.method == "POST":
            if entity not in WRITABLE:
                raise _Fail(400, "4000", "Unsupported Operation", f"write {entity}")
            body = req.json() or {}
            return self._ok({entity: self._write(entity, body, req.query.get("operation"))})
        raise _Fail(400, "4000", "Unsupported Operation",
                    f"Operation {req.method} {'/'.join(rest)} is not supported.")

    def _ok(self, payload: dict[str, Any]) -> Response:
        return Response.json(200, {**payload, "time": response_time(self.clock())})

    @staticmethod
    def _entity(name: str) -> str:
        for entity in ENTITIES:
            if entity.lower() == name.lower():
                return entity
        raise _Fail(400, "4000", "Unsupported Operation",
                    f"Entity {name} is not supported by the emulator.")

    # ------------------------------------------------------------------ operations

    def _query(self, text: str) -> dict[str, Any]:
        try:
            query = parse_query(text)
        except QueryError as exc:
            raise _Fail(400, "4000", "Error parsing query", f"QueryParserError: {exc}") from exc
        if query.entity not in ENTITIES:  # Intuit: a query's entity is case sensitive
            raise _Fail(400, "4000", "Error parsing query",
                        f"QueryParserError: unknown entity {query.entity}")
        entity = self._entity(query.entity)
        with self._lock:
            page, total = run_query(query, list(self.rows[entity].values()))
            if query.count:
                return {"totalCount": total}
            if not page:
                return {}
            return {entity: [dict(row) for row in page], "startPosition": query.start,
                    "maxResults": len(page)}

    def _cdc(self, params: dict[str, str]) -> dict[str, Any]:
        since_text = params.get("changedSince", "")
        try:
            since = parse_qbo_time(since_text)
        except ValueError as exc:
            raise _Fail(400, "4000", "Invalid changedSince", since_text) from exc
        if self.clock() - since > timedelta(days=30):
            raise _Fail(400, "4000", "Invalid changedSince",
                        "changedSince may not be more than 30 days ago")
        blocks: list[dict[str, Any]] = []
        with self._lock:
            for name in params.get("entities", "").split(","):
                entity = self._entity(name.strip())
                rows = [dict(r) for r in self.rows[entity].values()
                        if parse_qbo_time(r["MetaData"]["LastUpdatedTime"]) > since]
                rows += [dict(r) for r in self.deleted.get(entity, {}).values()
                         if parse_qbo_time(r["MetaData"]["LastUpdatedTime"]) > since]
                rows = sorted(rows, key=lambda r: r["MetaData"]["LastUpdatedTime"])[:1000]
                block: dict[str, Any] = {"startPosition": 1, "maxResults": len(rows)}
                if rows:
                    block[entity] = rows
                blocks.append(block)
        return {"CDCResponse": [{"QueryResponse": blocks}]}

    def _read(self, entity: str, object_id: str) -> dict[str, Any]:
        with self._lock:
            row = self.rows[entity].get(object_id)
            if row is None:
                raise _Fail(400, "610", "Object Not Found",
                            f"Object Not Found : Something you're trying to use has been made "
                            f"inactive. Check the fields with accounts, customers, items, "
                            f"vendors or employees. ({entity} {object_id})")
            return dict(row)

    def _link_page(self, token: str) -> Response:
        """What a customer's payment link (InvoiceLink) opens."""
        with self._lock:
            page = link_page(self.rows["Invoice"], self.realm_id, token, self.company_name)
        if page is None:
            return Response.json(404, {"error": "not_found"})
        return Response.text(200, page, "text/html")

    def _pdf(self, invoice_id: str) -> Response:
        """The invoice as a PDF (ar_sync_emulators/pdf.py); unknown ids answer like a read does."""
        with self._lock:
            inv = self.rows["Invoice"].get(invoice_id)
            if inv is None:
                raise _Fail(400, "610", "Object Not Found", f"Invoice {invoice_id}")
            lines = [f"{self.company_name} - Invoice {inv.get('DocNumber', invoice_id)}",
                     f"Bill to: {(inv.get('CustomerRef') or {}).get('name', '')}",
                     f"Due: {inv.get('DueDate', '')}",
                     f"Total: {inv.get('TotalAmt')}  Balance: {inv.get('Balance')}"]
        return Response(200, invoice_pdf(lines), [("Content-Type", "application/pdf")])

    def _send(self, invoice_id: str, send_to: str | None,
              request_id: str | None) -> dict[str, Any]:
        with self._lock:
            inv = self.rows["Invoice"].get(invoice_id)
            if inv is None:
                raise _Fail(400, "610", "Object Not Found", f"Invoice {invoice_id}")
            to = send_to or (inv.get("BillEmail") or {}).get("Address")
            if not to:
                raise _Fail(400, "2050", "Email Address Invalid",
                            "Email Address Invalid : BillEmail is missing and no sendTo given")
            self.sends.append(Send(invoice_id, to, request_id))
            inv["EmailStatus"] = "EmailSent"
            inv["DeliveryInfo"] = {"DeliveryType": "Email",
                                   "DeliveryTime": qbo_time(self.clock())}
            if send_to:
                inv["BillEmail"] = {"Address": send_to}
            self._touch(inv)
            self.counters.applied()
            return dict(inv)
