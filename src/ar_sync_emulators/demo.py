"""The end-to-end demo: both emulators, the real OAuth flow, one sync run as of a fixed date.

Everything runs locally: the QuickBooks and Xero emulators serve the seeded demo company on
127.0.0.1, the connectors talk to them through the real SDKs, and the store is a SQLite file.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import requests

from ar_sync.connect.onboarding import finish_connect, start_connect
from ar_sync.delivery.transports import SmtpMailer
from ar_sync.messages.mime import Sender
from ar_sync.messages.sending import MailSetup
from ar_sync.rules.policy import Policy, load_policy, parse_policy, shipped_rule_sets
from ar_sync.sync.connector import Connection, PlatformSettings
from ar_sync_emulators.base import Effect, RateLimiter
from ar_sync_emulators.books import DEMO_TODAY, demo_company
from ar_sync_emulators.persist import persisted
from ar_sync_emulators.smtp_sink import SinkMessage, SmtpSink

__all__ = ["DEMO_NOW", "DEMO_TODAY", "DemoResult", "Sandbox", "run_demo", "running_sandbox"]
from ar_sync.sync.run import RunReport, run_tenant
from ar_sync.sync.store import Store
from ar_sync_emulators.quickbooks.companies import real_company
from ar_sync_emulators.quickbooks.companies_server import QuickBooksCompanies
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator
from ar_sync_emulators.quickbooks.shapes import seed_rows
from ar_sync_emulators.xero.server import XeroEmulator

DEMO_BUSINESS = "demo-business"
REDIRECT_URI = "http://127.0.0.1:8765/callback"
UK_REALM = "9341453000000044"  # the demo's UK VAT company
DEMO_NOW = datetime.combine(DEMO_TODAY, time(15, 0), tzinfo=UTC)
DEMO_COMPANY = "Demo Supplies Ltd"
DEMO_SENDER = Sender(f"{DEMO_COMPANY} <accounts@demo-supplies.example>",
                     "accounts@demo-supplies.example")
# The four demo companies are four businesses: each its own name (what the platform calls
# it), books, sender address, time zone, holidays and so locale.
US_NAME = "Bluebird Office Supply Inc."
XERO_NAME = "Harbour & Vine Trading LLC"


@dataclass(frozen=True)
class Business:
    """How one demo company writes to its customers."""

    name: str
    sender: Sender
    calendar: str  # a rules-file `calendar:` mapping, as YAML flow text


BUSINESSES = {
    US_NAME: "{timezone: America/New_York, holidays: US}",
    XERO_NAME: "{timezone: America/Los_Angeles, holidays: US-CA}",
    "Thames Joinery Ltd": "{timezone: Europe/London, holidays: GB-ENG}",
    "Kowhai Trades Ltd": "{timezone: Pacific/Auckland, holidays: NZ}",
}


def business(name: str) -> Business:
    """The demo business called `name` (an unknown name gets a plain US setup)."""
    slug = "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())
    address = f"accounts@{slug or 'demo'}.example"
    calendar = BUSINESSES.get(name, "{timezone: America/New_York, holidays: US}")
    return Business(name, Sender(f"{name} <{address}>", address), calendar)


def company_policy(rules: str, company: str) -> Policy:
    """`rules` for one demo business: its name and, for a shipped rule set, its own calendar
    (time zone, holidays and so the locale customers read) and a thank-you when a reminded
    invoice is paid (`on_paid`)."""
    policy = load_policy(rules)
    if rules in shipped_rule_sets():
        overlay = (f"extends: {rules}\ncompany_name: {json.dumps(policy.company_name or company)}"
                   f"\ncalendar: {business(company).calendar}\non_paid: {{}}\n")
        return parse_policy(overlay, f"{company}.yaml")
    if not policy.company_name:
        policy = policy.model_copy(update={"company_name": company})
    return policy


@dataclass
class DemoResult:
    reports: list[RunReport] = field(default_factory=list)
    second_reports: list[RunReport] = field(default_factory=list)
    effects: dict[str, Counter[str]] = field(default_factory=dict)  # platform -> kind counts
    duplicates: int = 0
    messages: list[SinkMessage] = field(default_factory=list)  # what the local SMTP sink kept


@dataclass
class Sandbox:
    """Both emulators running, seeded, with the settings that point connectors at them."""

    quickbooks: QuickBooksEmulator
    xero: XeroEmulator
    settings: dict[str, PlatformSettings]
    quickbooks_uk: QuickBooksEmulator | None = None  # a second realm behind the same URL

    def effects(self, platform: str) -> list[Effect]:
        if platform == "quickbooks":
            return [e for emu in (self.quickbooks, self.quickbooks_uk) if emu is not None
                    for e in emu.effects()]
        return self.xero.effects()

    def consents(self, platform: str) -> int:
        """How many consents connect every company (one QuickBooks realm per consent)."""
        return 2 if platform == "quickbooks" and self.quickbooks_uk is not None else 1


@contextmanager
def running_sandbox(seed: int = 7, *, demo_limits: bool = True,
                    ports: Mapping[str, int] | None = None,
                    state: Path | None = None,
                    clock: Callable[[], datetime] | None = None) -> Iterator[Sandbox]:
    """Start both emulators with the demo company. `demo_limits` lifts the per-minute limits
    (QuickBooks 500 and 40 batch requests, Xero 60) so the demo finishes in seconds instead
    of minutes of waiting on Retry-After; the connectors honour the real limits either way
    (see the connector tests). `ports` ({"quickbooks": n, "xero": m}, 0 = any free port);
    `state`: a folder the emulators' state is restored from and kept saved in
    (ar_sync_emulators/persist.py); `clock`: the emulators' time (a demo that runs forward
    day by day)."""
    ports = ports or {}
    company = demo_company(seed)
    qbo = (QuickBooksEmulator(clock, rate_per_minute=100_000) if demo_limits
           else QuickBooksEmulator(clock))
    xero = (XeroEmulator(clock, per_minute=100_000, per_day=1_000_000, concurrent=50)
            if demo_limits else XeroEmulator(clock))
    qbo.seed_rows(US_NAME, seed_rows(company, qbo.clock()))
    # A UK VAT company as a second realm (quickbooks/companies.py): tax-inclusive/exclusive,
    # discounts, a bundle, a EUR customer, part-paid invoices, a customer without an e-mail.
    qbo_uk = QuickBooksEmulator(clock, realm_id=UK_REALM, edition="UK",
                                rate_per_minute=100_000 if demo_limits else 500)
    qbo_uk.seed_rows(*real_company("UK", today=DEMO_TODAY))
    if demo_limits:  # /batch is limited on its own (40 a minute): lifted for the demo too
        for emu in (qbo, qbo_uk):
            emu.batch_limiter = RateLimiter(per_minute=100_000, clock=emu.clock)
    # another business with its own customers and invoices
    xero.seed(demo_company(seed + 1), name=XERO_NAME)
    # A real-looking second organisation under the same Xero consent (one shared token row):
    # NZ GST, tax-inclusive/exclusive, discounts, tracking, AUD, part-paid, a period lock date.
    xero.seed_nz_gst(today=DEMO_TODAY)
    with ExitStack() as stack:
        if state is not None:
            stack.enter_context(persisted(state, {"quickbooks": qbo, "quickbooks-uk": qbo_uk,
                                                  "xero": xero}))
        stack.enter_context(QuickBooksCompanies([qbo, qbo_uk]).serve(
            port=ports.get("quickbooks", 0)))
        stack.enter_context(xero.serve(port=ports.get("xero", 0)))
        yield Sandbox(qbo, xero, {"quickbooks": qbo.settings(redirect_uri=REDIRECT_URI),
                                  "xero": xero.settings(redirect_uri=REDIRECT_URI)}, qbo_uk)


def connect_through_oauth(store: Store, platform: str, settings: PlatformSettings,
                          *, business_id: str = DEMO_BUSINESS,
                          now: datetime | None = None) -> list[Connection]:
    """The real authorization-code flow, with the browser's consent step done by following the
    emulator's redirect: authorize URL -> 302 to the redirect URI with code and state."""
    now = now or datetime.now(UTC)
    url = start_connect(store, platform, business_id, settings, now=now)
    answer = requests.get(url, allow_redirects=False, timeout=10)
    location = answer.headers.get("Location", "")
    if answer.status_code not in (302, 303) or not location.startswith(settings.redirect_uri):
        raise RuntimeError(f"{platform} consent did not redirect back: {answer.status_code}")
    params = dict(parse_qsl(urlsplit(location).query))
    return finish_connect(store, params, settings, now=now, business_id=business_id)


def take_card_payments(sandbox: Sandbox) -> None:
    """The demo's QuickBooks companies take card payments online (QuickBooks Payments), so
    each invoice has an `InvoiceLink` customers can pay at, as Xero's online invoices do."""
    for emu in (sandbox.quickbooks, sandbox.quickbooks_uk):
        for row in emu.rows["Invoice"].values() if emu is not None else ():
            row["AllowOnlineCreditCardPayment"] = True


def connect_all(store: Store, sandbox: Sandbox, now: datetime | None = None,
                ) -> list[Connection]:
    """Every demo company, through the real OAuth flow: QuickBooks (two realms), then Xero."""
    return [c for platform in ("quickbooks", "xero")
            for _ in range(sandbox.consents(platform))
            for c in connect_through_oauth(store, platform, sandbox.settings[platform],
                                           now=now)]


def run_demo(store: Store, *, seed: int = 7, rules: str = "email") -> DemoResult:
    """Connect the four demo businesses, run the rules as of DEMO_TODAY, run again (a no-op).
    Customer e-mails go to a local SMTP sink (ar_sync_emulators.smtp_sink) that keeps them,
    each from its own business's address."""
    result = DemoResult()
    with running_sandbox(seed) as sandbox, SmtpSink().serve() as sink:
        take_card_payments(sandbox)
        # connected on the demo's day: that is its go-live date (a later one holds writes)
        for connection in connect_all(store, sandbox, DEMO_NOW):
            firm = business(connection.name)
            policy = company_policy(rules, connection.name)
            mail = MailSetup(sender=firm.sender, mailer=SmtpMailer(sink.settings()))
            for reports in (result.reports, result.second_reports):
                reports.append(run_tenant(store, connection.id, settings=sandbox.settings,
                                          now=DEMO_NOW, policy=policy, mail=mail))
        for platform in ("quickbooks", "xero"):
            effects = sandbox.effects(platform)
            keys = Counter(e.key for e in effects if e.key)
            result.duplicates += sum(n - 1 for n in keys.values() if n > 1)
            result.effects[platform] = Counter(e.kind for e in effects)
        result.messages = sink.snapshot()
    return result


def default_demo_db() -> Path:
    from ar_sync.store.sqlite.store import default_data_dir

    return default_data_dir() / "demo.db"
