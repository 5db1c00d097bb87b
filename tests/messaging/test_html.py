"""What the customer reads: every placeholder is escaped in HTML (a customer called <script>
shows as text), links are only http(s), and a real browser (headless Chromium) shows the
amounts and the payment link."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from html_dom import parse_html
from hypothesis import given, settings
from hypothesis import strategies as st

from ar_sync.messages.compose import Line, Wording, compose

from .helpers import TODAY, invoice

EVIL = '<script>document.body.dataset.pwned=1</script><img src=x onerror="alert(1)">'
OUR_TAGS = {"html", "head", "meta", "title", "body", "p", "br", "table", "thead", "tbody", "tr",
            "th", "td", "a", "tfoot", "div", "h3"}


def _message(name: str, number_suffix: str = "", link: str | None = "https://pay.example/inv",
             company: str = "Acme & Sons <Ltd>", wording: dict[str, Wording] | None = None):  # type: ignore[no-untyped-def]
    inv1 = invoice(1, 20, name=name, balance="1234.50", link=link)
    inv2 = invoice(2, 50, name=name, balance="15000", currency="JPY", link=link)
    inv1 = inv1.model_copy(update={"number": "INV-1" + number_suffix})
    lines = [Line(inv1, "overdue-2", "firm"), Line(inv2, "final-notice", "final")]
    return compose(lines, wording=wording or {}, company=company, today=TODAY)


def test_hostile_customer_name_is_text() -> None:
    msg = _message(EVIL)
    assert "<script>" not in msg.html and "<img" not in msg.html
    assert "&lt;script&gt;" in msg.html
    tags = parse_html(msg.html)
    assert tags.count["script"] == 0 and tags.count["img"] == 0
    assert EVIL in "".join(tags.text)
    assert "Acme & Sons <Ltd>" in "".join(tags.text)
    assert EVIL in msg.text  # the plain part is plain text: shown as typed


def test_stage_template_text_is_escaped_too() -> None:
    wording = {"final-notice": Wording("final", subject="Pay {customer_name}",
                                       body="<b>{customer_name}</b> owes {total_due}")}
    msg = _message("Bob", wording=wording)
    assert "<b>Bob" not in msg.html and parse_html(msg.html).count["b"] == 0
    assert "&lt;b&gt;Bob&lt;/b&gt; owes ¥15,000 + $1,234.50" in msg.html


def test_subject_cannot_inject_headers() -> None:
    wording = {"final-notice": Wording("final", subject="Hello {customer_name}")}
    msg = _message("Eve\r\nBcc: victim@example.com", wording=wording)
    assert "\n" not in msg.subject and "\r" not in msg.subject


def test_only_http_links_are_clickable() -> None:
    msg = _message("Bob", link="javascript:alert(1)")
    assert "javascript:" not in msg.html and parse_html(msg.html).count["a"] == 0
    assert "javascript:" not in msg.text


@settings(max_examples=150, deadline=None)
@given(name=st.text(min_size=1, max_size=60), suffix=st.text(max_size=20),
       company=st.text(max_size=40))
def test_any_text_in_any_placeholder_stays_text(name: str, suffix: str, company: str) -> None:
    msg = _message(name, suffix, company=company)
    tags = parse_html(msg.html)
    assert tags.tags() <= OUR_TAGS
    assert tags.attrs_seen <= {"charset", "style", "cellpadding", "class", "href", "colspan"}
    assert tags.count["a"] == 2  # only our two payment links
    assert all(link.startswith("https://pay.example/inv/") for link in tags.links)
    shown = "".join(tags.text)
    for value in (name, company):
        plain = value.replace("\r\n", "\n").replace("\r", "\n")
        if plain.strip() and "\n" not in plain:
            assert plain.strip() in shown


def test_chromium_shows_amounts_and_payment_links(
        chromium: Callable[[str, Path], str], tmp_path: Path) -> None:
    rendered = chromium(_message(EVIL).html, tmp_path)
    dom = parse_html(rendered)
    assert dom.count["script"] == 0 and dom.count["img"] == 0
    assert "data-pwned" not in dom.attrs_seen and "pwned" not in rendered.split("<body")[1]\
        .split(">")[0]
    shown = "".join(dom.text)
    assert "$1,234.50" in shown and "¥15,000" in shown
    assert "Total due¥15,000 + $1,234.50" in shown  # the total row
    assert "If you have already paid, thank you" in shown
    assert EVIL in shown
    assert sorted(dom.links) == ["https://pay.example/inv/1", "https://pay.example/inv/2"]
    assert dom.count["tr"] == 4  # header, one row per invoice, the total
