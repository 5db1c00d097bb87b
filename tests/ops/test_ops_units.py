"""Small operator-facing pieces: exit codes, settings lines, state files that cannot run code,
`--format` on payment plans."""

from __future__ import annotations

import json
import os
import pickle
import shlex
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.cli.commands.demo import env_lines
from ar_sync.cli.commands.sync import EXIT_FAILED, EXIT_LOCKED, exit_code
from ar_sync.cli.signals import EXIT_INTERRUPTED
from ar_sync.sync.run import LOCK_HELD, RunReport
from ar_sync_emulators.persist import load, save
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator


def _report(errors: list[str] | None = None, stopped: str | None = None) -> RunReport:
    return RunReport(connection_id="x", started_at=datetime(2026, 1, 1, tzinfo=UTC),
                     dry_run=False, errors=errors or [], stopped_early=stopped)


def test_exit_code_rule() -> None:
    ok, failed, locked = _report(), _report(["platform unavailable: 503"]), _report(
        stopped=LOCK_HELD)
    assert exit_code([ok, ok], interrupted=False) == 0
    assert exit_code([ok, locked], interrupted=False) == EXIT_LOCKED
    assert exit_code([locked, failed], interrupted=False) == EXIT_FAILED
    assert exit_code([failed], interrupted=True) == EXIT_INTERRUPTED == 130


def test_settings_lines_survive_a_shell() -> None:
    env = {"AR_SYNC_X_ENDPOINTS": json.dumps({"api": "http://127.0.0.1:1/v3", "q": "a'b c"}),
           "AR_SYNC_X_CLIENT_ID": "plain"}
    script = "\n".join(env_lines(env, export=True)) + "\nenv"
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                         env={"PATH": os.environ["PATH"]}, check=True).stdout
    seen = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("AR_SYNC_"))
    assert seen == env
    assert all(shlex.split(line.split("=", 1)[1]) for line in env_lines(env, export=False))


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo owned > /dev/null",))


def test_state_files_cannot_run_code(tmp_path: Path) -> None:
    path = tmp_path / "quickbooks.state"
    path.write_bytes(pickle.dumps({"company_name": _Evil()}))
    with pytest.raises(ValueError, match="not allowed"):
        load(path, QuickBooksEmulator())


def test_state_round_trip_keeps_data_not_runtime(tmp_path: Path) -> None:
    emulator = QuickBooksEmulator()
    emulator.company_name = "Kept Ltd"
    emulator.faults.fail_next(3)
    save(tmp_path / "q.state", emulator)
    fresh = QuickBooksEmulator()
    assert load(tmp_path / "q.state", fresh)
    assert fresh.company_name == "Kept Ltd"
    assert fresh.faults.pending() == 0  # injected faults belong to the old process
    assert fresh._lock is not emulator._lock


def test_payment_plan_list_takes_format(tmp_path: Path) -> None:
    from ar_sync.store.sqlite.store import SQLiteStore
    from ar_sync.sync.connector import Connection

    db = tmp_path / "ar.db"
    SQLiteStore(db).save_connection(Connection(id="xero:t", platform="xero", external_id="t"))
    result = CliRunner().invoke(app, ["payment-plan", "list", "--format", "json", "--db",
                                      str(db)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == []


def test_contact_show_takes_format(tmp_path: Path) -> None:
    from ar_sync.store.sqlite.store import SQLiteStore
    from ar_sync.sync.connector import Connection

    db = tmp_path / "ar.db"
    SQLiteStore(db).save_connection(Connection(id="xero:t", platform="xero", external_id="t"))
    runner = CliRunner()
    made = runner.invoke(app, ["contact", "set", "c1", "--email", "ap@one.example", "--db",
                               str(db)])
    assert made.exit_code == 0, made.output
    shown = runner.invoke(app, ["contact", "show", "--format", "json", "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    (contact,) = json.loads(shown.output)
    assert (contact["customer_id"], contact["email"]) == ("c1", "ap@one.example")
