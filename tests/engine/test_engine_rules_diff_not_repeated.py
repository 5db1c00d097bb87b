"""`rules diff` shows what a change would repeat without the journey's rules as "not repeated"
(issue 21): fee days another schedule or rule already charged, a stage already sent through
the other channel. The real plan writes none of them; the diff says so instead of silence."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from ar_sync.domain.models import Action, ActionKind, ApplyLateFee, EntryState, LedgerEntry
from ar_sync.planner.plan import simulate
from ar_sync.rules.policy import Policy, parse_policy
from ar_sync.sync.rules_diff import NOT_REPEATED, rules_diff

from .conftest import make_invoice

START = date(2026, 9, 1)
BASE = ("calendar: {send_on: any_day}\n"
        "journey: {fee_notice: agreed, min_gap: 1}\n")


def _policy(text: str) -> Policy:
    return parse_policy(BASE + text, "r.yaml")


def _ledger(actions: list[Action], start: date) -> dict[str, list[LedgerEntry]]:
    """simulate()'s actions as done rows, each at noon of its due day (what runs recorded)."""
    out: dict[str, list[LedgerEntry]] = {}
    for a in actions:
        at = datetime.combine(max(a.due_on, start), time(12), tzinfo=UTC)
        out.setdefault(a.invoice_id, []).append(LedgerEntry(
            key=a.key, tenant=a.tenant, invoice_id=a.invoice_id, kind=a.kind, rule=a.rule,
            occurrence=a.occurrence, due_on=a.due_on, updated_at=at,
            state=EntryState.SKIPPED if a.kind == ActionKind.SKIP else EntryState.DONE,
            amount=a.amount.amount if isinstance(a, ApplyLateFee) else None))
    return out


def test_a_changed_fee_schedule_shows_the_days_already_charged_as_not_repeated() -> None:
    monthly = _policy("late_fees: [{name: late-fee, kind: percent, percent: 2, grace_days: 30, "
                      "every: month, backfill: all}]\n")
    every_30 = _policy("late_fees: [{name: late-fee, kind: percent, percent: 2, "
                       "grace_days: 30, every: 30, backfill: all}]\n")
    inv = make_invoice(1, days_overdue=0, total="1000.00", today=START)
    history = _ledger(simulate([inv], {}, monthly, START, 100), START)
    charged = sum(1 for rows in history.values() for e in rows if e.kind == ActionKind.LATE_FEE)
    assert charged >= 2
    diff = rules_diff([inv], history, monthly, every_30, start=START + timedelta(days=100),
                      days=20)
    shown = [r for r in diff.rows if r.change == NOT_REPEATED]
    assert shown and all(r.kind == "late_fee" for r in shown)
    assert all(r.after.startswith("not repeated: ") for r in shown)
    assert diff.counts[NOT_REPEATED] == len(shown) >= charged - 1
    # the plan itself charges none of them: no "new" fee row for a day already charged
    assert not any(r.change == "new" and r.kind == "late_fee" and r.day < START
                   + timedelta(days=100) - timedelta(days=30) for r in diff.rows)


def test_a_channel_switch_shows_the_stages_already_sent_as_not_repeated() -> None:
    platform = _policy("reminders: [{name: first, days: 1, channel: platform}, "
                       "{name: second, days: 40, channel: platform}]\n")
    own = _policy("reminders: [{name: first, days: 1, channel: email}, "
                  "{name: second, days: 40, channel: email}]\n")
    inv = make_invoice(1, days_overdue=0, total="1000.00", today=START)
    history = _ledger(simulate([inv], {}, platform, START, 45), START)
    sent = {e.rule for rows in history.values() for e in rows
            if e.kind == ActionKind.REMINDER_EMAIL}
    assert sent == {"first", "second"}
    diff = rules_diff([inv], history, platform, own, start=START + timedelta(days=45), days=10)
    # the latest stage is what a switch re-sent (the issue: 37 final notices an hour later);
    # an earlier one is passed by whichever channel
    shown = {r.rule for r in diff.rows if r.change == NOT_REPEATED}
    assert shown == {"second"}
    assert not any(r.change == "new" and r.kind == "customer_email" for r in diff.rows)


def test_an_unchanged_rule_set_repeats_nothing() -> None:
    monthly = _policy("late_fees: [{name: late-fee, kind: percent, percent: 2, grace_days: 30, "
                      "every: month, backfill: all}]\nreminders: [{name: r, days: 1}]\n")
    inv = make_invoice(1, days_overdue=0, total="1000.00", today=START)
    history = _ledger(simulate([inv], {}, monthly, START, 100), START)
    diff = rules_diff([inv], history, monthly, monthly, start=START + timedelta(days=100),
                      days=20)
    assert diff.counts[NOT_REPEATED] == 0 and diff.counts["new"] == diff.counts["gone"] == 0
