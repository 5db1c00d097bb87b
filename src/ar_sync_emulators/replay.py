"""Idempotency keys in the emulators: which repeated writes get their first answer back.

Both platforms promise that a write repeated with its key is answered, not applied again
(QuickBooks `requestid`, Xero `Idempotency-Key`). `ReplayMode` can take that promise away, so
the fault suites prove the ledger alone keeps every write single.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime

from ar_sync_emulators.base import Clock, Recorded, Response, utcnow

REPLAY_ENV = "AR_SYNC_SANDBOX_REPLAY"
REPLAY_MODES = ("all", "email-only", "window=SECONDS", "off")
_EMAIL_ENDPOINTS = frozenset({"send", "email"})  # QBO invoice/{id}/send, Xero Invoices/{id}/Email


@dataclass(frozen=True)
class ReplayMode:
    """Which writes an emulator replays when their idempotency key comes back.

    `all` (the default) is what both platforms promise; `email-only`, `window=SECONDS` and
    `off` take that promise away (Xero documents neither the scope nor the retention of
    `Idempotency-Key`; a retry after the window is a new request), so a test can prove that the
    ledger alone keeps every write single.
    """

    kind: str = "all"  # all | email-only | window | off
    seconds: float = 0.0

    @classmethod
    def parse(cls, text: str | ReplayMode | None) -> ReplayMode:
        if isinstance(text, ReplayMode):
            return text
        value = (text or "all").strip().lower()
        if value in ("all", "email-only", "off"):
            return cls(value)
        if value.startswith("window="):
            try:
                seconds = float(value.split("=", 1)[1])
            except ValueError:
                seconds = -1.0
            if seconds >= 0:
                return cls("window", seconds)
        raise ValueError(f"key replay mode {text!r}: expected one of {', '.join(REPLAY_MODES)}")

    @classmethod
    def from_env(cls) -> ReplayMode:
        return cls.parse(os.environ.get(REPLAY_ENV))

    def replays(self, *, email: bool, age_seconds: float) -> bool:
        """Does a repeated request with a known key get the first answer back?"""
        if self.kind == "all":
            return True
        if self.kind == "email-only":
            return email
        if self.kind == "window":
            return age_seconds <= self.seconds
        return False

    def __str__(self) -> str:
        return f"window={self.seconds:g}" if self.kind == "window" else self.kind


def is_email_path(path: str) -> bool:
    """Is this the platform's own e-mail endpoint (replayed even in `email-only` mode)?"""
    return path.rstrip("/").rsplit("/", 1)[-1].lower() in _EMAIL_ENDPOINTS


class IdempotencyCache:
    """(key, method, path) -> the first answer, replayed for later requests with the key while
    the replay mode allows it (see `ReplayMode`; default from $AR_SYNC_SANDBOX_REPLAY, else all)."""

    def __init__(self, replay: ReplayMode | str | None = None, *,
                 clock: Clock | None = None) -> None:
        self.replay = ReplayMode.parse(replay) if replay is not None else ReplayMode.from_env()
        self.clock: Clock = clock or utcnow
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str, str], tuple[Recorded, datetime]] = {}
        self._key_locks: dict[tuple[str, str, str], threading.Lock] = {}

    def get(self, key: str, method: str, path: str) -> Recorded | None:
        with self._lock:
            found = self._answers.get((key, method.upper(), path))
        if found is None:
            return None
        recorded, at = found
        age = (self.clock() - at).total_seconds()
        return recorded if self.replay.replays(email=is_email_path(path), age_seconds=age) else None

    def put(self, key: str, method: str, path: str, response: Response) -> None:
        with self._lock:
            self._answers[(key, method.upper(), path)] = (
                Recorded(response.status, tuple(response.headers), response.body), self.clock())

    def lock(self, key: str, method: str, path: str) -> threading.Lock:
        """Serialises concurrent requests with one key, so the second one sees the first."""
        with self._lock:
            return self._key_locks.setdefault((key, method.upper(), path), threading.Lock())

    def __len__(self) -> int:
        with self._lock:
            return len(self._answers)
