"""Errors a person can fix, turned into a message and a hint instead of a traceback.

The library raises typed errors (a bad rules file, a store key that does not match, a company
that must be reconnected); the CLI is the one place that knows what to tell the user about
them. Anything not listed here is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ar_sync.connect.onboarding import OnboardingError
from ar_sync.domain.errors import ReauthorizationRequiredError, SettingsError
from ar_sync.rules.policy import PolicyError
from ar_sync.store.crypto import KEY_ENV, TokenDecryptError, key_file
from ar_sync.store.sqlite.store import SchemaVersionError
from ar_sync.sync.connector import UnknownConnectorError

_HINTS: tuple[tuple[type[BaseException], str, str], ...] = (
    # (error type, message prefix, hint)
    (PolicyError, "rules", "fix the rules file at the line shown (`ar-sync rules docs` lists "
                           "every field), or name a shipped rule set such as `default`"),
    (TokenDecryptError, "store", f"set {KEY_ENV} to the key list the tokens were encrypted "
                                 "with (after `keys rotate`: the new list, newest first); "
                                 "connect again only if that key is lost"),
    (ReauthorizationRequiredError, "", "connect the company again: `ar-sync connect "
                                       "quickbooks|xero`"),
    (SettingsError, "", "or try `ar-sync demo`, which needs no account"),
    (UnknownConnectorError, "", "`ar-sync connectors` lists what is installed"),
    (OnboardingError, "", "start again with `ar-sync connect quickbooks|xero`"),
    (SchemaVersionError, "store", "this store was written by a newer ar-sync: upgrade, or "
                                  "use another --db"),
    (sqlite3.Error, "cannot use the store", "--db must name a SQLite file in a folder you "
                                            "can write to"),
)


def key_hint(data_dir: Path) -> str:
    """What to do when stored tokens do not open: set the key (a rotation through the
    variable changed it), reconnecting is the last resort."""
    if os.environ.get(KEY_ENV):
        where = f"{KEY_ENV} does not hold the key they were encrypted with"
    else:
        where = (f"the key file {key_file(data_dir)} does not hold the key they were encrypted "
                 f"with: set {KEY_ENV}")
    return f"{where} (after `keys rotate`, the new key list); reconnect only if it is lost"


def user_error_for(exc: BaseException) -> UserError | None:
    """The user-facing version of `exc`, or None if it is not something a user can fix."""
    if isinstance(exc, UserError):
        return exc
    for kind, prefix, hint in _HINTS:
        if isinstance(exc, kind):
            message = str(exc) or type(exc).__name__
            return UserError(f"{prefix}: {message}" if prefix else message, hint=hint)
    return None


__all__ = ["UserError", "user_error_for"]


class UserError(Exception):
    """An error the user can fix: printed as a message with a hint, never a traceback."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
