"""Hostile or broken rules files are refused with file:line errors, never a traceback,
never unbounded memory, never a file outside the rules folder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.rules.policy import PolicyError, load_policy, parse_policy

OK = "extends: default\n"


def _error(path: Path | str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        load_policy(str(path))
    return caught.value


def test_size_limit_is_checked_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("w", encoding="utf-8") as handle:
        handle.write(OK)
        handle.write("# padding\n" * 200_000)  # 2 MB of comments: valid YAML
    started = time.perf_counter()
    err = _error(big)
    assert time.perf_counter() - started < 1.0
    assert "over the 1,000,000-byte limit" in str(err) and str(big) in str(err)


def test_size_limit_can_be_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(OK + "# x\n" * 400, encoding="utf-8")
    monkeypatch.setenv("AR_SYNC_MAX_RULES_BYTES", "1000")
    assert "limit" in str(_error(rules))
    monkeypatch.setenv("AR_SYNC_MAX_RULES_BYTES", "100000")
    assert load_policy(str(rules)).reminders


def test_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    rules = tmp_path / "latin1.yaml"
    rules.write_bytes(b"extends: default\ncompany_name: Caf\xe9 Ltd\n")
    err = _error(rules)
    assert f"{rules}:2:" in str(err) and "UTF-8" in str(err)


@pytest.mark.parametrize("body", [
    "reminders: " + "[" * 5000 + "]" * 5000 + "\n",
    "reminders:\n" + "".join(" " * (2 * i) + f"k{i}:\n" for i in range(1, 300)),
    "reminders:\n" + "- " * 5000 + "x\n",
])
def test_deep_nesting_is_a_user_error_with_a_line(tmp_path: Path, body: str) -> None:
    rules = tmp_path / "deep.yaml"
    rules.write_text(OK + body, encoding="utf-8")
    err = _error(rules)
    assert err.issues[0].line is not None and err.issues[0].line >= 2
    assert "nested" in str(err)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_is_rejected(tmp_path: Path, text: str) -> None:
    rules = tmp_path / "empty.yaml"
    rules.write_text(text, encoding="utf-8")
    assert "empty" in str(_error(rules))


def test_extends_stays_in_the_rules_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(OK, encoding="utf-8")
    folder = tmp_path / "rules"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "base.yaml").write_text(OK, encoding="utf-8")
    (folder / "link.yaml").symlink_to(outside)
    cases = {
        "/etc/passwd": "shipped rule set name or a relative path",
        str(outside): "shipped rule set name or a relative path",
        "../outside.yaml": "outside this file's folder",
        "link.yaml": "outside this file's folder",
        "sub/../../outside.yaml": "outside this file's folder",
    }
    for target, message in cases.items():
        rules = folder / "my.yaml"
        rules.write_text(f"extends: {target}\n", encoding="utf-8")
        err = _error(rules)
        assert message in str(err), target
        assert err.issues[0].file == str(rules) and err.issues[0].line == 1
        assert err.issues[0].path == "extends"
    rules.write_text("extends: sub/base.yaml\n", encoding="utf-8")
    assert load_policy(str(rules)).reminders  # a file under the folder is fine
    rules.write_text("extends: gentle\n", encoding="utf-8")
    assert load_policy(str(rules)).reminders  # and so is a shipped set


def test_errors_name_the_file_holding_them_and_the_chain(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("extends: mid.yaml\n", encoding="utf-8")
    (tmp_path / "mid.yaml").write_text(
        "extends: default\nreminders:\n  - {name: late, days: soon}\n", encoding="utf-8")
    top = tmp_path / "top.yaml"
    top.write_text("extends: base.yaml\n", encoding="utf-8")
    err = _error(top)
    issue = err.issues[0]
    assert issue.file.endswith("mid.yaml") and issue.line == 3
    assert "reminders[0].days" in str(err) or issue.path.startswith("reminders")
    assert "top.yaml extends" in issue.message and "extends" in issue.message
    assert "mid.yaml" in issue.message
    # a syntax error deep in the chain too
    (tmp_path / "mid.yaml").write_text("extends: default\nreminders: [\n", encoding="utf-8")
    err = _error(top)
    assert err.issues[0].file.endswith("mid.yaml")
    assert "(via " in str(err) and "top.yaml extends" in str(err)


def test_nul_byte_keeps_line_and_field() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy("extends: default\ncompany_name: Acme\x00 Ltd\n", "nul.yaml")
    issue = caught.value.issues[0]
    assert (issue.file, issue.line, issue.path) == ("nul.yaml", 2, "company_name")


def test_impossible_date_keeps_line_and_field() -> None:
    text = "extends: default\ncalendar:\n  extra_holidays:\n    - 2026-12-24\n    - 2026-02-30\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "dates.yaml")
    issue = caught.value.issues[0]
    assert issue.line == 5 and issue.path == "calendar.extra_holidays[1]"


def test_rules_validate_prints_errors_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"extends: default\n" + b"k: " + b"[" * 3000 + b"\n")
    result = CliRunner().invoke(app, ["rules", "validate", str(bad)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output and "bad.yaml:2" in result.output
    assert os.fspath(bad) in result.output
