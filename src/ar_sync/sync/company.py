"""What a run takes from the company's settings (issue 12): its stored rules version, its
go-live date and mode, its pauses (stored, and markers set on the platform), and the planned
fees per currency for the report. Kept out of sync.py, which stays the execution shell."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from ar_sync.domain.models import (
    Action,
    AddNote,
    ApplyLateFee,
    Invoice,
    LedgerEntry,
    SkipStage,
    WaiveFee,
)
from ar_sync.domain.pauses import Pause
from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.planner.can_act import may_act, with_summary
from ar_sync.planner.compiled import compile_policy
from ar_sync.planner.journey import CustomerLog, customer_logs
from ar_sync.planner.plan import plan_run
from ar_sync.rules.policy import Policy
from ar_sync.sync.company_rules import choose_rules, company_zone, stored_versions
from ar_sync.sync.company_store import TrustStore, planner_pauses
from ar_sync.sync.connector import Connection, Connector

if TYPE_CHECKING:
    from ar_sync.sync.store import Store


class _Report(Protocol):
    mode: str
    rules: str
    rules_version: int | None
    go_live: str | None
    warnings: list[str]


@dataclass
class TenantSetup:
    """The rules and switches one run of one company uses."""

    policy: Policy
    rules_version: int | None = None
    rules_label: str = "given by the caller"
    preview: bool = False
    go_live: date | None = None
    warnings: list[str] = field(default_factory=list)

    def annotate(self, report: _Report) -> None:
        report.rules, report.rules_version = self.rules_label, self.rules_version
        report.go_live = self.go_live.isoformat() if self.go_live else None
        report.warnings.extend(self.warnings)
        if self.preview:
            report.mode = "preview"


def tenant_setup(store: TrustStore, connection: Connection, policy: Policy | None,
                 rules_override: str | None) -> TenantSetup:
    """A caller's `policy` wins (tests, `rules diff`); else the stored version, else
    `--rules`, else the connection's rule set (tenant_rules.choose_rules says which)."""
    preview = connection.mode == "preview"
    if policy is not None:
        policy = signed_by(policy, connection)
        return TenantSetup(policy, preview=preview,
                           go_live=connection.live_from(company_zone(policy)))
    choice = choose_rules(store, connection, override=rules_override)
    go_live = connection.live_from(company_zone(choice.policy))
    return TenantSetup(signed_by(choice.policy, connection), choice.version, choice.label,
                       preview, go_live, [choice.warning] if choice.warning else [])


def signed_by(policy: Policy, connection: Connection) -> Policy:
    """Rules without a `company_name` speak as the company the platform names (QuickBooks
    CompanyName, Xero organisation name): a customer never reads "a reminder from :"."""
    if policy.company_name or not connection.name:
        return policy
    return policy.model_copy(update={"company_name": connection.name})


@dataclass(frozen=True)
class DuePlan:
    """A run's plan: the actions, the invoices planned (pause markers read) and their ledger
    history, and every open invoice by id."""

    actions: list[Action]
    planned: list[Invoice]
    history: Mapping[str, Sequence[LedgerEntry]]
    by_id: dict[str, Invoice]


def plan_due(store: Store, connector: Connector | None, invoices: list[Invoice],
             policy: Policy, today: date, *, tenant: str, plans: Sequence[PaymentPlan],
             go_live: date | None, pauses: Sequence[Pause] | None = None,
             busy: Collection[str] | None = None) -> DuePlan:
    """plan_tenant() reading ledger rows only for the invoices that can be due today when
    the store keeps a summary of each invoice's finished rows (`finished_rows`, DynamoDB:
    can_act.may_act judges from it), else for every invoice given. `pauses`: the
    tenant's, when the caller read them already; `busy`: the invoices with rows in flight,
    when the caller read them already (a run: its leftovers)."""
    if pauses is None:
        pauses = planner_pauses(store.list_pauses(tenant))
    summaries = getattr(store, "finished_rows", None)
    finished = summaries(tenant) if summaries is not None else None
    if finished is not None and busy is None:
        busy = {e.invoice_id for e in store.unfinished(tenant)}
    named = (None if finished is None else
             may_act(invoices, finished, policy, today, plans=plans, go_live=go_live,
                     pauses=pauses, busy=busy or ()))
    due = invoices if named is None else [i for i in invoices if i.id in named]
    history = store.history(tenant, [i.id for i in due]) if due else {}
    if finished is not None:  # rows that aged out are planned from the summary
        history = with_summary(due, history, finished)
    contacts = customer_contacts(store, tenant, due, history, policy)
    actions, planned = plan_tenant(store, connector, due, history, policy, today,
                                   tenant=tenant, plans=plans, go_live=go_live, pauses=pauses,
                                   contacts=contacts, versions=stored_versions(store, tenant))
    by_id = {i.id: i for i in invoices}
    by_id.update((i.id, i) for i in planned)
    return DuePlan(actions, planned, history, by_id)


def customer_contacts(store: Store, tenant: str, due: Sequence[Invoice],
                      history: Mapping[str, Sequence[LedgerEntry]],
                      policy: Policy) -> dict[str, CustomerLog]:
    """What the ledger says of the customers of the invoices planned today (journey.py): the
    rows of every invoice they have in the snapshot, open or paid, not only the ones planned:
    a message about an invoice that is quiet today, or paid since, still counts."""
    customers = {i.customer_id for i in due}
    if not customers:
        return {}
    seen = {i.id for i in due}
    others = {i.id: i for i in (*store.open_invoices(tenant), *store.paid_invoices(tenant))
              if i.customer_id in customers and i.id not in seen}
    more = store.history(tenant, list(others)) if others else {}
    pairs = [(i.customer_id, history.get(i.id, ())) for i in due]
    pairs += [(i.customer_id, more.get(i.id, ())) for i in others.values()]
    return customer_logs(pairs, compile_policy(policy))


def plan_tenant(store: TrustStore, connector: Connector | None, invoices: list[Invoice],
                history: Mapping[str, Sequence[LedgerEntry]], policy: Policy, today: date, *,
                tenant: str, plans: Sequence[PaymentPlan],
                go_live: date | None,
                pauses: Sequence[Pause] | None = None,
                contacts: Mapping[str, CustomerLog] | None = None,
                versions: Mapping[int, Policy] | None = None,
                ) -> tuple[list[Action], list[Invoice]]:
    """plan_run() (the planning path `plan`, `rules explain` and `rules diff` share, risk
    included) with the tenant's go-live and pauses; invoices whose pause marker the connector
    reads only on demand (Xero: a history note, one call each) are asked about only when the
    plan has a write for them that a pause must stop (pause_stops), and planned again.
    Returns the actions and the invoices. `pauses`: the tenant's, when the caller read them
    already."""
    if pauses is None:
        pauses = planner_pauses(store.list_pauses(tenant))

    def run() -> list[Action]:
        return plan_run(invoices, history, policy, today, plans=plans, go_live=go_live,
                        pauses=pauses, contacts=contacts, versions=versions)

    actions = run()
    reader: Any = getattr(connector, "pause_markers", None)
    if reader is None:
        return actions, invoices
    due = {a.invoice_id for a in actions if pause_stops(a)}
    wanted = [i for i in invoices if i.id in due and i.pause is None]
    marked: dict[str, Pause] = reader(wanted) if wanted else {}
    if not marked:
        return actions, invoices
    invoices = [i.model_copy(update={"pause": marked[i.id]}) if i.id in marked else i
                for i in invoices]
    return run(), invoices


def pause_stops(action: Action) -> bool:
    """Whether a pause marker must be known before this write: anything the customer sees
    or that moves money their way (fees, e-mails, escalations and their notices). Not: an
    internal note (only the bookkeeper reads it, e.g. a heads-up note before the due date;
    a stage that also e-mails has its e-mail here, so its invoice is read and the whole stage
    planned again with the pause), a waiver (credits the customer: a pause must never hold
    it back), a skipped stage (writes nothing)."""
    return not isinstance(action, AddNote | WaiveFee | SkipStage)


def fee_totals(actions: Sequence[Action]) -> dict[str, str]:
    """Planned fees per currency, net of waivers (reports, previews, `rules diff`)."""
    totals: dict[str, Decimal] = {}
    for a in actions:
        if isinstance(a, ApplyLateFee | WaiveFee):
            sign = 1 if isinstance(a, ApplyLateFee) else -1
            cur = a.amount.currency
            totals[cur] = totals.get(cur, Decimal(0)) + sign * a.amount.amount
    return {cur: str(v) for cur, v in sorted(totals.items())}


__all__ = ["DuePlan", "TenantSetup", "customer_contacts", "fee_totals", "pause_stops",
           "plan_due", "plan_tenant", "tenant_setup"]
