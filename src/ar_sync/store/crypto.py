"""Encryption of OAuth tokens at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a MultiFernet.

Key material is one or more Fernet keys separated by commas or whitespace, **newest first**: the
first key encrypts, every key decrypts, so a key is rotated by putting a new one in front,
re-encrypting the rows (`ar-sync keys rotate`) and then dropping the old one. It comes from the
environment (AR_SYNC_SECRET_KEY), an SSM SecureString on AWS, or for the local CLI a key file
created once in the user's data folder with owner-only permissions.

Each ciphertext is bound to the row it was written for: the authenticated plaintext carries the
row's id (the connection id) and decryption checks it, so a blob copied into another
connection's row does not decrypt there.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ar_sync.domain.errors import TokensUnreadableError
from ar_sync.sync.company_store import CompanyMail
from ar_sync.sync.connector import Connection, TokenSet, TokenStore

KEY_ENV = "AR_SYNC_SECRET_KEY"
_SEPARATORS = re.compile(r"[\s,]+")


class TokenDecryptError(TokensUnreadableError):
    """Stored tokens cannot be read with these keys (wrong key, tampered or misplaced data)."""


class KeyMaterialError(ValueError):
    """The configured key material is not a list of Fernet keys (the message shows no key)."""


def parse_keys(material: bytes | str | Sequence[bytes | str]) -> list[bytes]:
    """Fernet keys from 'k1,k2' / 'k1 k2' text or a sequence, newest first; at least one."""
    if isinstance(material, bytes | str):
        text = material.decode() if isinstance(material, bytes) else material
        raw: list[bytes | str] = [k for k in _SEPARATORS.split(text.strip()) if k]
    else:
        raw = list(material)
    keys = [k.encode() if isinstance(k, str) else k for k in raw]
    if not keys:
        raise KeyMaterialError("no encryption key configured")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError) as exc:
            raise KeyMaterialError(
                f"key {position} of {len(keys)} is not a Fernet key (32 url-safe base64 bytes)"
            ) from exc
    return keys


class SecretCipher(Protocol):
    """What a store needs to keep secrets at rest: TokenCipher, or aws.secrets.RuntimeCipher."""

    def encrypt(self, tokens: TokenSet, *, bound_to: str) -> str: ...

    def decrypt(self, blob: str, *, bound_to: str) -> TokenSet: ...

    def seal(self, payload: Mapping[str, Any], *, bound_to: str) -> str: ...

    def unseal(self, blob: str, *, bound_to: str) -> dict[str, Any]: ...


class TokenCipher:
    """Encrypts a TokenSet for one row; decrypts only for that same row.

    `accept_unbound` reads blobs written before binding existed (plain TokenSet JSON). Only the
    local CLI store allows it, so an existing SQLite file keeps working; `ar-sync keys rotate`
    rewrites such rows bound.
    """

    def __init__(self, keys: bytes | str | Sequence[bytes | str], *,
                 accept_unbound: bool = False) -> None:
        parsed = parse_keys(keys)
        self._fernet = MultiFernet([Fernet(k) for k in parsed])
        self._primary = Fernet(parsed[0])
        self.key_count = len(parsed)
        self._accept_unbound = accept_unbound

    @staticmethod
    def generate_key() -> bytes:
        return Fernet.generate_key()

    def encrypt(self, tokens: TokenSet, *, bound_to: str) -> str:
        return self.seal(tokens.model_dump(mode="json"), bound_to=bound_to)

    def decrypt(self, blob: str, *, bound_to: str) -> TokenSet:
        return TokenSet.model_validate(self.unseal(blob, bound_to=bound_to))

    def seal(self, payload: Mapping[str, Any], *, bound_to: str) -> str:
        """Any JSON-able secret (tokens, a company's mail secrets), bound to its row."""
        plaintext = json.dumps({"bound_to": bound_to, "tokens": dict(payload)},
                               separators=(",", ":"))
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def unseal(self, blob: str, *, bound_to: str) -> dict[str, Any]:
        try:
            raw = json.loads(self._fernet.decrypt(blob.encode("ascii")))
        except (InvalidToken, ValueError) as exc:
            raise TokenDecryptError("stored secrets cannot be decrypted with these keys: set "
                                    f"{KEY_ENV} to the key they were written with") from exc
        if isinstance(raw, dict) and "bound_to" in raw:
            if raw["bound_to"] != bound_to:
                raise TokenDecryptError("stored secrets belong to another connection or row")
            return dict(raw["tokens"])
        if not self._accept_unbound or not isinstance(raw, dict):
            raise TokenDecryptError("stored tokens are not bound to their connection")
        return raw

    def is_current(self, blob: str) -> bool:
        """True when the newest key wrote `blob` (nothing for a rotation to do)."""
        try:
            self._primary.decrypt(blob.encode("ascii"))
        except InvalidToken:
            return False
        return True

    def __repr__(self) -> str:
        return f"TokenCipher(<{self.key_count} key(s) hidden>)"


KEY_FILE = "secret.key"


def key_file(data_dir: Path) -> Path:
    """Where the CLI keeps its key list when AR_SYNC_SECRET_KEY is not set."""
    return data_dir / KEY_FILE


def local_cipher(data_dir: Path) -> TokenCipher:
    """The CLI's cipher: AR_SYNC_SECRET_KEY if set, else a key file made once in `data_dir`."""
    env = os.environ.get(KEY_ENV)
    if env:
        return TokenCipher(env, accept_unbound=True)
    path = key_file(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(TokenCipher.generate_key())
    return TokenCipher(path.read_bytes(), accept_unbound=True)


def write_key_file(data_dir: Path, material: str) -> Path:
    """Replace the key file with `material` (checked keys, newest first), owner-only, in one
    rename: a run started meanwhile reads the old list or the new one, never half."""
    keys = parse_keys(material)
    path = key_file(data_dir)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(b",".join(keys))
    os.replace(tmp, path)
    return path


class RotatableStore(TokenStore, Protocol):
    def list_connections(self) -> list[Connection]: ...

    def company_mail(self, connection_id: str) -> CompanyMail | None: ...

    def save_company_mail(self, connection_id: str, mail: CompanyMail) -> None: ...


def rotate_tokens(store: RotatableStore, *, attempts: int = 3) -> tuple[int, int]:
    """Re-encrypt every connection's tokens with the newest key (and bound to its row).

    Reads with any configured key and writes back through the store's versioned save, so a
    refresh racing the rotation wins and is simply read again; each company's sealed sending
    settings are rewritten too. Returns (rewritten, without tokens). Once it has run, the old
    key can be removed from the key material.
    """
    rewritten = missing = 0
    # a token row shared by the companies of one consent is rewritten once
    for key in dict.fromkeys(c.token_key for c in store.list_connections()):
        for _ in range(attempts):
            tokens = store.load_tokens(key)
            if tokens is None:
                missing += 1
                break
            if store.save_tokens(key, tokens, expected_version=tokens.version):
                rewritten += 1
                break
        else:
            raise TokenDecryptError(f"{key}: tokens kept changing; run rotate again")
    for connection in store.list_connections():  # sealed sending settings, with the new key
        mail = store.company_mail(connection.id)
        if mail is not None:
            store.save_company_mail(connection.id, mail)
    return rewritten, missing
