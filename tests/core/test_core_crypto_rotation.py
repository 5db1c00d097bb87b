"""Token keys: MultiFernet rotation, ciphertexts bound to their connection, `ar-sync keys`."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from ar_sync.cli import app
from ar_sync.store.crypto import (
    KeyMaterialError,
    TokenCipher,
    TokenDecryptError,
    parse_keys,
    rotate_tokens,
)
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import Connection, TokenSet

OLD, NEW = Fernet.generate_key(), Fernet.generate_key()
TOKENS = TokenSet(access_token="AT-secret", refresh_token="RT-secret",
                  expires_at=datetime(2026, 12, 1, tzinfo=UTC))


def _connection(cid: str) -> Connection:
    platform, external = cid.split(":")
    return Connection(id=cid, platform=platform, external_id=external, name=external,
                      business_id="biz")


def _store(path: Path, keys: str) -> SQLiteStore:
    return SQLiteStore(path, cipher=TokenCipher(keys))


def _blob(path: Path, cid: str) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute("SELECT blob FROM tokens WHERE connection_id = ?",
                              (cid,)).fetchone()[0])


def test_key_lists_parse_newest_first_and_bad_material_names_no_key() -> None:
    assert parse_keys(f"{NEW.decode()}, {OLD.decode()}") == [NEW, OLD]
    assert parse_keys(f"{NEW.decode()}\n{OLD.decode()}\n") == [NEW, OLD]
    with pytest.raises(KeyMaterialError, match="key 2 of 2") as caught:
        parse_keys(f"{NEW.decode()},not-a-key")
    assert NEW.decode() not in str(caught.value)
    with pytest.raises(KeyMaterialError):
        parse_keys("  ")
    assert "secret" not in repr(TokenCipher(NEW)) and NEW.decode() not in repr(TokenCipher(NEW))


@given(cid=st.text(min_size=1, max_size=40), other=st.text(min_size=1, max_size=40))
def test_a_blob_decrypts_only_for_the_row_it_was_written_for(cid: str, other: str) -> None:
    cipher = TokenCipher([NEW])
    blob = cipher.encrypt(TOKENS, bound_to=cid)
    assert cipher.decrypt(blob, bound_to=cid) == TOKENS
    if other != cid:
        with pytest.raises(TokenDecryptError, match="another connection"):
            cipher.decrypt(blob, bound_to=other)


def test_a_blob_copied_to_another_connections_row_does_not_decrypt(tmp_path: Path) -> None:
    path = tmp_path / "ar.db"
    store = _store(path, NEW.decode())
    for cid in ("xero:victim", "xero:attacker"):
        store.save_connection(_connection(cid))
        assert store.save_tokens(cid, TOKENS.model_copy(update={"access_token": cid}),
                                 expected_version=-1)
    with sqlite3.connect(path) as db:  # someone with table access swaps the blobs
        db.execute("UPDATE tokens SET blob = ? WHERE connection_id = ?",
                   (_blob(path, "xero:victim"), "xero:attacker"))
    with pytest.raises(TokenDecryptError):
        store.load_tokens("xero:attacker")
    loaded = store.load_tokens("xero:victim")
    assert loaded is not None and loaded.access_token == "xero:victim"


def test_unbound_legacy_blobs_are_read_only_where_allowed() -> None:
    legacy = Fernet(NEW).encrypt(TOKENS.model_dump_json().encode()).decode()
    with pytest.raises(TokenDecryptError, match="not bound"):
        TokenCipher(NEW).decrypt(legacy, bound_to="c")
    assert TokenCipher(NEW, accept_unbound=True).decrypt(legacy, bound_to="c") == TOKENS


def test_rotation_old_rows_still_decrypt_then_rotate_rewrites_them(tmp_path: Path) -> None:
    path = tmp_path / "ar.db"
    before = _store(path, OLD.decode())
    cids = ["quickbooks:1", "xero:a", "xero:b"]
    for cid in cids:
        before.save_connection(_connection(cid))
        assert before.save_tokens(cid, TOKENS, expected_version=-1)
    before.save_connection(_connection("xero:no-tokens"))

    both = _store(path, f"{NEW.decode()},{OLD.decode()}")  # step 1: new key in front
    cipher = TokenCipher([NEW, OLD])
    for cid in cids:
        assert both.load_tokens(cid) is not None  # old rows still decrypt
        assert not cipher.is_current(_blob(path, cid))
    assert rotate_tokens(both) == (3, 1)  # step 2: re-encrypt
    for cid in cids:
        assert cipher.is_current(_blob(path, cid))

    only_new = _store(path, NEW.decode())  # step 3: the old key is dropped
    for cid in cids:
        loaded = only_new.load_tokens(cid)
        assert loaded is not None
        assert (loaded.access_token, loaded.refresh_token) == ("AT-secret", "RT-secret")
    with pytest.raises(TokenDecryptError):  # and the old key alone no longer reads them
        _store(path, OLD.decode()).load_tokens(cids[0])


def test_rotation_loses_no_refresh_that_races_it(tmp_path: Path) -> None:
    """A refresh saved between rotate's read and write wins; rotate re-reads and rewrites it."""
    path = tmp_path / "ar.db"
    store = _store(path, f"{NEW.decode()},{OLD.decode()}")
    store.save_connection(_connection("xero:a"))
    assert store.save_tokens("xero:a", TOKENS, expected_version=-1)
    real_load = store.load_tokens
    raced = []

    def load_then_refresh(cid: str) -> TokenSet | None:
        got = real_load(cid)
        if not raced and got is not None:
            raced.append(True)
            fresh = TOKENS.model_copy(update={"access_token": "AT-refreshed"})
            assert store.save_tokens(cid, fresh, expected_version=got.version)
        return got

    store.load_tokens = load_then_refresh  # type: ignore[method-assign]
    assert rotate_tokens(store) == (1, 0)
    loaded = real_load("xero:a")
    assert loaded is not None and loaded.access_token == "AT-refreshed"


def test_cli_keys_generate_and_rotate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "ar.db"
    monkeypatch.setenv("AR_SYNC_SECRET_KEY", OLD.decode())
    store = SQLiteStore(db)
    store.save_connection(_connection("xero:a"))
    assert store.save_tokens("xero:a", TOKENS, expected_version=-1)
    runner = CliRunner()
    generated = runner.invoke(app, ["keys", "generate"])
    assert generated.exit_code == 0
    new_key = generated.stdout.strip()
    Fernet(new_key)  # a valid key
    monkeypatch.setenv("AR_SYNC_SECRET_KEY", f"{new_key},{OLD.decode()}")
    rotated = runner.invoke(app, ["keys", "rotate", "--db", str(db)])
    assert rotated.exit_code == 0, rotated.output
    assert "re-encrypted 1 token set" in rotated.stdout
    assert TokenCipher(new_key).is_current(_blob(db, "xero:a"))
    assert json.dumps(TOKENS.access_token) not in rotated.stdout
