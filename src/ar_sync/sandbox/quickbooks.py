"""A local QuickBooks Online (Accounting API v3, minorversion 75) emulator, served over HTTP.

Covers what ar-sync's connector uses, with QBO's own shapes and failure modes: OAuth2 with an
OpenID discovery document and rotating refresh tokens, the query language subset, CDC,
invoice read/create/full and sparse update with the SyncToken check (5010), invoice send,
Items, Accounts, Attachable notes, /batch, `requestid` replay, 401/429 and the Fault envelope.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from wsgiref.types import StartResponse, WSGIEnvironment

from ar_sync.connector import PlatformSettings
from ar_sync.money import round_money, to_decimal
from ar_sync.sandbox.common import (
    Clock,
    Counters,
    Effect,
    EmulatorServer,
    Faults,
    IdempotencyCache,
    RateLimiter,
    ReplayMode,
    Request,
    Response,
    fault_response,
    utcnow,
)
from ar_sync.sandbox.demo import DemoCompany
from ar_sync.sandbox.qbo_credit import (
    CREDIT_ENTITIES,
    create_credit_memo,
    create_payment,
    credit_effects,
)
from ar_sync.sandbox.qbo_query import QueryError, parse_query, run_query
from ar_sync.sandbox.qbo_shapes import (
    COMPANY_TZ,
    FEE_FOR_RE,
    MARKER_RE,
    amount,
    fault,
    fault_body,
    parse_qbo_time,
    qbo_time,
    response_time,
    seed_rows,
    subtotal_line,
)

DEFAULT_REALM = "9341453000000001"
DEFAULT_CLIENT_ID = "ABdemoClientIdForArSyncSandbox"
DEFAULT_CLIENT_SECRET = "demo-secret-not-for-production"  # noqa: S105 - a local emulator's
SCOPE = "com.intuit.quickbooks.accounting"
ENTITIES = ("Invoice", "Customer", "Item", "Account", "Attachable", *CREDIT_ENTITIES)


class _Fail(Exception):
    """Raised inside a handler to answer with a Fault envelope."""

    def __init__(self, status: int, code: str, message: str, detail: str = "",
                 kind: str = "ValidationFault") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail, self.kind = (
            status, code, message, detail, kind)


@dataclass
class _Access:
    realm: str
    expires_at: datetime
    epoch: int
    refresh: str


@dataclass
class _Refresh:
    realm: str
    client_id: str
    expires_at: datetime
    spent: bool = False


@dataclass(frozen=True)
class Send:
    invoice_id: str
    to: str
    request_id: str | None


class QuickBooksEmulator:
    """In-memory QBO company (one realm) with an HTTP face; see the module docstring."""

    def __init__(self, clock: Clock | None = None, access_token_ttl: float = 3600, *,
                 refresh_token_ttl: float = 100 * 86400, realm_id: str = DEFAULT_REALM,
                 client_id: str = DEFAULT_CLIENT_ID,
                 client_secret: str = DEFAULT_CLIENT_SECRET,
                 rate_per_minute: int | None = 500, concurrent: int | None = 10,
                 company_name: str = "Demo Trading Co",
                 replay: ReplayMode | str | None = None) -> None:
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
        self.rows: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in ENTITIES}
        self.sends: list[Send] = []
        self._paid: dict[str, Decimal] = {}
        self._next_id = 5000
        self._lock = threading.RLock()
        self._codes: dict[str, tuple[str, str]] = {}  # code -> (client_id, redirect_uri)
        self._access: dict[str, _Access] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._server: EmulatorServer | None = None
        self.url = ""

    # ------------------------------------------------------------------ seeding & helpers

    def seed(self, company: DemoCompany) -> QuickBooksEmulator:
        with self._lock:
            self.company_name = company.name
            self.rows = {e: {} for e in ENTITIES}
            for entity, rows in seed_rows(company, self.clock()).items():
                self.rows[entity].update(rows)
            for iid, inv in self.rows["Invoice"].items():
                self._paid[iid] = to_decimal(inv["TotalAmt"]) - to_decimal(inv["Balance"])
        return self

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

    def pay(self, invoice_id: str, amount_paid: Decimal | str | int) -> dict[str, Any]:
        """Record a customer payment: the balance drops, SyncToken and update time move."""
        with self._lock:
            inv = self.rows["Invoice"][invoice_id]
            paid = self._paid.get(invoice_id, Decimal(0)) + to_decimal(amount_paid)
            self._paid[invoice_id] = paid
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

    def _recompute(self, inv: dict[str, Any]) -> None:
        currency = inv.get("CurrencyRef", {}).get("value", "USD")
        lines = [ln for ln in inv.get("Line", []) if ln.get("DetailType") != "SubTotalLineDetail"]
        total = sum((to_decimal(ln.get("Amount", 0)) for ln in lines), Decimal(0))
        total = round_money(total, currency)
        inv["Line"] = [*lines, subtotal_line(total)]
        balance = max(Decimal(0), total - self._paid.get(inv["Id"], Decimal(0)))
        inv["TotalAmt"], inv["Balance"] = amount(total), amount(round_money(balance, currency))
        inv["HomeBalance"] = inv["Balance"]

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
                for ln in inv.get("Line", []):
                    found = MARKER_RE.search(ln.get("Description", "") or "")
                    if found and not FEE_FOR_RE.search(note):
                        out.append(Effect("late_fee", inv["Id"], found.group(1),
                                          f"{inv['Id']}:{ln.get('Id', '')}"))
            out.extend(Effect("email", s.invoice_id, s.request_id, s.invoice_id)
                       for s in self.sends)
            out.extend(credit_effects(self))
        return out

    # ------------------------------------------------------------------ OAuth shortcuts

    def authorize(self, client_id: str, redirect_uri: str, state: str,
                  scope: str = SCOPE) -> str:
        """What the browser consent does: the redirect URL with code, state and realmId."""
        if client_id != self.client_id:
            raise ValueError("unknown client_id")
        if SCOPE not in scope.split():
            raise ValueError(f"scope must include {SCOPE}")
        code = "AB" + secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = (client_id, redirect_uri)
        sep = "&" if "?" in redirect_uri else "?"
        return redirect_uri + sep + urlencode({"code": code, "state": state,
                                               "realmId": self.realm_id})

    def _issue(self, client_id: str) -> dict[str, Any]:
        now = self.clock()
        access = "eyJ" + secrets.token_urlsafe(32)
        refresh = "AB" + secrets.token_urlsafe(32)
        with self._lock:
            self._access[access] = _Access(self.realm_id,
                                           now + timedelta(seconds=self.access_token_ttl),
                                           self.faults.token_epoch, refresh)
            self._refresh[refresh] = _Refresh(self.realm_id, client_id,
                                              now + timedelta(seconds=self.refresh_token_ttl))
        return {"token_type": "bearer", "access_token": access, "refresh_token": refresh,
                "expires_in": int(self.access_token_ttl),
                "x_refresh_token_expires_in": int(self.refresh_token_ttl)}

    def grant(self) -> dict[str, Any]:
        """Tokens for this realm without the consent dance (for benchmarks and quick tests)."""
        return self._issue(self.client_id)

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

    def _discovery(self) -> dict[str, Any]:
        base = self.url
        return {"issuer": f"{base}/op/v1", "authorization_endpoint": f"{base}/connect/oauth2",
                "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
                "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
                "revocation_endpoint": f"{base}/oauth2/v1/tokens/revoke",
                "jwks_uri": f"{base}/op/v1/jwks",
                "response_types_supported": ["code"], "scopes_supported": [SCOPE, "openid"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"]}

    def _authorize_endpoint(self, req: Request) -> Response:
        q = req.query
        if q.get("response_type") != "code" or not q.get("redirect_uri"):
            return Response.text(400, "invalid_request")
        try:
            return Response.redirect(self.authorize(q.get("client_id", ""), q["redirect_uri"],
                                                    q.get("state", ""), q.get("scope", "")))
        except ValueError as exc:
            return Response.text(400, f"invalid_request: {exc}")

    def _client_ok(self, req: Request) -> bool:
        import base64

        header = req.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return cid == self.client_id and secrets.compare_digest(secret, self.client_secret)

    def _token_endpoint(self, req: Request) -> Response:
        if not self._client_ok(req):
            return Response.json(401, {"error": "invalid_client"})
        form = req.form()
        grant = form.get("grant_type")
        with self._lock:
            if grant == "authorization_code":
                issued = self._codes.pop(form.get("code", ""), None)
                if issued is None or issued[1] != form.get("redirect_uri"):
                    return Response.json(400, {"error": "invalid_grant"})
                return Response.json(200, self._issue(issued[0]))
            if grant == "refresh_token":
                token = self._refresh.get(form.get("refresh_token", ""))
                if token is None or token.spent or token.expires_at <= self.clock():
                    return Response.json(400, {"error": "invalid_grant"})
                token.spent = True  # rotation: the old refresh token is single-use
                return Response.json(200, self._issue(token.client_id))
        return Response.json(400, {"error": "unsupported_grant_type"})

    def _revoke_endpoint(self, req: Request) -> Response:
        self.counters.call("POST /oauth2/v1/tokens/revoke")
        if not self._client_ok(req):
            return Response.json(401, {"error": "invalid_client"})
        token = str((req.json() or {}).get("token", ""))
        with self._lock:
            if token in self._refresh:
                self._refresh[token].spent = True
                for access, info in list(self._access.items()):
                    if info.refresh == token:
                        del self._access[access]
            self._access.pop(token, None)
        return Response(200)

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
            if req.method == "POST" and request_id and rest[0] != "query":
                return self._idempotent(req, request_id, rest)
            return self._route(req, rest)
        finally:
            self.limiter.release(realm)

    @staticmethod
    def _template(method: str, rest: list[str]) -> str:
        shape = "/".join("{id}" if p.isdigit() else p for p in rest)
        return f"{method} /v3/company/{{realm}}/{shape}"

    def _authorized(self, req: Request, realm: str) -> bool:
        header = req.headers.get("authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        with self._lock:
            info = self._access.get(token)
            return (info is not None and info.realm == realm == self.realm_id
                    and info.expires_at > self.clock()
                    and info.epoch >= self.faults.token_epoch)

    def _idempotent(self, req: Request, request_id: str, rest: list[str]) -> Response:
        with self.idempotency.lock(request_id, req.method, req.path):
            recorded = self.idempotency.get(request_id, req.method, req.path)
            if recorded is not None:
                self.counters.replayed()
                return recorded.response()
            response = self._route(req, rest)
            if response.status < 500:
                self.idempotency.put(request_id, req.method, req.path, response)
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
        if head == "companyinfo" and len(rest) == 2 and req.method == "GET":
            return self._ok({"CompanyInfo": {"Id": rest[1], "CompanyName": self.company_name,
                                             "Country": "US", "SyncToken": "0",
                                             "domain": "QBO", "sparse": False}})
        entity = self._entity(head)
        if len(rest) == 2 and req.method == "GET":
            return self._ok({entity: self._read(entity, rest[1])})
        if len(rest) == 1 and req.method == "POST":
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
                        if parse_qbo_time(r["MetaData"]["LastUpdatedTime"]) > since][:1000]
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

    def _write(self, entity: str, body: dict[str, Any], operation: str | None) -> dict[str, Any]:
        if operation not in (None, "update"):
            raise _Fail(400, "4000", "Unsupported Operation", f"operation={operation}")
        with self._lock:
            if body.get("Id"):
                row = self._update(entity, body)
            elif entity == "Invoice":
                row = self._create_invoice(body)
            elif entity == "Item":
                row = self._create_item(body)
            elif entity == "Attachable":
                row = self._create_attachable(body)
            elif entity == "CreditMemo":  # waivers: sandbox/qbo_credit.py
                row = create_credit_memo(self, body, _Fail)
            elif entity == "Payment":
                row = create_payment(self, body, _Fail)
            else:
                raise _Fail(400, "4000", "Unsupported Operation", f"create {entity}")
            self.counters.applied()
            return dict(row)

    def _update(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        row = self.rows[entity].get(str(body["Id"]))
        if row is None:
            raise _Fail(400, "610", "Object Not Found", f"{entity} {body['Id']}")
        if str(body.get("SyncToken")) != str(row.get("SyncToken")):
            raise _Fail(400, "5010", "Stale Object Error",
                        "Stale Object Error : You and Demo User were working on this at the "
                        "same time. Demo User finished before you did, so your work was not "
                        "saved.")
        kept: dict[str, Any] = {k: row[k] for k in ("Id", "MetaData", "domain") if k in row}
        ignored = {"SyncToken", "TotalAmt", "Balance", "HomeBalance", "MetaData", "sparse",
                   "domain"}
        changes = {k: v for k, v in body.items() if k not in ignored and v not in ("", None)}
        if entity == "Invoice" and "Line" in changes:
            changes["Line"] = self._lines(changes["Line"])
        if body.get("sparse"):
            row.update(changes)
        else:  # a full update replaces every writable field
            row.clear()
            row.update({**changes, **kept, "SyncToken": body["SyncToken"], "sparse": False})
            row.setdefault("CurrencyRef", {"value": "USD"})
        if entity == "Invoice":
            self._check_customer(row)
            self._recompute(row)
        self._touch(row)
        return row

    def _lines(self, lines: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for n, line in enumerate((ln for ln in lines
                                  if ln.get("DetailType") != "SubTotalLineDetail"), start=1):
            if line.get("DetailType") not in ("SalesItemLineDetail", "DescriptionOnly"):
                raise _Fail(400, "2020", "Required param missing, need to supply the required "
                            "value for the API", "Required parameter Line.DetailType is missing "
                            "in the request")
            if line.get("DetailType") == "SalesItemLineDetail":
                ref = (line.get("SalesItemLineDetail") or {}).get("ItemRef") or {}
                if str(ref.get("value", "")) not in self.rows["Item"]:
                    raise _Fail(400, "2500", "Invalid Reference Id",
                                f"Invalid Reference Id : Item assigned to this transaction has "
                                f"been deleted or does not exist ({ref.get('value')})")
            clean = {k: v for k, v in line.items() if v not in ("", None)}
            clean["Id"] = str(n)
            clean["LineNum"] = n
            clean["Amount"] = amount(to_decimal(line.get("Amount", 0)))
            out.append(clean)
        if not out:
            raise _Fail(400, "2020", "Required param missing, need to supply the required "
                        "value for the API", "Required parameter Line is missing in the request")
        return out

    def _check_customer(self, inv: dict[str, Any]) -> dict[str, Any]:
        ref = inv.get("CustomerRef") or {}
        customer = self.rows["Customer"].get(str(ref.get("value", "")))
        if customer is None:
            raise _Fail(400, "2500", "Invalid Reference Id",
                        "Invalid Reference Id : Customer does not exist")
        return customer

    def _create_invoice(self, body: dict[str, Any]) -> dict[str, Any]:
        row = {k: v for k, v in body.items() if v not in ("", None, [], {})}
        for computed in ("TotalAmt", "Balance", "HomeBalance", "sparse", "SyncToken"):
            row.pop(computed, None)
        customer = self._check_customer(row)
        iid = self._new_id()
        today = self.clock().astimezone(COMPANY_TZ).date()
        row["Line"] = self._lines(body.get("Line") or [])
        row.update({"Id": iid, "SyncToken": "0", "domain": "QBO", "sparse": False})
        row.setdefault("DocNumber", str(int(iid)))
        row.setdefault("TxnDate", today.isoformat())
        row.setdefault("DueDate", row["TxnDate"])
        row.setdefault("CurrencyRef", customer.get("CurrencyRef", {"value": "USD"}))
        row["CustomerRef"] = {"value": customer["Id"], "name": customer["DisplayName"]}
        if "BillEmail" not in row and "PrimaryEmailAddr" in customer:
            row["BillEmail"] = {"Address": customer["PrimaryEmailAddr"]["Address"]}
        row.setdefault("EmailStatus", "NotSet")
        row.setdefault("PrivateNote", "")
        stamp = qbo_time(self.clock())
        row["MetaData"] = {"CreateTime": stamp, "LastUpdatedTime": stamp}
        self._paid[iid] = Decimal(0)
        self._recompute(row)
        self.rows["Invoice"][iid] = row
        return row

    def _create_item(self, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("Name") or "").strip()
        if not name:
            raise _Fail(400, "2020", "Required param missing, need to supply the required "
                        "value for the API", "Required parameter Name is missing")
        if any(i["Name"].lower() == name.lower() for i in self.rows["Item"].values()):
            raise _Fail(400, "6240", "Duplicate Name Exists Error",
                        f"The name supplied already exists. : {name}")
        account = str((body.get("IncomeAccountRef") or {}).get("value", ""))
        if body.get("Type", "Service") == "Service" and account not in self.rows["Account"]:
            raise _Fail(400, "2020", "Required param missing, need to supply the required "
                        "value for the API", "Required parameter IncomeAccountRef is missing")
        iid = self._new_id()
        stamp = qbo_time(self.clock())
        row = {**{k: v for k, v in body.items() if v not in ("", None)}, "Id": iid,
               "SyncToken": "0", "FullyQualifiedName": name, "Active": True, "domain": "QBO",
               "sparse": False, "Type": body.get("Type", "Service"),
               "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}}
        self.rows["Item"][iid] = row
        return row

    def _create_attachable(self, body: dict[str, Any]) -> dict[str, Any]:
        refs = body.get("AttachableRef") or []
        if not body.get("Note") and not body.get("FileName"):
            raise _Fail(400, "2020", "Required param missing, need to supply the required "
                        "value for the API", "Required parameter Note is missing")
        for ref in refs:
            entity = ref.get("EntityRef") or {}
            table = self.rows.get(str(entity.get("type", "")))
            if table is None or str(entity.get("value", "")) not in table:
                raise _Fail(400, "2500", "Invalid Reference Id",
                            f"Invalid Reference Id : {entity.get('type')} "
                            f"{entity.get('value')} does not exist")
        aid = self._new_id()
        stamp = qbo_time(self.clock())
        row = {**{k: v for k, v in body.items() if v not in ("", None)}, "Id": aid,
               "SyncToken": "0", "domain": "QBO", "sparse": False,
               "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}}
        self.rows["Attachable"][aid] = row
        return row

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

    def _batch(self, req: Request) -> dict[str, Any]:
        items = (req.json() or {}).get("BatchItemRequest") or []
        if len(items) > 30:
            raise _Fail(400, "4000", "Batch size exceeded",
                        "Batch request may contain at most 30 operations")
        answers: list[dict[str, Any]] = []
        for item in items:
            bid = str(item.get("bId", ""))
            try:
                if "Query" in item:
                    answers.append({"bId": bid, "QueryResponse": self._query(item["Query"])})
                    continue
                operation = item.get("operation", "create")
                entity = next((e for e in ENTITIES if e in item), None)
                if entity is None or operation not in ("create", "update"):
                    raise _Fail(400, "4000", "Unsupported Operation", f"batch {operation}")
                body = dict(item[entity])
                if operation == "create":
                    body.pop("Id", None)
                answers.append({"bId": bid, entity: self._write(entity, body, None)})
            except _Fail as exc:
                answers.append({"bId": bid, "Fault": fault_body(exc.code, exc.message,
                                                                exc.detail, exc.kind)})
        return {"BatchItemResponse": answers}
