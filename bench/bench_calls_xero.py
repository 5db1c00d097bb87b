"""API calls per Xero run against the lower bound, for the demo and a 10,000-invoice company.

    .venv/bin/python bench/bench_calls.py --platform xero [--invoices 10000]

Each company runs through the real path: OAuth against the Xero emulator (consent redirect,
code exchange, /connections), `run_tenant` with the default rules as of the demo date, then a
second run with nothing changed (incremental), then one after a few payments. Calls are
counted by the run's CallBudget (every HTTP call to the Accounting API, retries included) and
cross-checked against the emulator's own counter. The emulator's rate limits are lifted so
the figures measure calls, not waiting (with Xero's real 60 a minute a 10k-invoice first run
simply waits on 429 + Retry-After).

Lower bound = what Xero makes unavoidable, with its batch form used where it has one:
invoice pages (ceil(open / 1000), at least 1) + one `PUT …/History` per note or escalation
written + one `POST …/Email` per e-mail + per 50 fees (Xero's recommended batch size) one
fresh `GET /Invoices?IDs=` and one `POST /Invoices` (notes and e-mails have no batch form) +
one read of the platform-side pause signal (the contact groups) when the run writes something
a pause must stop + one `GET …/OnlineInvoice` for each invoice whose online link a note or
e-mail needs **for the first time in the invoice's life** (Xero has no listing form for it;
the link is stable, so ar-sync stores it and never reads it again: "repeat link reads" must
stay 0). For an incremental run: pages of the invoices Xero reports changed since the
checkpoint (at least 1) + the same for the writes it did. GET /Organisation (lock dates,
once a run with fees) is not in the bound: it is what the ratio measures, with any re-read.
The run right after a run that wrote reads back the invoices its own writes changed (a fee
line or an e-mail bumps UpdatedDateUTC in Xero); the next one is the true no-change run.
"""

from __future__ import annotations

import math
from collections import Counter

from bench_runs import (
    Connected,
    FirstRun,
    connected,
    done_by_kind,
    pause_bound,
    platform_writes,
    problems,
)

from ar_sync.rules.policy import load_policy
from ar_sync.sync.run import RunReport
from ar_sync_emulators.books import DemoCompany
from ar_sync_emulators.xero.server import XeroEmulator
from ar_sync_xero.batch import MAX_BATCH

LINKS = "GET /api.xro/2.0/Invoices/{id}/OnlineInvoice"
HISTORY_READS = "GET /api.xro/2.0/Invoices/{id}/History"
PAUSE_READS = ("GET /api.xro/2.0/ContactGroups", "GET /api.xro/2.0/ContactGroups/{id}")


def bound_of_writes(report: RunReport) -> int:
    """Calls the writes done cannot do without: one per note / e-mail, two per <= 50 fees."""
    kinds = Counter(a.kind for a in platform_writes(report))
    fees = kinds.pop("late_fee", 0)
    return sum(kinds.values()) + 2 * math.ceil(fees / MAX_BATCH)


def stored_links(tenant: Connected) -> set[str]:
    """Invoices whose online link the snapshot holds (read once, kept for good)."""
    return {i.id for i in tenant.store.open_invoices(tenant.connection.id)
            if str(i.payment_link or "").startswith("http")}


def measure(name: str, company: DemoCompany | None, rules: str = "default", *,
            nz_invoices: int = 0, summary: list[FirstRun] | None = None) -> list[str]:
    """`company`: the neutral demo company; None: the NZ GST organisation of
    ar_sync_emulators/xero/seed.py with `nz_invoices` invoices (tax, discounts, tracking,
    lock date)."""
    emu = XeroEmulator(per_minute=None, per_day=None, concurrent=None, app_per_minute=None)
    if company is not None:
        emu.seed(company)
    else:
        emu.seed_nz_gst(invoices=nz_invoices)
    policy = load_policy(rules)
    org = emu.org()
    out = [f"{name}: {len(org.invoices)} invoices, {len(org.contacts)} customers"]
    with connected(emu, "xero", "/api.xro/") as tenant:

        def run(label: str, full: bool, offset: float = 0) -> None:
            open_before = sum(1 for i in emu.org().invoices.values()
                              if i.status == "AUTHORISED")
            # what Xero will report changed since the checkpoint, own writes included
            since = tenant.store.get_checkpoint(tenant.connection.id).since
            changed = sum(1 for i in emu.org().invoices.values()
                          if since is None or i.updated > since.replace(microsecond=0))
            links_before = stored_links(tenant)
            report, took = tenant.run(policy, offset)
            new_links = len(stored_links(tenant) - links_before)
            links = emu.counters.calls.get(LINKS, 0)
            pauses = sum(emu.counters.calls.get(p, 0) for p in PAUSE_READS)
            history = emu.counters.calls.get(HISTORY_READS, 0)
            pages = max(1, math.ceil((open_before if full else changed) / 1000))
            bound = pages + bound_of_writes(report) + pause_bound(report) + new_links
            by = done_by_kind(report)
            out.append(
                f"  {label:<22} calls={report.api_calls:>6}  lower bound={bound:>6}  "
                f"ratio={report.api_calls / bound:5.2f}x  (first link reads={new_links}, "
                f"repeat link reads={links - new_links}, pause-signal reads={pauses}, "
                f"History reads={history})  writes={report.done:>5} ({by or 'none'})  "
                f"{took:6.2f}s")
            out.extend(problems(report))
            if full and summary is not None and label == "full run":
                size = len(company.invoices) if company is not None else nz_invoices
                summary.append(FirstRun("xero", name, size, report.api_calls, bound,
                                        len(platform_writes(report)),
                                        bound - pause_bound(report) - new_links))

        run("full run", True)
        run("incr., after own writes", False, 60)
        run("incremental, no change", False, 90)
        paid = 0
        for inv in list(emu.org().invoices.values()):
            if inv.status == "AUTHORISED" and paid < 5:
                emu.pay(inv.id, inv.amount_due)
                paid += 1
        run("incremental, 5 paid", False, 120)
        run("a month later (full)", True, 30 * 86400)  # next stages: links already stored
    return out
