"""What the call benchmarks (bench_calls_quickbooks.py, bench_calls_xero.py) share: the
emulator served with the company connected through the real OAuth flow, a timed run whose
calls are cross-checked against the emulator's own counter, and what they print of a run."""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from ar_sync.delivery.transports import FolderMailer
from ar_sync.messages.mime import Sender
from ar_sync.messages.sending import MailSetup
from ar_sync.rules.policy import Policy
from ar_sync.store.sqlite.store import SQLiteStore
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.connector import Connection, PlatformSettings
from ar_sync.sync.run import ActionOutcome, RunReport, run_tenant
from ar_sync_emulators.demo import DEMO_NOW, REDIRECT_URI, connect_through_oauth
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator
from ar_sync_emulators.xero.server import XeroEmulator


@dataclass
class Connected:
    emu: QuickBooksEmulator | XeroEmulator
    store: SQLiteStore
    settings: PlatformSettings
    connection: Connection
    api_path: str  # the API's calls in the emulator's counter contain this
    mail: MailSetup | None = None  # customer e-mails go to a folder (not platform calls)

    def run(self, policy: Policy, offset: float,
            budget: CallBudget | None = None) -> tuple[RunReport, float]:
        """run_tenant at DEMO_NOW + `offset` seconds: its report and how long it took."""
        self.emu.counters.reset()
        started = time.perf_counter()
        report = run_tenant(self.store, self.connection.id, settings=self.settings,
                            budget=budget, now=DEMO_NOW + timedelta(seconds=offset),
                            policy=policy, mail=self.mail)
        took = time.perf_counter() - started
        api = sum(n for k, n in self.emu.counters.calls.items() if self.api_path in k)
        assert api == report.api_calls, (api, report.api_calls)
        return report, took


@contextmanager
def connected(emu: QuickBooksEmulator | XeroEmulator, platform: str,
              api_path: str) -> Iterator[Connected]:
    """The emulator served and its company connected to a fresh store in a temp folder."""
    with tempfile.TemporaryDirectory() as tmp, emu.serve():
        store = SQLiteStore(Path(tmp) / "bench.db")
        settings = emu.settings(redirect_uri=REDIRECT_URI)
        connection = connect_through_oauth(store, platform, settings, now=DEMO_NOW)[0]
        try:
            mail = MailSetup(sender=Sender("ar@bench.example", "ar@bench.example"),
                             mailer=FolderMailer(Path(tmp) / "outbox"))
            yield Connected(emu, store, settings, connection, api_path, mail)
        finally:
            store.close()


@dataclass(frozen=True)
class FirstRun:
    """A first full run's figures, for the summary table."""

    platform: str
    company: str
    invoices: int
    calls: int
    bound: int
    writes: int
    plain: int  # the bound of pages + writes alone (without the reads a platform needs)

    @property
    def ratio(self) -> float:
        return self.calls / self.bound if self.bound else float("inf")


# Writes a platform-side pause must stop (ar_sync.sync.company.pause_stops): before one of
# these the pause signal must be read, at least one call a run.
# ar-sync's own e-mails and notices go out through the mailer or a webhook, not the platform
OWN_MAIL = frozenset({"customer_email", "message", "notify"})


def platform_writes(report: RunReport) -> list[ActionOutcome]:
    """The writes a run did on the platform (not its own e-mails)."""
    return [a for a in report.actions if a.outcome == "done" and str(a.kind) not in OWN_MAIL]


PAUSABLE = ("late_fee", "reminder_email", "escalate", "customer_email", "message", "notify")


def pause_bound(report: RunReport) -> int:
    """1 when the run wrote something a pause must stop (the signal is read once a run)."""
    return int(any(a.outcome == "done" and str(a.kind) in PAUSABLE for a in report.actions))


def summary_table(rows: list[FirstRun]) -> list[str]:
    out = ["", "first full run, default rules        invoices    calls    bound   ratio   writes"
               "   (pages + writes alone: bound, ratio)"]
    out += [f"  {r.platform:<10} {r.company:<26} {r.invoices:>7,} {r.calls:>8,} {r.bound:>8,}"
            f"  {r.ratio:5.2f}x {r.writes:>8,}   ({r.plain:,}, {r.calls / r.plain:4.2f}x)"
            for r in rows]
    return out


def done_by_kind(report: RunReport) -> str:
    """`late_fee=3, note=2`: the writes the run did, per kind of action ("" when none)."""
    kinds = Counter(a.kind for a in report.actions if a.outcome == "done")
    return ", ".join(f"{kind}={n}" for kind, n in sorted(kinds.items()))


def problems(report: RunReport) -> list[str]:
    """A line for a run that stopped early or had errors (none for a clean run)."""
    if report.errors or report.stopped_early:
        return [f"    ! {report.stopped_early} {report.errors[:2]}"]
    return []
