"""The HTML report: self-contained, escaped, and rendered by a real browser (headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from reports_helpers import AS_OF, entry, fixture_history, fixture_invoices, inv

from ar_sync.models import ActionKind
from ar_sync.report import build_report
from ar_sync.report_html import render_html

EVIL = "<script>document.body.setAttribute('data-pwned','1')</script><img src=x onerror=alert(1)>"


def _page() -> str:
    invoices = [*fixture_invoices(),
                inv("E1", "C9", EVIL, "2026-01-01", "2026-01-15", "99.00"),
                inv("E2", "C9\"><b>", "Quote \" & Co", "2026-01-01", "2026-01-15", "1.00")]
    history = {**fixture_history(), "E1": [entry("E1", ActionKind.NOTE, "2026-01-20")]}
    return render_html([build_report(invoices, history, as_of=AS_OF, title="Fixture <Co>")])


class _Tags(HTMLParser):
    """Counts elements (by tag and by tag.class) and keeps the text, as a browser built it."""

    def __init__(self) -> None:
        super().__init__()
        self.count: Counter[str] = Counter()
        self.body_attrs: dict[str, str | None] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.count[tag] += 1
        for cls in (dict(attrs).get("class") or "").split():
            self.count[f"{tag}.{cls}"] += 1
        if tag == "body":
            self.body_attrs = dict(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


def test_page_is_self_contained_and_escaped() -> None:
    html = _page()
    lowered = html.lower()
    assert "<script" not in lowered and "<img" not in lowered  # the names stayed text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", lowered)  # nothing fetched
    assert "&lt;script&gt;" in html and "Quote &quot; &amp; Co" in html
    assert "Fixture &lt;Co&gt;" in html
    tags = _parse(html)
    assert tags.count["svg.aging-chart"] == 3  # EUR, JPY, USD
    assert tags.count["rect.bar"] == 15  # five buckets each
    assert tags.count["table.customers"] == 1
    assert "".join(tags.text).count(EVIL) == 1  # shown once, as the literal name


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); CI installs it")
    tmp = tmp_path_factory.mktemp("chromium")
    page = tmp / "report.html"
    page.write_text(_page(), encoding="utf-8")
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp / 'profile'}", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_chromium_renders_chart_and_table(rendered: str) -> None:
    tags = _parse(rendered)
    assert tags.count["svg"] == 3 and tags.count["rect.bar"] == 15
    assert tags.count["table.customers"] == 1 and tags.count["table.aging"] == 1
    # one row per customer: Acme, Globex, Initech, Umbrella and the two hostile names
    assert rendered.count("<tr data-customer=") == 6
    # high: Globex and Initech (figures test) and both hostile customers: 75 days overdue, so
    # 40 (late, capped) + 75 x 25/90 = 21 (+ 5 for E1's ignored reminder) = 61 and 66
    assert tags.count["span.high"] == 4
    assert "Globex" in "".join(tags.text)


def test_chromium_runs_no_injected_script(rendered: str) -> None:
    tags = _parse(rendered)
    assert tags.count["script"] == 0 and tags.count["img"] == 0
    assert "data-pwned" not in tags.body_attrs
    assert EVIL in "".join(tags.text)  # the browser shows the name as text


def test_chart_bars_scale_to_the_largest_bucket(tmp_path: Path) -> None:
    from ar_sync.report import aging
    from ar_sync.report_html import aging_chart

    [usd] = [r for r in aging(fixture_invoices(), AS_OF) if r.currency == "USD"]
    heights = dict(re.findall(r'data-bucket="([^"]+)"[^>]*height="([\d.]+)"', aging_chart(usd)))
    # plot height 200 - 20 - 30 = 150; largest USD bucket 90+ (1500.00) is full height,
    # 1-30 (500.00) a third, current (300.00) a fifth, 31-60 and 61-90 empty
    assert heights == {"current": "30.0", "1-30": "50.0", "31-60": "0.0", "61-90": "0.0",
                       "90+": "150.0"}
