"""Several QuickBooks companies (realms) behind one emulator URL, as behind Intuit's one API.

Each company is its own QuickBooksEmulator (its own realm, edition and tokens: a QuickBooks
token is good for one realm). API calls go to the realm in the path; the token endpoint to the
company that issued the code or refresh token; a consent (`/connect/oauth2`) grants the next
company in turn, as a person picking a company on Intuit's consent screen would.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIEnvironment

from ar_sync.sync.connector import PlatformSettings
from ar_sync_emulators.base import Effect, EmulatorServer
from ar_sync_emulators.quickbooks.links import realm_of
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator


class QuickBooksCompanies:
    """A WSGI front for `companies` (distinct realm ids, one app registration)."""

    def __init__(self, companies: Sequence[QuickBooksEmulator]) -> None:
        if len({c.realm_id for c in companies}) != len(companies) or not companies:
            raise ValueError("companies need distinct realm ids")
        self.companies = list(companies)
        self._turn = 0
        self._lock = threading.Lock()
        self.url = ""

    def serve(self, port: int = 0) -> EmulatorServer:
        def remember(url: str) -> None:
            self.url = url
            for company in self.companies:
                company.url = url

        return EmulatorServer(self, port=port, on_start=remember)

    def settings(self, redirect_uri: str = "http://127.0.0.1:8765/callback") -> PlatformSettings:
        return self.companies[0].settings(redirect_uri=redirect_uri)

    def effects(self) -> list[Effect]:
        return [e for company in self.companies for e in company.effects()]

    def _pick(self, environ: WSGIEnvironment) -> QuickBooksEmulator:
        path = str(environ.get("PATH_INFO", ""))
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[0] == "v3" and parts[1] == "company":
            return next((c for c in self.companies if c.realm_id == parts[2]),
                        self.companies[0])
        realm = realm_of(path)  # a customer's payment link (qbo_links.py)
        if realm is not None:
            return next((c for c in self.companies if c.realm_id == realm), self.companies[0])
        if path.rstrip("/") == "/connect/oauth2":
            with self._lock:
                company = self.companies[self._turn % len(self.companies)]
                self._turn += 1
                return company
        if path.startswith("/oauth2/"):
            return self._token_owner(environ)
        return self.companies[0]

    def _token_owner(self, environ: WSGIEnvironment) -> QuickBooksEmulator:
        """The company that issued the code or token in the form (read, then put back)."""
        size = int(environ.get("CONTENT_LENGTH") or 0)
        stream = environ["wsgi.input"]
        body = stream.read(size) if size else b""
        environ["wsgi.input"] = io.BytesIO(body)
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        text = body.decode(errors="replace")
        for company in self.companies:
            if (form.get("code") in company._codes
                    or form.get("refresh_token") in company._refresh
                    or any(token in text for token in company._refresh)):
                return company
        return self.companies[0]

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        return self._pick(environ)(environ, start_response)
