"""Escalation webhooks cannot be pointed at ar-sync's own network (issue 20, SSRF).

The URLs of the issue are refused by the rules schema (with file and line) or, where only a
DNS answer shows the problem, by the admin API and again at send time; the sender connects
to the address it checked (no DNS-rebinding window), follows no redirect, keeps a total
deadline against a drip-feeding receiver, and the run report says only a short category of
what the receiver answered.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ar_sync.delivery.notify import WebhookSender
from ar_sync.delivery.webhook_http import unsafe_targets
from ar_sync.domain.webhook_urls import IPAddress, UnsafeUrlError, parse_webhook_url
from ar_sync.messages.sending import WebhookRefusedError, WebhookRetryableError
from ar_sync.rules.policy import PolicyError, parse_policy

SECRET = "whsec-test-not-a-real-secret"
ISSUE_URLS = [
    "http://localhost@169.254.169.254/latest/meta-data/",
    "https://10.0.0.7/hook",
    "http://localhost:9001/2018-06-01/runtime/invocation/next",
    "https://127.0.0.1.nip.io/hook",
    "https://[::ffff:169.254.169.254]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://100.64.0.1/hook",
    "https://2130706433/",
    "https://user:pw@hooks.example.com/x",
    "ftp://hooks.example.com/x",
    "https://localhost/x",
]


def _rules(url: str) -> str:
    return ("reminders:\n  - {name: r1, days: 1}\nescalations:\n  - name: agency\n"
            "    when: {days_overdue: 60}\n    to: {agency: Collectors}\n"
            f"    notify:\n      webhook: [\"{url}\"]\n")


@pytest.mark.parametrize("url", ISSUE_URLS)
def test_rules_refuse_internal_and_disguised_urls_with_their_line(url: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(_rules(url), "hooks.yaml")
    (issue,) = caught.value.issues
    assert issue.file == "hooks.yaml" and issue.line == 8 and "webhook" in issue.path


def test_rules_accept_a_public_https_receiver() -> None:
    policy = parse_policy(_rules("https://hooks.slack.com/services/T0/B0/x"), "ok.yaml")
    assert policy.escalations[0].notify is not None


def _fake_dns(table: dict[str, list[str]]) -> Any:
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[IPAddress]:
        calls.append(host)
        return [ipaddress.ip_address(a) for a in table.get(host, [])]
    resolver.calls = calls  # type: ignore[attr-defined]
    return resolver


def test_a_name_that_resolves_inside_is_refused_before_it_is_stored() -> None:
    dns = _fake_dns({"hooks.attacker.example": ["93.184.215.14", "10.1.2.3"],
                     "meta.attacker.example": ["fd00::1"],
                     "ok.example.com": ["93.184.215.14"]})
    problems = unsafe_targets(["https://hooks.attacker.example/x", "https://meta.attacker.example/",
                               "https://ok.example.com/x", "https://nowhere.example.com/"],
                              resolver=dns)
    assert len(problems) == 3
    assert "10.1.2.3 is a private network address" in problems[0]
    assert "fd00::1" in problems[1] and "does not resolve" in problems[2]


# ----------------------------------------------------------------------------- at send time


class Receiver:
    """A local receiver: answers `status` (and Location for redirects), or drip-feeds."""

    def __init__(self, status: int = 200, location: str | None = None,
                 drip: float | None = None) -> None:
        self.hits: list[dict[str, str]] = []
        self.dripped = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.hits.append({k.lower(): v for k, v in self.headers.items()})
                if drip is not None:  # one byte of a long header every `drip` seconds
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    for _ in range(40):
                        time.sleep(drip)
                        try:
                            self.wfile.write(b"a")
                            self.wfile.flush()
                        except OSError:
                            return
                        outer.dripped += 1
                    self.wfile.write(b"\r\nContent-Length: 0\r\n\r\n")
                    return
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                body = b"internal secret body"
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def test_a_loopback_receiver_needs_the_explicit_development_setting(receiver: Receiver) -> None:
    with pytest.raises(WebhookRefusedError, match="address not allowed"):
        WebhookSender(SECRET).post(receiver.url, {"event": "x"}, delivery="k")
    assert receiver.hits == []
    assert WebhookSender(SECRET, allow_loopback=True).post(
        receiver.url, {"event": "x"}, delivery="k") == "accepted"


def test_an_address_checked_at_send_time_is_the_one_connected_to(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The host resolves to a public address when checked and to an internal one after:
    the sender resolves once per attempt and connects to what it checked."""
    answers = iter([["93.184.215.14"], ["169.254.169.254"]] * 4)
    lookups: list[str] = []

    def rebinding(host: str, port: int) -> list[IPAddress]:
        lookups.append(host)
        return [ipaddress.ip_address(a) for a in next(answers)]

    connected: list[tuple[str, int]] = []

    def fake_connect(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        connected.append(address)
        raise ConnectionRefusedError("offline test")

    monkeypatch.setattr(socket, "create_connection", fake_connect)
    sender = WebhookSender(SECRET, resolver=rebinding, attempts=2, sleep=lambda _s: None)
    with pytest.raises((WebhookRetryableError, WebhookRefusedError)):
        sender.post("https://rebind.attacker.example/x", {"event": "x"}, delivery="k")
    assert connected == [("93.184.215.14", 443)]  # the checked address, never 169.254...
    assert lookups == ["rebind.attacker.example"] * 2  # one lookup per attempt, no other


def test_an_internal_answer_is_refused_without_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "create_connection",
                        lambda *a, **k: pytest.fail("must not connect"))
    sender = WebhookSender(SECRET, resolver=_fake_dns({"h.attacker.example": ["127.0.0.1"]}))
    with pytest.raises(WebhookRefusedError, match="loopback"):
        sender.post("https://h.attacker.example/", {"event": "x"}, delivery="k")


def test_redirects_are_not_followed() -> None:
    with Receiver() as inside, Receiver(302, location=Receiver().url) as first:
        first_hop = Receiver(307, location=inside.url)
        with first_hop:
            for hop in (first, first_hop):
                with pytest.raises(WebhookRefusedError, match="redirect"):
                    WebhookSender(SECRET, allow_loopback=True).post(hop.url, {"event": "x"},
                                                                    delivery="k")
            assert len(first.hits) == 1 and len(first_hop.hits) == 1 and inside.hits == []


def test_a_drip_feeding_receiver_cannot_hold_the_run() -> None:
    """Each byte comes well inside the per-read timeout; the total deadline still ends it
    (before the fix the POST waited for all 40 bytes, then reported success)."""
    with Receiver(drip=0.2) as slow:
        sender = WebhookSender(SECRET, allow_loopback=True, timeout=1.0, deadline=1.0,
                               attempts=1)
        with pytest.raises(WebhookRetryableError, match="timed out"):
            sender.post(slow.url, {"event": "x"}, delivery="k")
        assert slow.dripped < 40


def test_the_report_gets_a_category_not_the_receivers_answer() -> None:
    with Receiver(503) as failing, Receiver(404) as missing:
        sender = WebhookSender(SECRET, allow_loopback=True, attempts=1)
        with pytest.raises(WebhookRetryableError) as retry:
            sender.post(failing.url, {"event": "x"}, delivery="k")
        with pytest.raises(WebhookRefusedError) as refused:
            sender.post(missing.url, {"event": "x"}, delivery="k")
    for text in (str(retry.value), str(refused.value)):
        assert "503" not in text and "404" not in text and "secret" not in text


def test_the_sender_never_prints_its_secret() -> None:
    sender = WebhookSender(SECRET)
    assert SECRET not in repr(sender) and SECRET not in str(sender)


def test_parse_refuses_what_the_schema_refuses() -> None:
    for url in ISSUE_URLS:
        with pytest.raises(UnsafeUrlError):
            parse_webhook_url(url)
