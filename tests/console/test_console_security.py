"""The console's security model: sign-in by one-time link, cookie flags, CSRF on every POST,
the Content-Security-Policy, and one business never seeing another's companies."""

from __future__ import annotations

import re
import secrets

import pytest
from starlette.routing import Mount, Route

from ar_sync.console.app import build_app
from ar_sync.console.config import ConsoleConfig
from ar_sync.console.security import SessionCodec
from ar_sync.console.signin import LocalSignIn
from ar_sync.messages.sending import MailSetup

from .conftest import A, B, client, no_platform

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def company_routes(cfg: ConsoleConfig) -> list[tuple[str, str]]:
    """(method, path) of every company route the app has, with B's ids filled in."""
    out = []
    for route in build_app(cfg).routes:
        if not isinstance(route, Route) or "{tenant}" not in route.path:
            continue
        path = route.path.replace("{tenant}", B.id).replace("{customer}", "b1")
        out += [(m, path) for m in sorted(route.methods or []) if m != "HEAD"]
    return out


def test_every_page_and_action_of_another_business_answers_404(cfg, store) -> None:
    routes = company_routes(cfg)
    assert {m for m, _ in routes} == {"GET", "POST"} and len(routes) >= 15
    with client(cfg, "business-a") as a, client(cfg, "business-b") as b:
        token = CSRF.search(a.get("/").text).group(1)
        before = (store.list_pauses(B.id), store.contacts(B.id), store.rules_versions(B.id),
                  store.get_connection(B.id))
        for method, path in routes:
            answer = a.request(method, path, data={"csrf": token, "text": "x", "reason":
                                                  "dispute", "version": "1", "fee": "k"})
            assert answer.status_code == 404, (method, path, answer.status_code)
            assert "Bravo" not in answer.text and "Customer b1" not in answer.text
        assert (store.list_pauses(B.id), store.contacts(B.id), store.rules_versions(B.id),
                store.get_connection(B.id)) == before
        assert "Bravo Ltd" not in a.get("/").text and "Alpha Ltd" in a.get("/").text
        # B itself sees its pages: the 404s above are about whose company it is
        assert b.get(f"/c/{B.id}/customers").status_code == 200
        assert "Customer b1" in b.get(f"/c/{B.id}/customers").text


def test_without_signing_in_no_page_shows_company_data(cfg) -> None:
    with client(cfg) as anonymous:
        for method, path in [("GET", "/"), *company_routes(cfg)]:
            path = path.replace(B.id, A.id).replace("b1", "a1")
            answer = anonymous.request(method, path)
            assert answer.status_code in (401, 403), (method, path)
            assert "Alpha" not in answer.text and "Customer a1" not in answer.text
        assert "ar-sync console" in anonymous.get("/").text  # says how to sign in


def test_a_login_link_works_once(cfg) -> None:
    assert isinstance(cfg.signin, LocalSignIn)
    token = cfg.signin.issue()
    with client(cfg) as first, client(cfg) as second:
        assert first.get(f"/login/{token}").status_code == 303
        assert first.get("/").status_code == 200
        again = second.get(f"/login/{token}")
        assert again.status_code == 403 and "used already" in again.text
        assert second.get("/").status_code == 401


def test_cookie_flags_and_headers(cfg) -> None:
    with client(cfg) as c:
        answer = c.get(f"/login/{cfg.signin.issue()}")  # type: ignore[attr-defined]
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # plain http on loopback: a browser would drop it
        page = c.get("/")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1
                                                                                ].split(";")[0]
        assert "frame-ancestors 'none'" in csp and page.headers["x-frame-options"] == "DENY"
        assert "<script>" not in page.text and " on" not in re.sub(r"\s+", " ", "".join(
            re.findall(r"<[^>]+>", page.text))).replace(" one", "")  # no inline handlers
    secure = SessionCodec(b"k" * 32, secure=True).header({"business": "x"})
    assert secure.startswith("__Host-ar-sync-console=") and "; Secure" in secure


def test_a_tampered_or_expired_session_is_no_session() -> None:
    codec = SessionCodec(b"k" * 32, secure=False)
    value = codec.dump({"business": "a"}, now=1000)
    assert codec.load(value, now=1001) == {"business": "a"}
    body, _, mac = value.rpartition(".")
    forged = SessionCodec(b"other", secure=False).dump({"business": "b"}, now=1000)
    assert codec.load(forged, now=1001) == {}
    assert codec.load(body + "." + mac[::-1], now=1001) == {}
    assert codec.load(value, now=1000 + codec.max_age + 1) == {}


@pytest.mark.parametrize("sent", [None, "wrong"])
def test_every_post_needs_the_session_csrf_token(cfg, store, sent) -> None:
    routes = [(m, p.replace(B.id, A.id).replace("b1", "a1"))
              for m, p in company_routes(cfg) if m == "POST"]
    routes += [("POST", "/connect/quickbooks"), ("POST", "/logout")]
    with client(cfg, "business-a") as a:
        before = (store.list_pauses(A.id), store.rules_versions(A.id), store.get_connection(A.id))
        for method, path in routes:
            data = {"reason": "dispute", "text": "x", "when": "today"}
            if sent:
                data["csrf"] = sent
            answer = a.request(method, path, data=data)
            assert answer.status_code == 403, (path, answer.status_code)
        assert (store.list_pauses(A.id), store.rules_versions(A.id),
                store.get_connection(A.id)) == before
        token = CSRF.search(a.get("/").text).group(1)
        ok = a.post(f"/c/{A.id}/customers/a1/pause", data={"csrf": token, "reason": "dispute"})
        assert ok.status_code == 303 and len(store.list_pauses(A.id)) == 1
        htmx = a.post(f"/c/{A.id}/customers/a1/resume", headers={"X-CSRF-Token": token})
        assert htmx.status_code == 303 and store.list_pauses(A.id)[0].resumed_on is not None


def test_routes_live_under_the_public_urls_path(store) -> None:
    cfg = ConsoleConfig(store=store, settings_for=no_platform, mail=MailSetup,
                        public_url="https://api.example.com/console",
                        session_key=secrets.token_bytes(32), signin=LocalSignIn("business-a"))
    app = build_app(cfg)
    assert [type(r) for r in app.routes] == [Mount] and app.routes[0].path == "/console"
    assert cfg.secure
