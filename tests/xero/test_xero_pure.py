"""Pure pieces of the Xero emulator and connector, checked with hypothesis."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ar_sync_emulators.books import DEMO_TODAY, demo_company, large_company
from ar_sync_emulators.xero.model import ms_date, parse_xero_date
from ar_sync_emulators.xero.where import GUID, Value, WhereError, parse_where
from ar_sync_xero.mapping import fee_parent, if_modified_since, parse_ms_date

FIELDS = {"AmountDue": Decimal, "Type": str, "Status": str, "Reference": str,
          "Contact.ContactID": GUID, "DueDate": date}
amounts = st.decimals(min_value=-10_000, max_value=10_000, places=2, allow_nan=False)
words = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8)


@given(amounts, amounts, st.sampled_from([">", ">=", "<", "<=", "==", "!="]))
def test_numeric_comparison_matches_python(value: Decimal, bound: Decimal, op: str) -> None:
    pred = parse_where(f"AmountDue{op}{bound}", FIELDS)
    expected = {">": value > bound, ">=": value >= bound, "<": value < bound,
                "<=": value <= bound, "==": value == bound, "!=": value != bound}[op]
    assert pred({"AmountDue": value}) is expected


@given(words, words, amounts)
def test_and_or_follow_boolean_logic(kind: str, status: str, due: Decimal) -> None:
    record: dict[str, Value] = {"Type": kind, "Status": status, "AmountDue": due}
    both = parse_where(f'Type=="{kind}" AND AmountDue>0', FIELDS)(record)
    either = parse_where(f'Type=="X{kind}" OR (Status=="{status}" && AmountDue<=0)',
                         FIELDS)(record)
    assert both is (due > 0)
    assert either is (due <= 0)


@given(st.text(alphabet="abc #", max_size=20), st.text(alphabet="abc#", min_size=1,
                                                        max_size=4))
def test_contains_is_case_insensitive_substring(reference: str, needle: str) -> None:
    pred = parse_where(f'Reference.Contains("{needle.upper()}")', FIELDS)
    assert pred({"Reference": reference}) is (needle.lower() in reference.lower())


def test_guid_and_dates() -> None:
    pred = parse_where('Contact.ContactID==guid("ABCDEF00-0000-0000-0000-000000000001") '
                       "AND DueDate<DateTime(2026,11,16)", FIELDS)
    assert pred({"Contact.ContactID": "abcdef00-0000-0000-0000-000000000001",
                 "DueDate": date(2026, 11, 15)})
    assert not pred({"Contact.ContactID": "abcdef00-0000-0000-0000-000000000001",
                     "DueDate": date(2026, 11, 16)})


@pytest.mark.parametrize("text", ["Nope==1", "AmountDue>", "Type==\"a\" XOR Type==\"b\"",
                                  "(Type==\"a\"", "AmountDue>\"x\"", "Type==guid(\"x\")z"])
def test_rejected_clauses(text: str) -> None:
    with pytest.raises(WhereError):
        parse_where(text, FIELDS)


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.just(UTC)))
def test_ms_dates_round_trip(moment: datetime) -> None:
    parsed = parse_ms_date(ms_date(moment))
    assert parsed is not None
    assert abs(parsed - moment) < timedelta(milliseconds=1)
    assert parse_xero_date(ms_date(moment.date())) == moment.date()


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.sampled_from([UTC, None])))
def test_if_modified_since_never_later_than_asked(moment: datetime) -> None:
    sent = datetime.fromisoformat(if_modified_since(moment)).replace(tzinfo=UTC)
    asked = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    assert timedelta(0) <= asked - sent < timedelta(seconds=1)


@given(words, st.from_regex(r"[A-Za-z0-9]{1,20}", fullmatch=True))
def test_fee_reference_round_trip(number: str, key: str) -> None:
    assert fee_parent(f"Late fee for INV-{number} | ar-sync:{key}") == (f"INV-{number}", key)
    assert fee_parent(f"INV-{number} ar-sync:{key}") is None


@settings(deadline=None)  # no wall-clock assertion: it failed on a loaded 2-core machine
@given(st.integers(min_value=0, max_value=10_000))
def test_demo_company_is_deterministic_and_as_promised(seed: int) -> None:
    company = demo_company(seed)
    assert company == demo_company(seed)
    assert sum(i.status == "voided" for i in company.invoices) == 1
    assert sum(i.disputed for i in company.invoices) == 1
    assert len(company.customers) == 40 and len(company.invoices) == 300
    assert {c.currency for c in company.customers} >= {"BHD"}
    for inv in company.invoices:
        assert inv.issue_date <= inv.due_date
        assert Decimal(0) <= inv.amount_paid <= inv.total
        if inv.status == "paid":
            assert inv.amount_paid == inv.total and inv.due_date < DEMO_TODAY
    overdue = [(DEMO_TODAY - i.due_date).days for i in company.invoices if i.status == "open"]
    assert min(overdue) <= 0 and 1 <= max(overdue) <= 120


def test_large_company_size() -> None:
    company = large_company(10_000)
    assert len(company.invoices) == 10_000 and len({i.id for i in company.invoices}) == 10_000
