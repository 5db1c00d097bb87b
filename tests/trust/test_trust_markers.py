"""Pause markers as a bookkeeper writes them (pure parsing, property-tested)."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from ar_sync.domain.pause_markers import from_lines, parse_line

D = date(2026, 11, 20)


def test_the_documented_forms() -> None:
    p = parse_line("ar-sync: pause until 2026-12-31 dispute goods damaged", invoice_id="9",
                   since=D)
    assert p.until == date(2026, 12, 31) and p.reason == "dispute"
    assert p.note == "goods damaged" and p.source == "platform" and p.invoice_id == "9"
    p = parse_line("  AR-SYNC: Pause promise until 2027-01-15", invoice_id="9", since=D)
    assert p.reason == "promise" and p.until == date(2027, 1, 15)
    p = parse_line("ar-sync: pause", invoice_id="9", since=D)
    assert p.until is None and p.reason == "other"
    assert parse_line("ar-sync: resume", invoice_id="9", since=D) is False
    assert parse_line("ar-sync:ar0123456789abcdef0123456789abcdef", invoice_id="9",
                      since=D) is None  # a write's key marker is not a pause
    assert parse_line("please pause until Friday", invoice_id="9", since=D) is None


def test_an_unreadable_date_pauses_until_resumed() -> None:
    p = parse_line("ar-sync: pause until 31/12/2026", invoice_id="9", since=D)
    assert p.until is None and "unreadable date" in p.note


def test_the_last_pause_or_resume_line_wins() -> None:
    lines = [(D, "ar-sync: pause dispute"), (date(2026, 11, 25), "ar-sync: resume")]
    assert from_lines(lines, invoice_id="9") is None
    lines.append((date(2026, 11, 26), "note\nar-sync: pause until 2026-12-05"))
    p = from_lines(lines, invoice_id="9")
    assert p.since == date(2026, 11, 26) and p.until == date(2026, 12, 5)


@given(st.text(max_size=200))
def test_text_without_the_marker_never_pauses(text: str) -> None:
    assert from_lines([(D, text.replace("ar-sync", "arsync"))], invoice_id="9") is None


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
       st.sampled_from(["dispute", "promise", "other"]), st.text(
           alphabet=st.characters(categories=["L", "N"]), max_size=30))
def test_any_pause_line_round_trips(until: date, reason: str, note: str) -> None:
    p = parse_line(f"ar-sync: pause {reason} until {until} {note}", invoice_id="9", since=D)
    assert p is not None and p is not False
    assert p.until == until and p.reason == reason and p.note == note.strip()
    assert p.since <= p.until  # a valid Pause even when written after its end date
