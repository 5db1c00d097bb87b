"""Risk levels: a level's customers are planned with a derived policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from ar_sync.domain.pauses import Pause
from ar_sync.planner.journey import CustomerLog
from ar_sync.planner.state import Planner
from ar_sync.rules.policy import Policy, RiskAdjustment


def _adjusted(policy: Policy, adj: RiskAdjustment) -> Policy:
    """`policy` with one risk level's changes applied (stage names, hence keys, unchanged)."""
    offset = adj.reminder_offset_days
    reminders = tuple(r.model_copy(update={"days": max(-365, r.days + offset)})
                      for r in policy.reminders)
    escalations = policy.escalations
    cap = adj.escalate_after_days
    if cap is not None:
        escalations = tuple(e.model_copy(update={"when": tuple(
            w.model_copy(update={"days_overdue": min(w.days_overdue, cap)})
            if w.days_overdue is not None else w for w in e.when)}) for e in escalations)
    return policy.model_copy(update={"reminders": reminders, "escalations": escalations})


_ADJUSTED: dict[tuple[int, str], tuple[Policy, Policy]] = {}


def risk_planners(policy: Policy, today: date, *, go_live: date | None = None,
                   pauses: Sequence[Pause] = (),
                   contacts: Mapping[str, CustomerLog] | None = None,
                   versions: Mapping[int, Policy] | None = None) -> dict[str, Planner]:
    """One planner per risk level the rules adjust (derived policies cached like compiled
    ones, so their compiled form is reused across calls)."""
    out = {}
    for level, adj in policy.risk.levels().items():
        hit = _ADJUSTED.get((id(policy), level))
        if hit is None or hit[0] is not policy:
            if len(_ADJUSTED) >= 64:
                _ADJUSTED.pop(next(iter(_ADJUSTED)))
            hit = _ADJUSTED[(id(policy), level)] = (policy, _adjusted(policy, adj))
        out[level] = Planner(hit[1], today, go_live=go_live, pauses=pauses,
                             contacts=contacts, versions=versions)
    return out
