"""Drive the real CLI (subprocesses) against `ar-sync sandbox serve` (a subprocess too)."""

from __future__ import annotations

import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ar_sync.connect.settings import platform_settings
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync_emulators.base import Effect
from ar_sync_emulators.demo import DEMO_NOW, connect_through_oauth
from ar_sync_emulators.persist import load
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator
from ar_sync_emulators.xero.server import XeroEmulator

AR_SYNC = [str(Path(sys.executable).parent / "ar-sync")]
TODAY = "2026-11-16"  # the demo company's day (ar_sync_emulators.books.DEMO_TODAY)


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    state: Path

    errors: Path | None = None  # the sandbox's stderr

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # where it hangs: `sandbox serve` dumps every thread's stack on SIGUSR1
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(2)
            self.process.kill()
            self.process.wait(timeout=30)
            dump = self.errors.read_text(encoding="utf-8")[-6000:] if self.errors else ""
            raise AssertionError(f"the sandbox did not stop within {timeout} s:\n{dump}"
                                 ) from None


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition("=")
        env[name] = shlex.split(value)[0]
    return env


@contextmanager
def sandbox(folder: Path, *extra: str) -> Iterator[Served]:
    """`ar-sync sandbox serve --state folder/state --env-file folder/sandbox.env`."""
    env_file = folder / "sandbox.env"
    env_file.unlink(missing_ok=True)
    state = folder / "state"
    # stderr into a file, never an unread pipe: a full pipe would block the sandbox (after a
    # SIGSTOP, every request it then answers to a gone client logs a broken pipe)
    errors = (folder / "sandbox.err").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [*AR_SYNC, "sandbox", "serve", "--state", str(state), "--env-file", str(env_file),
         "--json", *extra], stdout=subprocess.DEVNULL, stderr=errors)
    errors.close()
    served = Served(process, {}, state, folder / "sandbox.err")
    try:
        wait_for(lambda: env_file.exists() or process.poll() is not None, 60,
                 "the sandbox to start")
        assert process.poll() is None, (folder / "sandbox.err").read_text(encoding="utf-8")
        served.env = read_env_file(env_file)
        yield served
    finally:
        served.stop()


def connect(db: Path, env: dict[str, str], platforms: tuple[str, ...]) -> None:
    """The real OAuth flow against the served emulators, into the CLI's store file."""
    store = SQLiteStore(db)
    for platform in platforms:
        # connected on the demo's day (the runs say --today TODAY): a company goes live the
        # day it connects, and a go-live date still to come would hold every write
        connect_through_oauth(store, platform, platform_settings(platform, env), now=DEMO_NOW)
    store.close()


@dataclass
class Cli:
    db: Path
    env: dict[str, str]
    lease: float = 300.0
    log: list[str] = field(default_factory=list)

    def _env(self) -> dict[str, str]:
        # the sandbox's rules e-mail customers: without a sender a run is a configuration
        # error (exit 1), so the messages go to a folder next to the store
        mail = {"AR_SYNC_MAIL_FROM": "Demo Ltd <ar@demo.example>",
                "AR_SYNC_MAIL_TRANSPORT": "folder",
                "AR_SYNC_MAIL_FOLDER": str(self.db.parent / "outbox")}
        return {**os.environ, **mail, **self.env, "AR_SYNC_LEASE_SECONDS": str(self.lease),
                "COLUMNS": "200"}

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([*AR_SYNC, *args, "--db", str(self.db)], env=self._env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*AR_SYNC, *args, "--db", str(self.db)], env=self._env(),
                              capture_output=True, text=True, timeout=timeout)
        self.log.append(done.stdout + done.stderr)
        return done


def ledger_states(db: Path) -> Counter[str]:
    with sqlite3.connect(db) as conn:
        return Counter(dict(conn.execute("SELECT state, COUNT(*) FROM ledger GROUP BY state")))


def done_keys(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {k for (k,) in conn.execute("SELECT key FROM ledger WHERE state = 'done'")}


def locks(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT name, owner FROM locks"))


def effects(state: Path, learn: set[str] | None = None) -> list[Effect]:
    """What the emulators held when they were last saved (run after stopping them); `learn`:
    the action keys the ledger knows, to resolve batched fees' short references."""
    found: list[Effect] = []
    for name, emulator in (("quickbooks", QuickBooksEmulator()), ("xero", XeroEmulator())):
        if load(state / f"{name}.state", emulator):
            emulator.learn_keys(learn or set())
            found += emulator.effects()
    return found


def platform_done_keys(db: Path) -> set[str]:
    """Keys of the writes the ledger has done on a platform (not ar-sync's own e-mails)."""
    with sqlite3.connect(db) as conn:
        return {k for (k,) in conn.execute(
            "SELECT key FROM ledger WHERE state = 'done' AND kind IN"
            " ('note', 'late_fee', 'escalate', 'reminder_email', 'waive_fee')")}


def duplicates(found: list[Effect]) -> dict[str, int]:
    counts = Counter(e.key for e in found if e.key)
    return {k: n for k, n in counts.items() if n > 1}
