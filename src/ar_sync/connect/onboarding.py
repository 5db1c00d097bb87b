"""Connecting a company: the OAuth authorization-code flow, shared by Lambda and the CLI.

`start_connect` records a single-use `state` (with a PKCE verifier) bound to the business that
asked; `finish_connect` takes that state exactly once and binds every company the user granted
to that same business. A callback with an unknown, replayed or expired state stores nothing,
and a company already bound to another business is refused, never moved: nobody can attach
their accounting file to someone else's ar-sync account (or take over theirs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from ar_sync.connect.tokens import new_state, pkce_pair
from ar_sync.connect.webhooks import connection_id
from ar_sync.sync.connector import (
    AuthorizedCompany,
    Connection,
    PlatformSettings,
    TokenSet,
    grant_token_id,
    load_plugin,
)
from ar_sync.sync.store import PendingAuth, Store

SettingsSource = PlatformSettings | Callable[[str], PlatformSettings]


class OnboardingError(Exception):
    """The connect flow cannot complete; the message is safe to show (no secrets)."""


class OAuthStateError(OnboardingError):
    """Unknown, replayed or expired `state`, or a callback without one (HTTP 400)."""


class TooManyPendingError(OnboardingError):
    """The business already has the maximum of connection flows pending (HTTP 429)."""


class AuthorizationDeniedError(OnboardingError):
    """The user declined, or the platform sent an error instead of a code (HTTP 400)."""


class TenantBindingError(OnboardingError):
    """The company is already connected to another business (HTTP 403)."""


def start_connect(store: Store, platform: str, business_id: str, settings: PlatformSettings,
                  *, now: datetime, ttl_seconds: float = 600, state: str | None = None,
                  max_pending: int | None = None) -> str:
    """The platform's authorization URL; remembers the flow under a single-use state (fresh
    unless the caller made one, e.g. to bind it to a browser cookie first). At most
    `max_pending` unexpired flows per business."""
    if not business_id:
        raise OnboardingError("a business id is required to connect a company")
    plugin = load_plugin(platform)
    state = state or new_state()
    verifier, challenge = pkce_pair()
    stored = store.put_pending_auth(
        PendingAuth(state=state, platform=platform, business_id=business_id,
                    code_verifier=verifier, expires_at=now + timedelta(seconds=ttl_seconds)),
        now=now, limit_per_business=max_pending)
    if not stored:
        raise TooManyPendingError(
            f"{max_pending} connections are already waiting for consent: finish one, or wait "
            f"{int(ttl_seconds // 60)} minutes")
    return plugin.authorization_url(settings, state=state, code_challenge=challenge)


def _bindable(store: Store, platform: str, business_id: str,
              companies: Sequence[AuthorizedCompany]) -> list[Connection | None]:
    """The existing connection of each company; refuses if any belongs to another business."""
    existing = [store.get_connection(connection_id(platform, c.external_id)) for c in companies]
    taken = [c.external_id for c, conn in zip(companies, existing, strict=True)
             if conn is not None and conn.business_id != business_id]
    if taken:
        raise TenantBindingError(
            f"{len(taken)} of the companies granted is already connected to another account")
    return existing


def _save_tokens(store: Store, cid: str, tokens: TokenSet) -> None:
    for _ in range(3):  # a refresh by a running sync may race a reconnect: write over it
        current = store.load_tokens(cid)
        if store.save_tokens(cid, tokens, expected_version=-1 if current is None
                             else current.version):
            return
    raise OnboardingError("could not store the new tokens (concurrent updates); try again")


def finish_connect(store: Store, params: Mapping[str, str], settings: SettingsSource, *,
                   now: datetime, business_id: str | None = None) -> list[Connection]:
    """Complete the flow from the callback's query parameters; one Connection per company."""
    state = params.get("state")
    if not state:
        raise OAuthStateError("the callback carries no state")
    pending = store.take_pending_auth(state, now=now)  # single use from here on
    if pending is None:
        raise OAuthStateError("unknown, used or expired state: start the connection again")
    if business_id is not None and business_id != pending.business_id:
        raise TenantBindingError("this connection was started by another account")
    if params.get("error") or not params.get("code"):
        raise AuthorizationDeniedError(
            f"the platform did not authorise the connection ({params.get('error', 'no code')})")
    resolved = settings(pending.platform) if callable(settings) else settings
    plugin = load_plugin(pending.platform)
    tokens, companies = plugin.exchange_code(resolved, code=params["code"],
                                             code_verifier=pending.code_verifier,
                                             callback_params=params)
    if not companies:
        raise AuthorizationDeniedError("no company was granted in the consent screen")
    existing = _bindable(store, pending.platform, pending.business_id, companies)
    connections = []
    saved: set[str] = set()
    for company, old in zip(companies, existing, strict=True):
        cid = connection_id(pending.platform, company.external_id)
        # One token row per consent when its companies share a rotating token set (Xero):
        # copies per company would be invalid_grant after the first refresh. A company that
        # was connected under an older consent simply moves to the new row.
        token_id = grant_token_id(pending.platform, company.grant) if company.grant else None
        key = token_id or cid
        if key not in saved:  # tokens first: a listed connection can always run
            _save_tokens(store, key, tokens)
            saved.add(key)
        connection = Connection(
            id=cid, platform=pending.platform, external_id=company.external_id,
            name=company.name or (old.name if old else ""), business_id=pending.business_id,
            rules=old.rules if old else "default", token_id=token_id,
            created_at=old.created_at if old and old.created_at else now)
        store.save_connection(connection)
        connections.append(connection)
    return connections
