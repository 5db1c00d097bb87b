"""The child side of test_xero_processes: one organisation's run in its own process."""

from __future__ import annotations

from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from journey_support import old_journey

from ar_sync.store.crypto import TokenCipher
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.connector import PlatformSettings
from ar_sync.sync.run import run_tenant


def run_organisation(db: str, key: str, settings: PlatformSettings, connection_id: str,
                     barrier: Barrier, out: Any) -> None:
    """Wait for the others, then run the organisation once; put (id, errors, stopped)."""
    store = SQLiteStore(Path(db), cipher=TokenCipher(key))
    try:
        barrier.wait(30)
        report = run_tenant(store, connection_id, settings=settings,
                            policy=old_journey("platform-email"))
        out.put((connection_id, report.errors, report.stopped_early, report.api_calls))
    except BaseException as exc:  # reported to the parent, never swallowed
        out.put((connection_id, [repr(exc)], "raised", 0))
    finally:
        store.close()
