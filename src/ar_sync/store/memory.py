"""A dict-backed TokenStore with versioned writes: for tests and one-shot tools."""

from __future__ import annotations

import threading

from ar_sync.sync.connector import TokenSet


class MemoryTokenStore:
    def __init__(self) -> None:
        self._tokens: dict[str, TokenSet] = {}
        self._lock = threading.Lock()
        self.writes = 0

    def load_tokens(self, connection_id: str) -> TokenSet | None:
        with self._lock:
            return self._tokens.get(connection_id)

    def save_tokens(self, connection_id: str, tokens: TokenSet, *, expected_version: int) -> bool:
        with self._lock:
            current = self._tokens.get(connection_id)
            if (current.version if current is not None else -1) != expected_version:
                return False
            stored = tokens.model_copy(update={"version": expected_version + 1})
            self._tokens[connection_id] = stored
            self.writes += 1
            return True
