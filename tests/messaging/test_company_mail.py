"""Each company sends as itself (issue 20): From, Reply-To, SMTP login and webhook secret were
process-wide, in the environment only. Now a company's own settings are stored encrypted like
its tokens, set by `ar-sync sending` or the admin API; the environment is the default."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sync.fakes import FakeConnector, FakePlatform, FaultPlan
from sync.harness import CIPHER
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.delivery.settings import company_mail_setup, mail_setup
from ar_sync.store.crypto import TokenCipher, TokenDecryptError, rotate_tokens
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.company_store import CompanyMail
from ar_sync.sync.connector import Connection
from ar_sync.sync.run import run_tenant
from ar_sync_emulators.smtp_sink import SmtpSink

from .helpers import NOW, invoice, rules

ALPHA = Connection(id="fake:alpha", platform="fake", external_id="alpha", name="Alpha")
BETA = Connection(id="fake:beta", platform="fake", external_id="beta", name="Beta")
SECRET = "pw-" + "s3cr3t-value-never-shown"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink().serve() as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "ar.db", cipher=CIPHER)
    for c in (ALPHA, BETA):
        s.save_connection(c)
    return s


def _env(sink: SmtpSink) -> dict[str, str]:
    return {"AR_SYNC_MAIL_FROM": "Ops Default <ops@host.example>",
            "AR_SYNC_MAIL_REPLY_TO": "ops-replies@host.example",
            "AR_SYNC_SMTP_HOST": sink.host, "AR_SYNC_SMTP_PORT": str(sink.port),
            "AR_SYNC_SMTP_SECURITY": "none"}


def test_each_company_sends_from_its_own_address(store: SQLiteStore, sink: SmtpSink,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store.save_company_mail(ALPHA.id, CompanyMail(from_address="Alpha Ltd <ar@alpha.example>"))
    for name, value in _env(sink).items():
        monkeypatch.setenv(name, value)
    for connection in (ALPHA, BETA):
        state = FakePlatform(invoices={i.id: i for i in [
            invoice(1, 1, tenant=connection.id, email=f"ap@{connection.external_id}.example")]})
        run_tenant(store, connection.id, now=NOW, policy=rules(),
                   mail=company_mail_setup(store, connection.id),
                   connector=FakeConnector(state, connection, FaultPlan(rng=random.Random(0))))
    sent = {m.recipients[0]: m for m in sink.snapshot()}
    alpha, beta = sent["ap@alpha.example"], sent["ap@beta.example"]
    assert alpha.mail_from == "ar@alpha.example"
    assert alpha.message["From"] == "Alpha Ltd <ar@alpha.example>"
    assert alpha.message["Reply-To"] == "Alpha Ltd <ar@alpha.example>"  # never the ops one
    assert beta.message["From"] == "Ops Default <ops@host.example>"  # the environment's
    assert beta.message["Reply-To"] == "ops-replies@host.example"


def test_company_secrets_override_the_environment_and_stay_secret(store: SQLiteStore) -> None:
    mail = CompanyMail(smtp_username="alpha-login-7f3", smtp_password=SECRET,
                       webhook_secret="w" * 32)
    store.save_company_mail(ALPHA.id, mail)
    setup = mail_setup({"AR_SYNC_MAIL_FROM": "Ops <ops@host.example>",
                        "AR_SYNC_SMTP_HOST": "smtp.host.example",
                        "AR_SYNC_SMTP_PASSWORD": "env-password",
                        "AR_SYNC_NOTIFY_WEBHOOK_SECRET": "env-secret-env-secret"},
                       store.company_mail(ALPHA.id))
    settings = setup.mailer.settings  # type: ignore[union-attr]
    assert (settings.username, settings.password) == ("alpha-login-7f3", SECRET)
    assert setup.webhooks.secret == "w" * 32  # type: ignore[union-attr]
    assert SECRET not in repr(mail) and SECRET not in repr(settings)
    assert SECRET not in str(mail.public()) and mail.public()["smtp_password_set"] is True
    raw = b"".join(p.read_bytes() for p in Path(store.path).parent.iterdir() if p.is_file())
    assert SECRET.encode() not in raw and b"alpha-login-7f3" not in raw  # sealed, all of it


def test_a_sealed_row_does_not_open_as_another_company(store: SQLiteStore) -> None:
    store.save_company_mail(ALPHA.id, CompanyMail(smtp_password=SECRET))
    blob = store._query("SELECT blob FROM company_mail WHERE connection_id = ?",
                        (ALPHA.id,))[0]["blob"]
    with store._tx() as db:  # an attacker copying a row inside the file
        db.execute("INSERT INTO company_mail VALUES (?, ?)", (BETA.id, blob))
    with pytest.raises(TokenDecryptError):
        store.company_mail(BETA.id)


def test_key_rotation_reseals_the_settings(tmp_path: Path) -> None:
    old, new = TokenCipher.generate_key(), TokenCipher.generate_key()
    store = SQLiteStore(tmp_path / "ar.db", cipher=TokenCipher(old))
    store.save_connection(ALPHA)
    store.save_company_mail(ALPHA.id, CompanyMail(smtp_password=SECRET))
    rotated = SQLiteStore(tmp_path / "ar.db", cipher=TokenCipher([new, old]))
    rotate_tokens(rotated)
    only_new = SQLiteStore(tmp_path / "ar.db", cipher=TokenCipher(new))
    assert only_new.company_mail(ALPHA.id).smtp_password == SECRET  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", [
    {"from_address": "Alpha <a@alpha.example>, Evil <e@evil.example>"},
    {"from_address": "=?utf-8?q?x?= <a@alpha.example>"}, {"webhook_secret": "short"},
    {"smtp_password": "two\nlines"}, {"unknown": "x"},
])
def test_bad_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CompanyMail.model_validate(bad)


def test_the_cli_sets_shows_and_clears(tmp_path: Path, store: SQLiteStore) -> None:
    db = str(store.path)
    secret_file = tmp_path / "smtp-password"
    secret_file.write_text(SECRET + "\n")
    runner = CliRunner()
    made = runner.invoke(app, ["sending", "set", "-t", ALPHA.id, "--from",
                               "Alpha <ar@alpha.example>", "--smtp-password-file",
                               str(secret_file), "--db", db])
    assert made.exit_code == 0, made.output
    shown = runner.invoke(app, ["sending", "show", "-t", ALPHA.id, "--db", db])
    assert "ar@alpha.example" in shown.output and SECRET not in shown.output
    assert "smtp_password_set    True" in shown.output
    bad = runner.invoke(app, ["sending", "set", "-t", ALPHA.id, "--from", "a@b, c@d",
                              "--db", db])
    assert bad.exit_code != 0 and "from_address" in str(bad.exception)
    runner.invoke(app, ["sending", "clear", "-t", ALPHA.id, "--db", db])
    assert SQLiteStore(store.path).company_mail(ALPHA.id) == CompanyMail()  # the CLI's key
