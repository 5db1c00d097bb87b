"""Rules files: shipped sets load, extends merges, and every bad input names file:line:path."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ar_sync.domain.models import FeeMode
from ar_sync.rules.policy import (
    PercentFee,
    PolicyError,
    load_policy,
    parse_policy,
    policy_json_schema,
    shipped_rule_sets,
)

SHIPPED = ["default", "gentle", "firm", "uk-late-payment"]


def _error(text: str, filename: str = "rules/my.yaml") -> PolicyError:
    with pytest.raises(PolicyError) as exc:
        parse_policy(textwrap.dedent(text), filename)
    return exc.value


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_rule_sets_load(name: str) -> None:
    assert name in shipped_rule_sets()
    policy = load_policy(name)
    assert policy.reminders and policy.calendar.timezone
    assert load_policy(shipped_rule_sets()[name]) == policy  # by path too


def test_default_matches_its_description() -> None:
    p = load_policy("default")
    assert [(r.name, r.days) for r in p.reminders] == [
        ("heads-up", -3), ("overdue-1", 1), ("overdue-2", 7), ("overdue-3", 21),
        ("final-notice", 45)]
    fee = p.late_fees[0]
    assert fee.kind == "percent" and fee.percent == Decimal("1.5") and fee.every == "month"
    assert fee.grace_days == 30 and fee.cap_percent == 10 and fee.min_fee is not None
    assert p.calendar.holidays is not None and p.calendar.holidays.country == "US"
    assert p.exclude.disputed and p.exclude.below_balance is not None
    assert len(p.escalations[0].when) == 2


def test_uk_rule_set() -> None:
    p = load_policy("uk-late-payment")
    fee = p.late_fees[0]
    assert fee.kind == "uk_statutory" and fee.margin == 8 and fee.compensation
    assert fee.mode == FeeMode.INVOICE
    assert p.calendar.timezone == "Europe/London"
    assert p.calendar.holidays is not None and p.calendar.holidays.country == "GB"


def test_extends_merges_sections_and_named_items(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text(textwrap.dedent("""
        extends: default
        calendar: {timezone: Europe/Berlin, holidays: {country: DE}}
        reminders:
          - {name: overdue-2, days: 10}
          - {name: heads-up, remove: true}
          - {name: very-late, days: 90, tone: final}
        late_fees:
          - {name: late-fee, percent: 2}
    """))
    p = load_policy(mine)
    assert p.calendar.timezone == "Europe/Berlin" and p.calendar.send_on == "business_days"
    assert p.calendar.holidays is not None and p.calendar.holidays.country == "DE"
    names = {r.name: r.days for r in p.reminders}
    assert "heads-up" not in names and names["overdue-2"] == 10 and names["very-late"] == 90
    assert names["overdue-1"] == 1  # untouched parent items stay
    fee = p.late_fees[0]
    assert isinstance(fee, PercentFee)
    assert fee.percent == 2 and fee.grace_days == 30  # merged over the parent's item
    assert p.extends == "default"


def test_extends_relative_path(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("company_name: Base Co\nreminders: [{name: a, days: 1}]\n")
    (tmp_path / "child.yaml").write_text("extends: ./base.yaml\ncompany_name: Child Co\n")
    p = load_policy(tmp_path / "child.yaml")
    assert p.company_name == "Child Co" and p.reminders[0].name == "a"


def test_error_in_parent_names_the_parent_file(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("version: 1\nreminders:\n  - {name: a, days: 1, x: 2}\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\n")
    with pytest.raises(PolicyError) as exc:
        load_policy(tmp_path / "child.yaml")
    assert "base.yaml:3: reminders[0].x: unknown key" in str(exc.value)


def test_extends_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("version: 1\nextends: a.yaml\n")
    with pytest.raises(PolicyError) as exc:
        load_policy(tmp_path / "a.yaml")
    msg = str(exc.value)
    assert "b.yaml:2: extends: extends cycle" in msg and "a.yaml" in msg


@pytest.mark.parametrize(("text", "expected"), [
    # wrong type
    ("""
     reminders:
       - name: a
         days: 1
       - name: b
         days: -5x
     """, "rules/my.yaml:6: reminders[1].days: Input should be a valid integer (got -5x)"),
    # unknown key, with a suggestion
    ("""
     exclude:
       disputd: true
     """, "rules/my.yaml:3: exclude.disputd: unknown key, did you mean 'disputed'?"),
    # negative days where they cannot be
    ("""
     late_fees:
       - name: f
         kind: fixed
         amount: 5
         grace_days: -3
     """, "rules/my.yaml:6: late_fees[0].grace_days: Input should be greater than or equal to 0"),
    ("""
     late_fees:
       - {name: f, kind: fixed, amount: 5, every: -7}
     """, "rules/my.yaml:3: late_fees[0].every: a number of days must be at least 1"),
    # bad currency
    ("""
     exclude:
       currencies: [USD, XYZ]
     """, "rules/my.yaml:3: exclude.currencies[1]: unknown currency code 'XYZ'"),
    ("""
     late_fees:
       - name: f
         kind: fixed
         amount: {USD: 5, DOLLARS: 3}
     """, "rules/my.yaml:5: late_fees[0].amount: unknown currency code 'DOLLARS'"),
    # template with attribute access
    ("""
     reminders:
       - name: a
         days: 1
         note: "Pay {invoice_number.__class__.__mro__}"
     """, "rules/my.yaml:5: reminders[0].note: attribute access is not allowed in placeholder "
         "{invoice_number.__class__.__mro__}"),
    ("""
     escalations:
       - {name: e, when: {days_overdue: 5}, to: {person: x}, note: "{balance[0]}"}
     """, "rules/my.yaml:3: escalations[0].note: indexing is not allowed"),
    # bad time zone, unknown holiday country
    ("""
     calendar:
       timezone: Mars/Olympus
     """, "rules/my.yaml:3: calendar.timezone: unknown time zone 'Mars/Olympus'"),
    ("""
     calendar:
       holidays: {country: XX}
     """, "rules/my.yaml:3: calendar.holidays: unknown holiday country 'XX'"),
    # missing discriminator, missing required field
    ("""
     late_fees:
       - {name: f, percent: 2}
     """, "rules/my.yaml:3: late_fees[0]: missing 'kind'"),
    ("""
     late_fees:
       - {name: f, kind: percent}
     """, "rules/my.yaml:3: late_fees[0].percent: required field missing"),
    # semantic checks
    ("""
     reminders:
       - {name: a, days: 1}
       - {name: a, days: 2}
     """, "rules/my.yaml:4: reminders[1].name: name 'a' is already used by reminders[0]"),
    ("""
     reminders:
       - {name: a, days: 1}
       - {name: b, days: 1}
     """, "rules/my.yaml:4: reminders[1].days: day 1 is already used by reminders[0]"),
    ("""
     late_fees:
       - {name: s, kind: uk_statutory, reference_rate: 4, every: once}
     """, "rules/my.yaml:3: late_fees[0].every: interest accrues over time"),
    ("""
     escalations:
       - {name: e, when: {days_overdue: 5}, to: {person: x, agency: y}}
     """, "rules/my.yaml:3: escalations[0].to: give exactly one of person or agency"),
    # YAML syntax
    ("""
     reminders:
       - name: a
         days: [1
     """, "rules/my.yaml:5: YAML syntax error"),
    ("""
     version: 1
     version: 2
     """, "rules/my.yaml:3: duplicate key 'version'"),
    ("- just\n- a list\n", "rules/my.yaml:1: a rules file must be a mapping"),
    ("extends: no-such-set\n", "rules/my.yaml:1: extends: no shipped rule set named"),
])
def test_bad_input_names_file_line_and_path(text: str, expected: str) -> None:
    assert expected in str(_error(text))


def test_every_problem_is_reported() -> None:
    err = _error("""
        calendar: {timezone: Nowhere/City}
        reminders:
          - {name: a, days: x}
        """)
    assert len(err.issues) == 2
    assert [i.line for i in err.issues] == [2, 4]


def test_yes_no_are_not_booleans_and_floats_are_exact() -> None:
    p = parse_policy("calendar: {holidays: {country: NO}}\nlate_fees:\n"
                     "  - {name: f, kind: percent, percent: 0.1}\n", "x.yaml")
    assert p.calendar.holidays is not None and p.calendar.holidays.country == "NO"
    fee = p.late_fees[0]
    assert isinstance(fee, PercentFee)
    assert fee.percent == Decimal("0.1")  # not 0.1000000000000000055...


def test_unsafe_yaml_tags_are_refused() -> None:
    err = _error("company_name: !!python/object/apply:os.system ['echo hi']\n")
    assert "rules/my.yaml:1" in str(err)


def test_holiday_shorthand_and_today_in_zone() -> None:
    p = parse_policy("calendar: {timezone: Asia/Tokyo, holidays: US-NY}\n", "x.yaml")
    assert p.calendar.holidays is not None and p.calendar.holidays.subdivision == "NY"
    assert p.today(datetime(2026, 11, 30, 20, 0, tzinfo=UTC)) == date(2026, 12, 1)


def test_json_schema_is_json_and_describes_fields() -> None:
    schema = policy_json_schema()
    text = json.dumps(schema)
    assert schema["title"] == "ar-sync rules"
    assert "reminders" in schema["properties"] and "uk_statutory" in text
    assert schema["additionalProperties"] is False


def test_policy_is_frozen() -> None:
    p = load_policy("default")
    with pytest.raises(ValueError):
        p.company_name = "x"  # type: ignore[misc]


def test_shipped_rule_sets_found_in_an_installed_wheel(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import resources

    packaged = tmp_path / "_rules"
    packaged.mkdir()
    (packaged / "house.yaml").write_text("description: from the wheel\n")
    monkeypatch.setattr(resources, "files", lambda _pkg: tmp_path)
    assert list(shipped_rule_sets()) == ["house"]
    assert load_policy("house").description == "from the wheel"
