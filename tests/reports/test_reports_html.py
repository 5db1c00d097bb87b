"""The HTML report: self-contained, escaped, and rendered by a real browser (headless Chromium)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from html_dom import parse_html
from reports_helpers import AS_OF, entry, fixture_history, fixture_invoices, inv

from ar_sync.domain.models import ActionKind
from ar_sync.report.figures import build_report
from ar_sync.report.html import render_html

EVIL = "<script>document.body.setAttribute('data-pwned','1')</script><img src=x onerror=alert(1)>"


def _page() -> str:
    invoices = [*fixture_invoices(),
                inv("E1", "C9", EVIL, "2026-01-01", "2026-01-15", "99.00"),
                inv("E2", "C9\"><b>", "Quote \" & Co", "2026-01-01", "2026-01-15", "1.00")]
    history = {**fixture_history(), "E1": [entry("E1", ActionKind.NOTE, "2026-01-20")]}
    return render_html([build_report(invoices, history, as_of=AS_OF, title="Fixture <Co>")])


def test_page_is_self_contained_and_escaped() -> None:
    html = _page()
    lowered = html.lower()
    assert "<script" not in lowered and "<img" not in lowered  # the names stayed text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", lowered)  # nothing fetched
    assert "&lt;script&gt;" in html and "Quote &quot; &amp; Co" in html
    assert "Fixture &lt;Co&gt;" in html
    tags = parse_html(html)
    assert tags.count["svg.aging-chart"] == 3  # EUR, JPY, USD
    assert tags.count["rect.bar"] == 15  # five buckets each
    assert tags.count["table.customers"] == 1
    assert "".join(tags.text).count(EVIL) == 1  # shown once, as the literal name


@pytest.fixture(scope="module")
def rendered(chromium: Callable[[str, Path], str],
             tmp_path_factory: pytest.TempPathFactory) -> str:
    return chromium(_page(), tmp_path_factory.mktemp("chromium"))


def test_chromium_renders_chart_and_table(rendered: str) -> None:
    tags = parse_html(rendered)
    assert tags.count["svg"] == 3 and tags.count["rect.bar"] == 15
    assert tags.count["table.customers"] == 1 and tags.count["table.aging"] == 1
    # one row per customer: Acme, Globex, Initech, Umbrella and the two hostile names
    assert rendered.count("<tr data-customer=") == 6
    # high: Globex and Initech (figures test) and both hostile customers: 75 days overdue, so
    # 40 (late, capped) + 75 x 25/90 = 21 (+ 5 for E1's ignored reminder) = 61 and 66
    assert tags.count["span.high"] == 4
    assert "Globex" in "".join(tags.text)


def test_chromium_runs_no_injected_script(rendered: str) -> None:
    tags = parse_html(rendered)
    assert tags.count["script"] == 0 and tags.count["img"] == 0
    assert "data-pwned" not in tags.body_attrs
    assert EVIL in "".join(tags.text)  # the browser shows the name as text


def test_chart_bars_scale_to_the_largest_bucket(tmp_path: Path) -> None:
    from ar_sync.report.figures import aging
    from ar_sync.report.html import aging_chart

    [usd] = [r for r in aging(fixture_invoices(), AS_OF) if r.currency == "USD"]
    heights = dict(re.findall(r'data-bucket="([^"]+)"[^>]*height="([\d.]+)"', aging_chart(usd)))
    # plot height 200 - 20 - 30 = 150; largest USD bucket 90+ (1500.00) is full height,
    # 1-30 (500.00) a third, current (300.00) a fifth, 31-60 and 61-90 empty
    assert heights == {"current": "30.0", "1-30": "50.0", "31-60": "0.0", "61-90": "0.0",
                       "90+": "150.0"}
