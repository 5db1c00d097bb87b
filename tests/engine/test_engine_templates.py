"""Safe templates: placeholders only, nothing reaches an attribute or runs code."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ar_sync.domain.money import format_money
from ar_sync.rules.templates import FEE_LABEL_FIELDS, NOTE_FIELDS, TemplateError, compile_template


def test_render_substitutes_and_unescapes_braces() -> None:
    t = compile_template("Invoice {invoice_number}: {{literal}} {balance}!")
    assert t.names == ("invoice_number", "balance")
    assert t.render({"invoice_number": "INV-7", "balance": "10.00 USD"}) == (
        "Invoice INV-7: {literal} 10.00 USD!")


@pytest.mark.parametrize(("text", "fragment"), [
    ("{x.__class__}", "attribute access"),
    ("{invoice_number.__class__.__mro__}", "attribute access"),
    ("{balance[0]}", "indexing"),
    ("{balance:>{width}}", "format specs"),
    ("{balance!r}", "conversions"),
    ("{nope}", "unknown placeholder {nope}"),
    ("{fee}", "unknown placeholder {fee}"),  # fee is for fee labels only
    ("{ balance }", "invalid placeholder"),
    ("open {balance", "unclosed"),
    ("close }", "single '}'"),
])
def test_bad_templates_name_the_placeholder(text: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as exc:
        compile_template(text, NOTE_FIELDS)
    assert fragment in str(exc.value)


def test_fee_labels_may_use_fee_and_period() -> None:
    t = compile_template("Late fee {period}: {fee}", FEE_LABEL_FIELDS)
    assert t.render({"period": "2026-11", "fee": "5.00 USD"}) == "Late fee 2026-11: 5.00 USD"


def test_values_are_never_interpreted() -> None:
    t = compile_template("{customer_name}")
    evil = "{balance.__class__} {{x}}"
    assert t.render({"customer_name": evil}) == evil


@given(st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=200))
def test_text_without_braces_renders_as_itself(text: str) -> None:
    assert compile_template(text).render({}) == text


@given(st.text(max_size=60))
def test_any_text_either_compiles_or_raises_template_error(text: str) -> None:
    try:
        t = compile_template(text)
    except TemplateError:
        return
    assert set(t.names) <= NOTE_FIELDS
    rendered = t.render({name: "X" for name in NOTE_FIELDS})
    assert "__" not in rendered or "__" in text


def test_format_money_uses_minor_units() -> None:
    assert format_money(Decimal("1234.5"), "USD") == "1,234.50 USD"
    assert format_money(Decimal("125000.4"), "JPY") == "125,000 JPY"
    assert format_money(Decimal("1.2345"), "BHD") == "1.235 BHD"
