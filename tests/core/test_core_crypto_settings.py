"""Token encryption at rest, and platform settings from the environment."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ar_sync.connect.settings import platform_settings
from ar_sync.domain.errors import SettingsError
from ar_sync.store.crypto import TokenCipher, TokenDecryptError, local_cipher
from ar_sync.sync.connector import TokenSet


def test_cipher_round_trip_and_no_plaintext() -> None:
    cipher = TokenCipher(TokenCipher.generate_key())
    tokens = TokenSet(access_token="AT-plain", refresh_token="RT-plain",
                      expires_at=datetime(2026, 1, 1, tzinfo=UTC), version=3)
    blob = cipher.encrypt(tokens, bound_to="c1")
    assert "plain" not in blob
    assert cipher.decrypt(blob, bound_to="c1") == tokens
    with pytest.raises(TokenDecryptError):
        TokenCipher(TokenCipher.generate_key()).decrypt(blob, bound_to="c1")


def test_local_key_file_is_created_once_owner_only(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AR_SYNC_SECRET_KEY", raising=False)
    first = local_cipher(tmp_path)
    key_file = tmp_path / "secret.key"
    assert key_file.stat().st_mode & 0o077 == 0
    tokens = TokenSet(access_token="a", refresh_token="r", expires_at=datetime.now(UTC))
    again = local_cipher(tmp_path)
    assert again.decrypt(first.encrypt(tokens, bound_to="c"), bound_to="c") == tokens


def test_platform_settings_from_env() -> None:
    env = {"AR_SYNC_XERO_CLIENT_ID": "id", "AR_SYNC_XERO_CLIENT_SECRET": "shh",
           "AR_SYNC_XERO_ENDPOINTS": '{"api": "http://127.0.0.1:1/api.xro/2.0"}'}
    settings = platform_settings("xero", env)
    assert settings.endpoints["api"].startswith("http://127.0.0.1")
    assert "shh" not in repr(settings)
    assert settings.scopes == ()
    scoped = platform_settings(
        "xero", {**env, "AR_SYNC_XERO_SCOPES": "openid accounting.transactions"})
    assert scoped.scopes == ("openid", "accounting.transactions")
    with pytest.raises(SettingsError, match="CLIENT_SECRET"):
        platform_settings("quickbooks", {"AR_SYNC_QUICKBOOKS_CLIENT_ID": "x"})
    with pytest.raises(SettingsError, match="JSON"):
        platform_settings("xero", {**env, "AR_SYNC_XERO_ENDPOINTS": "{nope"})
