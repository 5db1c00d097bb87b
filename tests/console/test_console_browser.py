"""The console in a real browser (Playwright driving Debian's chromium; no browser is ever
downloaded): the whole path a business owner takes, on the demo companies and the local
emulators. Each step checks what a person would see, runs axe-core (bundled with
axe-playwright-python, no network) and saves a screenshot under the test's tmp_path
(AR_SYNC_CONSOLE_SCREENSHOTS=DIR copies them there too, e.g. docs/img)."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ar_sync.cli.commands.console import demo_config, listen
from ar_sync.console.app import build_app
from ar_sync.console.config import ConsoleConfig
from ar_sync.console.signin import LocalSignIn

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (.ci/run installs it "
                                       "as root: apt-get install chromium)")


@pytest.fixture
def console_url() -> Iterator[tuple[str, ConsoleConfig]]:
    import uvicorn

    sock = listen(0)
    port = int(sock.getsockname()[1])
    with demo_config(port, "local", connect=False) as cfg:
        server = uvicorn.Server(uvicorn.Config(build_app(cfg), log_level="warning",
                                               access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        try:
            yield cfg.public_url, cfg
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()


def tab(page: Any, name: str, slug: str) -> None:
    """Click one of the company's tabs and wait for its page."""
    page.locator("nav.tabs").get_by_role("link", name=name, exact=True).click()
    page.wait_for_url(f"**/{slug}")


class Steps:
    """Screenshots, accessibility checks and timings, one per step."""

    def __init__(self, page: Any, out: Path) -> None:
        from axe_playwright_python.sync_playwright import Axe

        self.page, self.out, self.axe = page, out, Axe()
        self.copy_to = os.environ.get("AR_SYNC_CONSOLE_SCREENSHOTS")
        self.started = self.last = time.monotonic()
        self.lines: list[str] = []

    def done(self, n: int, name: str) -> None:
        result = self.axe.run(self.page)
        bad = [f"{v['id']} ({v['impact']}): {v['help']}" for v in result.response["violations"]
               if v["impact"] in ("serious", "critical")]
        assert not bad, f"step {n} {name}: {bad}"
        minor = len(result.response["violations"])
        shot = self.out / f"{n:02d}-{name}.png"
        # the viewport as a person sees it (full-page captures leave srcdoc frames blank)
        self.page.screenshot(path=str(shot))
        if self.copy_to:
            shutil.copy(shot, Path(self.copy_to) / f"console-{name}.png")
        now = time.monotonic()
        self.lines.append(f"step {n:2d} {name:<14} {now - self.last:5.1f} s  axe: 0 serious/"
                          f"critical, {minor} minor; {len(result.response['passes'])} rules "
                          "passed")
        self.last = now


def test_the_whole_path_in_a_browser(console_url, tmp_path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, cfg = console_url
    assert isinstance(cfg.signin, LocalSignIn)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        steps = Steps(page, tmp_path)

        # 1. open the console: without the link nothing; with it, the empty Connect screen
        page.goto(url + "/")
        expect(page.get_by_text("Open the link that")).to_be_visible()
        page.goto(url + f"/login/{cfg.signin.issue()}")
        expect(page.get_by_role("heading", name="No company connected yet")).to_be_visible()
        steps.done(1, "connect-empty")

        # 2. connect the sandbox company through the emulator's consent
        page.get_by_role("button", name="Connect QuickBooks Online").click()
        expect(page.get_by_role("status")).to_contain_text("It is in preview")
        expect(page.get_by_role("heading", name="First-run preview")).to_be_visible()

        # 3. the first-run preview: one customer's message, as they will read it
        first = page.locator("details.customer").first
        name = first.locator("summary strong").inner_text()
        message = first.locator("article.message").first
        expect(message.locator(".subject")).not_to_be_empty()
        mail = message.frame_locator("iframe.mail")
        statement = mail.locator("table.statement")
        expect(statement).to_contain_text("INV-")
        expect(mail.locator("body")).to_contain_text(name.split()[0])
        # each invoice's balance and the total, formatted as the customer reads amounts
        assert len(re.findall(r"\$\d[\d,]*\.\d\d", statement.inner_text())) >= 2
        expect(page.get_by_text("e-mails to customers")).to_be_visible()
        page.mouse.wheel(0, 700)  # the message itself in the screenshot
        steps.done(3, "preview")

        # 4. an error in the rules, shown at its line; then fixed
        tab(page, "Rules", "rules")
        box = page.get_by_label("Rules (YAML)")
        expect(box).to_contain_text("extends: default")  # the company's rules as they are
        box.fill("extends: default\ndescription: Our follow-up\nreminders:\n"
                 "  - {name: overdue-2, channel: fax}\n")
        at = 3  # the fourth line, 0-based
        page.get_by_role("button", name="Preview the change").click()
        errors_box = page.locator("#rules-errors")
        errors_box.scroll_into_view_if_needed()
        expect(errors_box).to_contain_text(f"Line {at + 1}")
        expect(errors_box).to_contain_text("channel")
        expect(page.locator(f"#line-{at + 1}")).to_have_class("bad")
        expect(page.locator(f"#line-{at + 1}")).to_contain_text("channel: fax")
        steps.done(4, "rules-error")

        # 5. the fix (and a change: charge the latest fee period at go-live), previewed, applied
        # (terms agreed in the contract: `backfill` decides go-live's fees, issue 21)
        box.fill("extends: default\ndescription: Our follow-up, the latest month's fee at "
                 "go-live\njourney: {fee_notice: agreed}\n"
                 "late_fees:\n  - {name: late-fee, backfill: latest}\n")
        page.get_by_role("button", name="Preview the change").click()
        diff = page.locator("section.diff")
        expect(diff).to_contain_text("What changes over the next 30 days")
        diff.scroll_into_view_if_needed()
        expect(diff).to_contain_text("USD fees")
        assert re.search(r"[1-9]\d* new", diff.inner_text())
        steps.done(5, "rules-diff")
        page.get_by_label("Why you change them").fill("charge the latest month at go-live")
        page.get_by_role("button", name="Apply").click()
        expect(page.get_by_role("status")).to_contain_text("Rules version 1 applied")
        expect(page.get_by_role("cell", name="charge the latest month at go-live")).to_be_visible()

        # 6. go live, today
        tab(page, "First-run preview", "preview")
        page.get_by_role("button", name="Go live").click()
        expect(page.get_by_role("status")).to_contain_text("is live from 16 Nov 2026")
        tab(page, "Runs", "runs")
        page.get_by_role("button", name="Run now").click()
        expect(page.get_by_role("status")).to_contain_text("Run finished")
        run = page.locator("details.run").first
        expect(run).to_contain_text("live")
        fee_row = run.locator("tr", has_text="fee ").first
        fee_invoice = fee_row.locator("td").first.inner_text()

        # 7. pause a customer: a promise to pay by a date
        tab(page, "Customers and invoices", "customers")
        page.get_by_role("link", name=name).click()
        page.get_by_label("Why").select_option("promise")
        page.get_by_label("Until").fill("2026-12-15")
        page.get_by_label("Note for your records").fill("pays after the December invoice run")
        page.get_by_role("button", name="Pause", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("promised to pay")
        expect(page.get_by_role("heading", name="Follow-up is paused")).to_be_visible()
        expect(page.locator("section.paused")).to_contain_text("through 15 Dec 2026")
        steps.done(7, "customer")

        # 8. waive a fee, with the reason, through the ledger
        owner = next(i.customer_name for c in cfg.store.list_connections()
                     for i in cfg.store.open_invoices(c.id) if i.number == fee_invoice)
        tab(page, "Customers and invoices", "customers")
        page.get_by_role("link", name=owner, exact=True).click()
        fee = page.locator("ul.fees li", has_text=f"Invoice {fee_invoice}").first
        fee.get_by_label("Reason to waive it").fill("goodwill: first month with ar-sync")
        fee.get_by_role("button", name="Waive this fee").click()
        expect(page.get_by_role("status")).to_contain_text(f"on invoice {fee_invoice} requested")
        page.get_by_role("button", name="Waive this fee").count()  # the list re-rendered
        expect(page.locator("ul.fees li", has_text=f"Invoice {fee_invoice}")).to_have_count(0)
        steps.done(8, "waive")

        # 9. the run (which applies the waiver) and the report
        tab(page, "Runs", "runs")
        page.get_by_role("button", name="Run now").click()
        expect(page.get_by_role("status")).to_contain_text("Run finished")
        latest = page.locator("details.run").first
        expect(latest).to_contain_text(f"waived on invoice {fee_invoice}")
        expect(latest.locator("tr", has_text="waive fee").locator("td").nth(2)
               ).to_contain_text("done")
        steps.done(9, "runs")
        tab(page, "Report", "report")
        report = page.frame_locator("iframe.report")
        expect(report.get_by_role("heading", name="Days sales outstanding")).to_be_visible()
        expect(report.locator("table.aging")).to_contain_text("USD")
        steps.done(9, "report")
        browser.close()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    print("\n" + "\n".join(steps.lines) + f"\ntotal {time.monotonic() - steps.started:.1f} s")
