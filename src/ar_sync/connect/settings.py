"""Platform app settings from the environment (the CLI, the demo and Lambda all use this)."""

from __future__ import annotations

import json
import os

from ar_sync.domain.errors import SettingsError
from ar_sync.sync.connector import PlatformSettings

_DEFAULT_REDIRECT = "http://127.0.0.1:8765/callback"


def platform_settings(platform: str, env: dict[str, str] | None = None, *,
                      need_secret: bool = True) -> PlatformSettings:
    """Read AR_SYNC_<PLATFORM>_CLIENT_ID, _CLIENT_SECRET, _REDIRECT_URI, _WEBHOOK_KEY, _SCOPES
    (space-separated; the connector's defaults otherwise) and _ENDPOINTS (a JSON object pointing
    the connector somewhere else, e.g. at the emulators). `need_secret=False`: for building a
    consent URL only, which needs no client secret (the secret is then empty)."""
    source = os.environ if env is None else env
    prefix = f"AR_SYNC_{platform.upper()}_"
    client_id = source.get(prefix + "CLIENT_ID")
    client_secret = source.get(prefix + "CLIENT_SECRET") or ("" if not need_secret else None)
    if not client_id or client_secret is None:
        raise SettingsError(
            f"{prefix}CLIENT_ID and {prefix}CLIENT_SECRET must be set "
            f"(the app registered with {platform}; see "
            f"docs/getting-started.md#connect-a-real-company)"
        )
    endpoints_raw = source.get(prefix + "ENDPOINTS", "")
    try:
        endpoints = json.loads(endpoints_raw) if endpoints_raw else {}
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{prefix}ENDPOINTS is not a JSON object: {exc}") from exc
    if not isinstance(endpoints, dict):
        raise SettingsError(f"{prefix}ENDPOINTS must be a JSON object")
    return PlatformSettings(
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=source.get(prefix + "REDIRECT_URI", _DEFAULT_REDIRECT),
        webhook_key=source.get(prefix + "WEBHOOK_KEY"),
        scopes=tuple(source.get(prefix + "SCOPES", "").split()),
        endpoints={str(k): str(v) for k, v in endpoints.items()},
    )
