"""API calls per QuickBooks run against the lower bound, for the demo and a 10,000-invoice company.

    .venv/bin/python bench/bench_calls.py --platform quickbooks [--invoices 10000]

Each company runs through the real path: OAuth against the emulator, `run_tenant` with the
default rules as of the demo date, then incremental runs until one writes nothing, one more
with nothing changed, and one after five payments. Calls are counted by the run's CallBudget
(every HTTP call to the QuickBooks API, retries included) and cross-checked against the
emulator's own counter.

Lower bound = invoice pages (ceil(open / 1000), at least 1) + customer pages for invoices
without BillEmail (ceil(customers / 1000)) + one read of the customers' pause notes when the
run writes something a pause must stop (a fee, an e-mail, an escalation: without reading the
platform-side pause signal first such a write could go to a paused customer) + the write calls
(payments are read only under rules that accrue interest; the default rules do not). Writes
QuickBooks accepts in `/batch` (notes, escalations, fee lines and fee invoices) need ceil(n /
10) calls (10 operations a request, see batch.MAX_BATCH), and at least as many as the most
batched writes one invoice got (one invoice's writes go in order, one per request); e-mails and
waivers one call each. For an incremental run: pages of invoices changed since the checkpoint
(at least 1) + its write calls. The run after the full one sees the invoices the full run
itself wrote to (their LastUpdatedTime moved). The emulator's 40 batch requests a minute are
lifted here (the figures count calls); `min at 40/min` is the time those batch calls need at
least.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
from typing import Any

from bench_runs import (
    FirstRun,
    connected,
    done_by_kind,
    pause_bound,
    platform_writes,
    problems,
)

from ar_sync.domain.money import to_decimal
from ar_sync.rules.policy import load_policy
from ar_sync.sync.budget import CallBudget
from ar_sync.sync.run import RunReport
from ar_sync_emulators.base import RateLimiter
from ar_sync_emulators.books import DemoCompany
from ar_sync_emulators.quickbooks.server import QuickBooksEmulator
from ar_sync_emulators.quickbooks.shapes import parse_qbo_time
from ar_sync_quickbooks.batch import MAX_BATCH

BATCHABLE = ("note", "late_fee", "escalate")  # kinds QuickBooksConnector.can_batch takes


def _write_calls(report: RunReport) -> int:
    """The fewest calls the run's writes need: batched kinds MAX_BATCH a request (at least
    the most one invoice got, in order), the others one each."""
    done = platform_writes(report)
    batched = [a for a in done if str(a.kind) in BATCHABLE]
    per_invoice = Counter(a.invoice_id for a in batched)
    floor = max([math.ceil(len(batched) / MAX_BATCH), *per_invoice.values()], default=0)
    return floor + len(done) - len(batched)


def _full_bound(emu: QuickBooksEmulator, writes: int) -> int:
    open_rows = [r for r in emu.rows["Invoice"].values() if to_decimal(r["Balance"]) > 0]
    return max(1, math.ceil(len(open_rows) / 1000)) + _customer_pages(open_rows) + writes


def _incremental_bound(emu: QuickBooksEmulator, since: datetime | None, writes: int) -> int:
    changed = [r for r in emu.rows["Invoice"].values()
               if since is None or parse_qbo_time(r["MetaData"]["LastUpdatedTime"]) >= since]
    return max(1, math.ceil(len(changed) / 1000)) + _customer_pages(changed) + writes


def _customer_pages(rows: list[dict[str, Any]]) -> int:
    no_email = {r["CustomerRef"]["value"] for r in rows if not r.get("BillEmail")}
    return math.ceil(len(no_email) / 1000)


def _line(label: str, calls: int, bound: int, report: RunReport, seconds: float) -> str:
    ratio = calls / bound if bound else float("inf")
    by = done_by_kind(report)
    return (f"  {label:<22} calls={calls:>6}  lower bound={bound:>6}  ratio={ratio:5.2f}x  "
            f"writes={report.done:>5} ({by or 'none'})  {seconds:6.2f}s")


def measure(name: str, company: DemoCompany, rules: str = "default",
            summary: list[FirstRun] | None = None) -> list[str]:
    emu = QuickBooksEmulator(rate_per_minute=None, concurrent=None).seed(company)
    emu.batch_limiter = RateLimiter(per_minute=None)  # count calls, do not wait for them
    policy = load_policy(rules)
    out = [f"{name}: {len(company.invoices)} invoices, {len(company.customers)} customers"]
    with connected(emu, "quickbooks", "/v3/") as tenant:

        def run(label: str, bound_of: str, now_offset: float = 0) -> RunReport:
            checkpoint = tenant.store.get_checkpoint(tenant.connection.id)
            since = checkpoint.since if checkpoint is not None else None
            budget = CallBudget()
            report, took = tenant.run(policy, now_offset, budget)
            writes = _write_calls(report) + pause_bound(report)
            if bound_of == "full":
                bound = _full_bound(emu, writes)
            else:
                bound = _incremental_bound(emu, since, writes)
            out.append(_line(label, report.api_calls, bound, report, took))
            if bound_of == "full" and summary is not None:
                summary.append(FirstRun("quickbooks", name, len(company.invoices),
                                        report.api_calls, bound, len(platform_writes(report)),
                                        bound - pause_bound(report)))
            batches = budget.by_endpoint.get("POST batch", 0)
            out.append(f"    batch requests={batches} (min at 40/min: {batches / 40:.1f} min)")
            out.append("    by endpoint: " + ", ".join(
                f"{k}={v}" for k, v in sorted(budget.by_endpoint.items())))
            out.extend(problems(report))
            return report

        run("full run", "full")
        for n in range(1, 6):  # the runs that still act (catch-up, invoices we changed)
            if not run(f"incremental #{n}", "incremental", 30 * n).done:
                break
        run("incremental, no change", "incremental", 200)
        for inv in list(emu.rows["Invoice"].values())[:5]:
            if to_decimal(inv["Balance"]) > 0:
                emu.pay(inv["Id"], str(inv["Balance"]))
        run("incremental, 5 paid", "incremental", 230)
    return out
