"""Secrets read at run time from SSM Parameter Store, never from the template or environment.

The deployed environment holds parameter *names* only (`AR_SYNC_XERO_CLIENT_SECRET_PARAMETER=
/ar-sync/prod/xero/client-secret`); a function reads the SecureString values it needs through
Powertools (decrypted by KMS, cached for MAX_AGE seconds, so a changed secret is picked up
without a deploy). Each function's role may read only its own parameters (serverless.yml).
A plain `AR_SYNC_<PLATFORM>_<FIELD>` variable still works for local runs and tests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ar_sync.connect.settings import platform_settings as settings_from_env
from ar_sync.store.crypto import KEY_ENV, TokenCipher, TokenDecryptError
from ar_sync.sync.connector import PlatformSettings, TokenSet

MAX_AGE = 300  # seconds a value is cached in the container; rotation docs wait longer
PARAMETER_SUFFIX = "_PARAMETER"
APP_FIELDS = ("CLIENT_ID", "CLIENT_SECRET")  # connect, callback and sync read these
SECRET_FIELDS = (*APP_FIELDS, "WEBHOOK_KEY")  # the webhook functions read only the last


class SecretError(RuntimeError):
    """A parameter the deployment names is missing or empty (the message shows no value)."""


def parameter_value(name: str, *, force: bool = False) -> str:
    """A decrypted SSM parameter, cached by Powertools for MAX_AGE seconds."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_parameter(name, decrypt=True, max_age=MAX_AGE, force_fetch=force)
    if not value:
        raise SecretError(f"SSM parameter {name} is empty")
    return str(value)


def resolved_env(platform: str, fields: Sequence[str],
                 env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment with each `AR_SYNC_<PLATFORM>_<FIELD>_PARAMETER` replaced by the value
    of the parameter it names (as `AR_SYNC_<PLATFORM>_<FIELD>`)."""
    source = dict(os.environ if env is None else env)
    prefix = f"AR_SYNC_{platform.upper()}_"
    for field in fields:
        name = source.get(prefix + field + PARAMETER_SUFFIX)
        if name:
            source[prefix + field] = parameter_value(name)
    return source


def platform_settings(platform: str) -> PlatformSettings:
    """The app registration, with its secrets fetched at run time (not the webhook key: the
    functions that need these may not read it)."""
    return settings_from_env(platform, resolved_env(platform, APP_FIELDS))


def consent_settings(platform: str) -> PlatformSettings:
    """What building a consent URL needs: the client id, not the client secret (the connect
    function's role may not read it)."""
    return settings_from_env(platform, resolved_env(platform, ("CLIENT_ID",)),
                             need_secret=False)


def webhook_key(platform: str) -> str | None:
    """Only the webhook key: a webhook function may read nothing else."""
    return resolved_env(platform, ("WEBHOOK_KEY",)).get(f"AR_SYNC_{platform.upper()}_WEBHOOK_KEY")


def key_material(parameter: str, *, force: bool = False) -> str:
    """The token keys: AR_SYNC_SECRET_KEY if set (local runs), else the SecureString."""
    return os.environ.get(KEY_ENV) or parameter_value(parameter, force=force)


class RuntimeCipher:
    """A TokenCipher that follows the key parameter: read on first use (a function that never
    touches tokens never reads the key), rebuilt when the cached key list changes, and re-read
    at once when a blob does not decrypt, since a rotation may have put a key in front that
    this container has not seen yet."""

    def __init__(self, parameter: str) -> None:
        self._parameter = parameter
        self._material: str | None = None
        self._cipher: TokenCipher | None = None

    def _current(self, *, force: bool = False) -> TokenCipher:
        material = key_material(self._parameter, force=force)
        if self._cipher is None or material != self._material:
            self._material, self._cipher = material, TokenCipher(material)
        return self._cipher

    def encrypt(self, tokens: TokenSet, *, bound_to: str) -> str:
        return self._current().encrypt(tokens, bound_to=bound_to)

    def decrypt(self, blob: str, *, bound_to: str) -> TokenSet:
        return TokenSet.model_validate(self.unseal(blob, bound_to=bound_to))

    def seal(self, payload: Mapping[str, Any], *, bound_to: str) -> str:
        return self._current().seal(payload, bound_to=bound_to)

    def unseal(self, blob: str, *, bound_to: str) -> dict[str, Any]:
        try:
            return self._current().unseal(blob, bound_to=bound_to)
        except TokenDecryptError:
            before = self._material
            cipher = self._current(force=True)
            if self._material == before:
                raise
            return cipher.unseal(blob, bound_to=bound_to)

    def __repr__(self) -> str:
        return f"RuntimeCipher({self._parameter!r})"
