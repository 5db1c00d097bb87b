"""`ar-sync rules …` and `ar-sync plan` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.cli.errors import UserError

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample-invoices.json"
runner = CliRunner()


def test_validate_ok_and_errors(tmp_path: Path) -> None:
    good = runner.invoke(app, ["rules", "validate", "default", "uk-late-payment"])
    assert good.exit_code == 0 and "ok default" in good.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("reminders:\n  - name: a\n    days: soon\n")
    result = runner.invoke(app, ["rules", "validate", "gentle", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:3: reminders[0].days: Input should be a valid integer (got soon)" in (
        result.output.replace("\n", ""))


def test_schema_is_json() -> None:
    result = runner.invoke(app, ["rules", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "ar-sync rules" and "late_fees" in schema["properties"]


def test_list_and_docs() -> None:
    listed = runner.invoke(app, ["rules", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    for name in ("default", "gentle", "firm", "uk-late-payment"):
        assert name in listed.output
    docs = runner.invoke(app, ["rules", "docs"])
    assert docs.exit_code == 0
    assert "### Reminder" in docs.output and "| `days` |" in docs.output
    assert "`{payment_link}`" in docs.output and "### UkStatutoryInterest" in docs.output


def _by_age(tmp_path: Path, base: str) -> str:
    """A rules file: `base` with the journey as it was before issue 21 (latest stage by
    age, fees as agreed terms), to see fees on a plain invoices file."""
    path = tmp_path / f"{base}-by-age.yaml"
    path.write_text(f"extends: {base}\njourney: {{first_contact: by_age, fee_notice: agreed}}\n")
    return str(path)


def test_plan_table_and_json(tmp_path: Path) -> None:
    table = runner.invoke(app, ["plan", "--invoices", str(SAMPLE), "--today", "2026-11-30"],
                          env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    # a first contact is the gentlest overdue stage, whatever the invoice's age
    assert "Plan for 2026-11-30" in table.output and "overdue-1" in table.output
    assert "final-notice" not in table.output
    assert "skipped invoice [29] INV-BAD" in table.output  # the malformed entry is named
    gentle = runner.invoke(app, ["plan", "--invoices", str(SAMPLE), "--today", "2026-11-30",
                                 "--format", "json"])
    # nothing announced the fees and no final notice was sent: no fee, no escalation yet
    assert {a["kind"] for a in json.loads(gentle.stdout)} == {"note", "message", "skip"}
    out = runner.invoke(app, ["plan", "--invoices", str(SAMPLE), "--today", "2026-11-30",
                              "--format", "json", "--rules", _by_age(tmp_path, "default")])
    assert out.exit_code == 0
    actions = json.loads(out.stdout)
    kinds = {a["kind"] for a in actions}
    # the default rules e-mail from ar-sync: one message per customer replaces the items;
    # no escalation before a final notice was sent
    assert kinds == {"late_fee", "note", "message", "skip"}
    jpy = [a for a in actions if a["kind"] == "late_fee" and a["amount"]["currency"] == "JPY"]
    assert jpy and all("." not in str(a["amount"]["amount"]) for a in jpy)
    numbers = {a["invoice_number"] for a in actions}
    assert "INV-1010" not in numbers  # paid
    assert "INV-1100" not in numbers  # draft


def test_plan_with_another_rule_set_and_explain(tmp_path: Path) -> None:
    uk = runner.invoke(app, ["plan", "--rules", _by_age(tmp_path, "uk-late-payment"),
                             "--invoices", str(SAMPLE),
                             "--today", "2026-11-30", "--format", "json"])
    assert uk.exit_code == 0
    actions = json.loads(uk.stdout)
    assert any(a["occurrence"] == "compensation" for a in actions)
    explained = runner.invoke(app, ["rules", "explain", "INV-1022", "--invoices", str(SAMPLE),
                                    "--today", "2026-11-30"], env={"COLUMNS": "200"})
    assert explained.exit_code == 0 and "stage final-notice" in explained.output


@pytest.mark.parametrize("args", [
    ["plan", "--invoices", "nope.json"],
    ["plan", "--invoices", str(SAMPLE), "--today", "30/11/2026"],
    ["plan", "--invoices", str(SAMPLE), "--rules", "no-such-rules"],
    ["plan", "--invoices", str(SAMPLE), "--format", "xml"],
])
def test_user_mistakes_are_user_errors(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert isinstance(result.exception, UserError)


def test_plan_live_from_previews_the_first_live_run(tmp_path: Path) -> None:
    rules = _by_age(tmp_path, "default")

    def fees(*extra: str) -> list[dict]:  # type: ignore[type-arg]
        out = runner.invoke(app, ["plan", "--invoices", str(SAMPLE), "--today", "2026-11-30",
                                  "--format", "json", "--rules", rules, *extra])
        assert out.exit_code == 0, out.output
        return [a for a in json.loads(out.stdout) if a["kind"] == "late_fee"]

    everything = fees()
    live = fees("--live-from", "2026-11-30")
    assert len(live) < len(everything)
    assert all(a["due_on"] >= "2026-11-30" for a in live)
    explained = runner.invoke(app, ["rules", "explain", "INV-1022", "--invoices", str(SAMPLE),
                                    "--today", "2026-11-30", "--live-from", "2026-11-30"],
                              env={"COLUMNS": "200"})
    assert explained.exit_code == 0 and "live since 2026-11-30" in explained.output
    bad = runner.invoke(app, ["plan", "--invoices", str(SAMPLE), "--live-from", "soon"])
    assert isinstance(bad.exception, UserError) and "--live-from" in str(bad.exception)


def test_validate_warns_when_a_rate_table_is_older_than_the_half_year() -> None:
    current = runner.invoke(app, ["rules", "validate", "uk-late-payment", "--today",
                                  "2026-12-07"])
    assert current.exit_code == 0 and "reference rates" not in current.output
    stale = runner.invoke(app, ["rules", "validate", "uk-late-payment", "eu-late-payment",
                                "default", "--today", "2027-01-04"], env={"COLUMNS": "300"})
    assert stale.exit_code == 0  # a warning, not an invalid file
    text = " ".join(stale.output.split())
    assert "uk-late-payment: reference rates: the Bank of England Bank Rate table" in text
    assert "eu-late-payment: reference rates: the ECB main refinancing" in text
    assert "default: reference" not in text
