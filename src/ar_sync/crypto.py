"""Encryption of OAuth tokens at rest (Fernet: AES-128-CBC + HMAC-SHA256, with timestamps).

The key comes from the environment (AR_SYNC_SECRET_KEY), SSM on AWS, or for the local CLI a
key file created once in the user's data folder with owner-only permissions.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from ar_sync.connector import TokenSet

KEY_ENV = "AR_SYNC_SECRET_KEY"


class TokenDecryptError(Exception):
    """Stored tokens cannot be read with this key (wrong key, or tampered data)."""


class TokenCipher:
    def __init__(self, key: bytes | str) -> None:
        self._fernet = Fernet(key.encode() if isinstance(key, str) else key)

    @staticmethod
    def generate_key() -> bytes:
        return Fernet.generate_key()

    def encrypt(self, tokens: TokenSet) -> str:
        return self._fernet.encrypt(tokens.model_dump_json().encode()).decode("ascii")

    def decrypt(self, blob: str) -> TokenSet:
        try:
            raw = self._fernet.decrypt(blob.encode("ascii"))
        except InvalidToken as exc:
            raise TokenDecryptError("stored tokens cannot be decrypted with this key") from exc
        return TokenSet.model_validate_json(raw)

    def __repr__(self) -> str:
        return "TokenCipher(<key hidden>)"


def local_cipher(data_dir: Path) -> TokenCipher:
    """The CLI's cipher: AR_SYNC_SECRET_KEY if set, else a key file made once in `data_dir`."""
    env = os.environ.get(KEY_ENV)
    if env:
        return TokenCipher(env)
    key_file = data_dir / "secret.key"
    if not key_file.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(TokenCipher.generate_key())
    return TokenCipher(key_file.read_bytes().strip())
