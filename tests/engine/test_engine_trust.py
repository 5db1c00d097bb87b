"""Follow-up a business can trust (issue 12): go-live backfill, no stacking across fee rules,
interest on the debt as it was, caps for every mix of rules, pauses, waivers, the preview is
the run, simulate."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from ar_sync.domain.models import AddNote, ApplyLateFee, Escalate, SkipStage, WaiveFee
from ar_sync.domain.pauses import Pause
from ar_sync.planner.fee_maths import due_occurrences, invoice_cap
from ar_sync.planner.fee_periods import period_of
from ar_sync.planner.plan import (
    compile_policy,
    explain,
    plan,
    plan_run,
    risk_for,
    simulate,
    simulate_days,
)
from ar_sync.rules.policy import Policy, load_policy, parse_policy

from .conftest import TODAY, by_age, make_invoice, record

D = Decimal
# the journey as before issue 21 (first stage by age, fees as agreed terms from go-live): these
# tests are about go-live's backfill, fee maths, pauses and waivers underneath it;
# tests/engine/test_engine_journey.py has the journey itself
DEFAULT = by_age(load_policy("default"))
UK = by_age(load_policy("uk-late-payment"))
EU = by_age(load_policy("eu-late-payment"))
FROM = re.compile(r"days from (\d{4}-\d{2}-\d{2})")


def fees_of(actions: list) -> list[ApplyLateFee]:  # type: ignore[type-arg]
    return [a for a in actions if isinstance(a, ApplyLateFee)]


def rules(text: str) -> Policy:
    return by_age(parse_policy("calendar: {send_on: any_day}\n" + text, "t.yaml"))


# ----------------------------------------------------------------------------- go-live


def test_first_live_run_charges_nothing_from_before_go_live() -> None:
    """The issue's case: 136 days overdue, default rules, connected today."""
    inv = make_invoice(days_overdue=136, total="10000.00")
    legacy = fees_of(plan([inv], {}, DEFAULT, TODAY))
    assert len(legacy) == 4  # what connecting used to charge at once
    live = plan([inv], {}, DEFAULT, TODAY, go_live=TODAY)
    assert fees_of(live) == []
    notes = [a for a in live if isinstance(a, AddNote)]
    assert [n.rule for n in notes] == ["final-notice"]  # the latest stage only, once
    history = record({}, live, on=TODAY)
    assert fees_of(plan([inv], history, DEFAULT, TODAY + timedelta(days=7),
                        go_live=TODAY)) == []
    month = fees_of(plan([inv], history, DEFAULT, TODAY + timedelta(days=30), go_live=TODAY))
    assert len(month) == 1 and month[0].due_on >= TODAY  # the first period begun live


def test_backfill_latest_and_all() -> None:
    inv = make_invoice(days_overdue=136, total="10000.00")
    latest = rules("extends: default\nlate_fees: [{name: late-fee, backfill: latest}]\n")
    assert len(fees_of(plan([inv], {}, latest, TODAY, go_live=TODAY))) == 1
    every = rules("extends: default\nlate_fees: [{name: late-fee, backfill: all}]\n")
    assert len(fees_of(plan([inv], {}, every, TODAY, go_live=TODAY))) == 4


def test_reminder_stage_with_backfill_none_is_recorded_not_sent() -> None:
    policy = rules("extends: default\nreminders: [{name: final-notice, backfill: none}]\n")
    inv = make_invoice(days_overdue=50)
    actions = plan([inv], {}, policy, TODAY, go_live=TODAY)
    assert not [a for a in actions if isinstance(a, AddNote)]
    skipped = {a.rule: a.superseded_by for a in actions if isinstance(a, SkipStage)}
    assert skipped["final-notice"] == "go-live"
    # a stage dated after go-live is sent as usual
    assert [a.rule for a in plan([inv], {}, policy, TODAY, go_live=TODAY - timedelta(days=10))
            if isinstance(a, AddNote)] == ["final-notice"]


FEE_RULES = st.sampled_from([
    "{name: f, kind: fixed, amount: 25, every: %s, grace_days: %d}",
    "{name: f, kind: percent, percent: 2, every: %s, grace_days: %d}",
    "{name: f, kind: interest, rate: 9.5, every: %s, grace_days: %d}",
    "{name: f, kind: uk_statutory, reference_rate: 4, every: %s, grace_days: %d}",
    "{name: f, kind: interest, reference_rate: 2, margin: 8, compensation: {USD: 40},"
    " every: %s, grace_days: %d}",
])


@settings(max_examples=80, deadline=None)
@given(rule=FEE_RULES, every=st.sampled_from(["month", "7", "30", "once"]),
       grace=st.integers(0, 40), overdue=st.integers(0, 400), live_ago=st.integers(0, 60),
       currency=st.sampled_from(["USD", "GBP"]))
def test_backfill_none_first_live_run_never_charges_a_period_before_go_live(
        rule: str, every: str, grace: int, overdue: int, live_ago: int, currency: str) -> None:
    if every == "once" and ("interest" in rule or "uk_" in rule):
        every = "month"
    policy = rules(f"late_fees: [{rule % (every, grace)}]\n")
    go_live = TODAY - timedelta(days=live_ago)
    inv = make_invoice(days_overdue=overdue, total="5000.00", currency=currency)
    for fee in fees_of(plan([inv], {}, policy, TODAY, go_live=go_live)):
        assert fee.due_on >= go_live
        started = FROM.search(fee.reason)
        if started:  # interest: the days it accrued over
            assert date.fromisoformat(started.group(1)) >= go_live


# ----------------------------------------------------------------------------- stacking


def test_moving_to_uk_late_payment_adds_nothing_for_months_already_charged() -> None:
    inv = make_invoice(days_overdue=150, total="8609.58", currency="GBP")
    start = inv.due_date + timedelta(days=1)
    before = simulate([inv], {}, DEFAULT, start, (TODAY - start).days)
    history = record({}, before)
    charged = [a.due_on for a in fees_of(before)]
    assert len(charged) == 4
    after = fees_of(plan([inv], history, UK, TODAY))
    months = [a for a in after if a.occurrence != "compensation"]
    uk_fee = compile_policy(UK).fees[0]
    periods = {o.label: period_of(o) for o in due_occurrences(uk_fee.terms, inv.due_date,
                                                              TODAY)}
    for a in months:
        start_, end = periods[a.occurrence]
        assert not any(start_ <= d < end for d in charged), a.occurrence
    assert len(months) < len(periods) - 1  # months already charged were skipped
    stacked = rules("extends: uk-late-payment\nlate_fees: [{name: statutory-interest, "
                    "stack: true}]\n")
    assert len(fees_of(plan([inv], history, stacked, TODAY))) > len(after)


@settings(max_examples=40, deadline=None)
@given(first=FEE_RULES, second=FEE_RULES, every1=st.sampled_from(["month", "14"]),
       every2=st.sampled_from(["month", "10", "once"]), grace=st.integers(0, 30),
       days=st.integers(20, 150), switch=st.integers(0, 60))
def test_a_rule_change_never_stacks_fees_without_stack(
        first: str, second: str, every1: str, every2: str, grace: int, days: int,
        switch: int) -> None:
    if every2 == "once" and ("interest" in second or "uk_" in second):
        every2 = "month"
    old = rules(f"late_fees: [{first.replace('name: f', 'name: old') % (every1, grace)}]\n")
    new = rules(f"late_fees: [{second.replace('name: f', 'name: new') % (every2, grace)}]\n")
    inv = make_invoice(days_overdue=days + switch, total="3000.00", currency="GBP")
    start = inv.due_date
    old_actions = simulate([inv], {}, old, start, days)
    new_actions = simulate([inv], record({}, old_actions), new, start + timedelta(days=days),
                           switch + 1)
    # a one-off charge (a fixed fee `every: once`, statutory compensation) covers no period:
    # it never holds a periodic one back (issue 21)
    old_days = [a.due_on for a in fees_of(old_actions)
                if a.occurrence not in ("once", "compensation")]
    new_fee = compile_policy(new).fees[0]
    periods = {o.label: period_of(o) for o in due_occurrences(
        new_fee.terms, inv.due_date, start + timedelta(days=days + switch))}
    for a in fees_of(new_actions):
        if a.occurrence == "compensation":
            continue
        a_start, a_end = periods[a.occurrence]
        assert not any(a_start <= d < a_end for d in old_days), (a.occurrence, old_days)


# ----------------------------------------------------------------------------- interest


def test_eu_late_payment_worked_example() -> None:
    """10,000 EUR due 30 Sep 2026: October and November 2026 accrue at the ECB rate in force
    on 1 July 2026 (2.40, raised from 2.15 with effect from 17 June) + 8, actual/365, and
    40 EUR compensation."""
    inv = make_invoice(days_overdue=61, total="10000.00", currency="EUR")
    assert inv.due_date == date(2026, 9, 30)
    fees = fees_of(plan([inv], {}, EU, TODAY))
    # by hand: 30 Sep -> 30 Oct: 10000 x 0.1040 x 30 / 365 = 85.4794.. -> 85.48
    #          30 Oct -> 30 Nov: 10000 x 0.1040 x 31 / 365 = 88.3287.. -> 88.33
    assert [(f.occurrence, f.amount.amount) for f in fees] == [
        ("compensation", D("40.00")), ("2026-10", D("85.48")), ("2026-11", D("88.33"))]
    assert all(f.amount.currency == "EUR" for f in fees)


def test_interest_accrues_on_the_balance_as_it_was_each_day() -> None:
    """4,000 paid on 15 Oct: the first 15 days of October accrue on 10,000, the rest on 6,000."""
    inv = make_invoice(days_overdue=61, total="10000.00", balance="6000.00", currency="EUR",
                       payments=[(date(2026, 10, 15), "4000.00")])
    fees = fees_of(plan([inv], {}, EU, TODAY))
    # by hand (10.40 %): 10000 x 0.104 x 15/365 + 6000 x 0.104 x 15/365 = 42.7397 + 25.6438
    #          = 68.3836.. -> 68.38; then 6000 x 0.104 x 31/365 = 52.9972.. -> 53.00
    assert [(f.occurrence, f.amount.amount) for f in fees] == [
        ("compensation", D("40.00")), ("2026-10", D("68.38")), ("2026-11", D("53.00"))]
    unknown = make_invoice(days_overdue=61, total="10000.00", balance="6000.00",
                           currency="EUR")
    # 6000 only: 6000 x 0.104 x 30 / 365 = 51.2876.. -> 51.29
    assert fees_of(plan([unknown], {}, EU, TODAY))[1].amount.amount == D("51.29")


def test_uk_interest_never_accrues_on_our_own_fee_lines() -> None:
    """The issue's figures: 9,126.14 = 8,609.58 debt + 516.56 of our fee lines."""
    inv = make_invoice(days_overdue=61, total="9126.14", currency="GBP",
                       late_fees_charged="516.56", fee_lines="516.56")
    fees = fees_of(plan([inv], {}, UK, TODAY))
    # by hand: compensation 70 (8,609.58 < 10,000); 30 Sep -> 30 Oct:
    # 8609.58 x 0.1175 x 30 / 365 = 83.1481.. -> 83.15
    assert [(f.occurrence, f.amount.amount) for f in fees][:2] == [
        ("compensation", D("70.00")), ("2026-10", D("83.15"))]
    assert "8,609.58 GBP" in fees[1].reason


def test_plain_interest_rate_with_actual_360() -> None:
    policy = rules("late_fees: [{name: i, kind: interest, rate: 12, day_count: actual/360}]\n")
    inv = make_invoice(days_overdue=30, total="3600.00")
    (fee,) = fees_of(plan([inv], {}, policy, TODAY))
    assert fee.amount.amount == D("36.00")  # 3600 x 0.12 x 30 / 360, by hand
    assert "actual/360" in fee.reason


# ----------------------------------------------------------------------------- caps


def test_fixed_and_percent_in_invoice_mode_hold_the_cap() -> None:
    policy = rules("late_fees:\n"
                   "  - {name: pct, kind: percent, percent: 5, every: 7, cap_amount: 100,"
                   " mode: invoice, stack: true}\n"
                   "  - {name: fix, kind: fixed, amount: 0.50, every: 7, mode: line,"
                   " stack: true}\n")
    inv = make_invoice(days_overdue=1, total="1000.00")
    actions = simulate([inv], {}, policy, inv.due_date, 200)
    assert sum(f.amount.amount for f in fees_of(actions)) <= D(100)


CAPPED_RULE = st.builds(
    lambda kind, every, cap, capp, mode, minfee, maxfee: (
        f"{{name: NAME, kind: {kind}, every: {every}, mode: {mode}, stack: true"
        + (", amount: 30" if kind == "fixed" else "")
        + (", percent: 3" if kind == "percent" else "")
        + (", rate: 15" if kind == "interest" else "")
        + (", reference_rate: 5" if kind == "uk_statutory" else "")
        + (f", cap_amount: {cap}" if cap else "") + (f", cap_percent: {capp}" if capp else "")
        + (f", min_fee: {minfee}" if minfee else "") + (f", max_fee: {maxfee}" if maxfee
                                                          else "") + "}"),
    st.sampled_from(["fixed", "percent", "interest", "uk_statutory"]),
    st.sampled_from(["month", "5", "17"]), st.sampled_from([None, 50, 100, 333]),
    st.sampled_from([None, 1, 5, 10]), st.sampled_from(["line", "invoice"]),
    st.sampled_from([None, 1, 20]), st.sampled_from([None, 40, 500]))


@settings(max_examples=60, deadline=None)
@given(mix=st.lists(CAPPED_RULE, min_size=1, max_size=3), total=st.integers(100, 20000),
       currency=st.sampled_from(["USD", "GBP", "JPY"]), days=st.integers(1, 200))
def test_caps_hold_for_any_mix_of_fee_rules_and_modes(mix: list[str], total: int,
                                                      currency: str, days: int) -> None:
    body = "".join(f"  - {r.replace('NAME', f'r{i}')}\n" for i, r in enumerate(mix))
    policy = rules("late_fees:\n" + body)
    inv = make_invoice(days_overdue=0, total=D(total), currency=currency)
    actions = simulate([inv], {}, policy, inv.due_date, days)
    caps = [c for f in policy.late_fees
            if (c := invoice_cap(inv.total, currency, f.cap_amount.for_currency(currency)
                                 if f.cap_amount else None, f.cap_percent)) is not None]
    charged = sum((f.amount.amount for f in fees_of(actions)), D(0))
    if caps:
        assert charged <= min(caps)
    keys = [a.key for a in actions]
    assert len(keys) == len(set(keys))  # every occurrence charged once


# ----------------------------------------------------------------------------- pauses, waivers


def test_a_broken_promise_resumes_with_a_note_and_forgives_the_paused_period() -> None:
    policy = rules("late_fees: [{name: i, kind: interest, rate: 10}]\n")
    inv = make_invoice(days_overdue=61, total="3650.00")  # due 30 Sep
    promise = Pause(invoice_id="inv-1", reason="promise", since=date(2026, 10, 10),
                    until=date(2026, 10, 19))
    actions = plan([inv], {}, policy, TODAY, pauses=[promise])
    notes = [a for a in actions if isinstance(a, AddNote)]
    assert [n.rule for n in notes] == ["promise-broken"]
    assert "2026-10-19" in notes[0].text and "ar" not in notes[0].text.split()[0]
    fees = fees_of(actions)
    # 3650 x 10 % / 365 = 1.00 a day: October 30 days minus 10 paused = 20.00; November 31
    assert [f.amount.amount for f in fees] == [D("20.00"), D("31.00")]
    catch_up = rules("late_fees: [{name: i, kind: interest, rate: 10, after_pause: catch_up}]\n")
    assert [f.amount.amount for f in fees_of(plan([inv], {}, catch_up, TODAY,
                                                   pauses=[promise]))] == [D("30.00"),
                                                                           D("31.00")]
    done = record({}, actions)
    assert [a for a in plan([inv], done, policy, TODAY, pauses=[promise])
            if isinstance(a, AddNote)] == []


def test_waive_on_dispute_reverses_charged_fees_once() -> None:
    policy = rules("late_fees: [{name: lf, kind: fixed, amount: 25, every: month,"
                   " waive_on_dispute: true}]\n")
    inv = make_invoice(days_overdue=70, total="1000.00")
    charged = plan([inv], {}, policy, TODAY)
    history = record({}, charged)
    disputed = inv.model_copy(update={"disputed": True})
    waivers = [a for a in plan([disputed], history, policy, TODAY) if isinstance(a, WaiveFee)]
    assert sorted((w.occurrence, w.amount.amount) for w in waivers) == sorted(
        (f.occurrence, f.amount.amount) for f in fees_of(charged))
    assert {w.fee_key for w in waivers} == {f.key for f in fees_of(charged)}
    assert all("ar" not in w.label.split()[0] for w in waivers)
    assert plan([disputed], record(history, waivers), policy, TODAY) == []
    pause = Pause(invoice_id="inv-1", reason="dispute", since=TODAY)  # a dispute pause too
    assert len([a for a in plan([inv], history, policy, TODAY, pauses=[pause])
                if isinstance(a, WaiveFee)]) == len(waivers)
    plain = rules("late_fees: [{name: lf, kind: fixed, amount: 25, every: month}]\n")
    assert plan([disputed], history, plain, TODAY) == []


# ----------------------------------------------------------------------------- preview = run


def test_one_complete_run_leaves_nothing_due_the_same_day() -> None:
    inv = make_invoice(days_overdue=30, total="100.00")
    any_day = rules("extends: default\n")
    history: dict = {}  # type: ignore[type-arg]
    for day in (1, 7, 21, 45):
        today = inv.due_date + timedelta(days=day)
        history = record(history, plan([inv], history, any_day, today), on=today)
    day = inv.due_date + timedelta(days=52)  # the final notice's 7 days have passed
    assert [a.rule for a in plan([inv], history, any_day, day)
            if isinstance(a, Escalate)] == ["collections"]
    # a run on day 21 that wrote overdue-3: a dry run right after plans nothing
    fresh: dict = {}  # type: ignore[type-arg]
    for d in (1, 7):
        fresh = record(fresh, plan([inv], fresh, any_day, inv.due_date + timedelta(days=d)),
                       on=inv.due_date + timedelta(days=d))
    run_day = inv.due_date + timedelta(days=21)
    fresh = record(fresh, plan([inv], fresh, any_day, run_day), on=run_day)
    assert plan([inv], fresh, any_day, run_day) == []


def test_plan_run_and_explain_apply_the_risk_section_like_a_run() -> None:
    policy = rules("extends: default\nrisk: {high: {reminder_offset_days: -10}}\n")
    # no address: notes only, so no stage waits for another's message (journey.settle)
    book = [make_invoice(n, days_overdue=120, total="100.00", customer_email=None)
            for n in (5, 10, 15)]
    fresh = make_invoice(20, days_overdue=-5, customer_email=None)  # customer c0 too
    book.append(fresh)
    risk = risk_for(book, {}, policy, TODAY)
    assert risk == {"c0": "high"}
    ran = [a for a in plan_run(book, {}, policy, TODAY) if a.invoice_id == "inv-20"]
    assert [a.rule for a in ran if isinstance(a, AddNote)] == ["overdue-1"]  # day +1 - 10
    assert [a for a in plan(book, {}, policy, TODAY) if a.invoice_id == "inv-20"] == []
    lines = explain(fresh, {}, policy, TODAY, risk=risk)
    planned = [ln for ln in lines if ln.startswith("planned today: ")]
    assert planned == [f"planned today: {a.kind} {a.rule} {a.occurrence}: {a.reason}"
                       for a in ran]
    assert any("risk high" in ln for ln in lines)


def test_simulate_records_each_day_so_nothing_repeats() -> None:
    invs = [make_invoice(n, days_overdue=d, total="2000.00") for n, d in ((1, 5), (2, 40))]
    actions = simulate(invs, {}, DEFAULT, TODAY, 60)
    keys = [a.key for a in actions]
    assert len(keys) == len(set(keys))
    by_day: dict[date, int] = defaultdict(int)
    for a in fees_of(actions):
        by_day[a.due_on] += 1
    assert actions and fees_of(actions)  # fees and reminders appear over the 60 days
    assert simulate(invs, {}, DEFAULT, TODAY, 60) == actions  # deterministic
    assert simulate(invs, record({}, actions), DEFAULT, TODAY, 60) == []


@settings(max_examples=30, deadline=None)
@given(since=st.integers(0, 90), length=st.integers(0, 40), overdue=st.integers(30, 200),
       every=st.sampled_from(["month", "7", "30"]))
def test_forgiven_pause_days_never_accrue(since: int, length: int, overdue: int,
                                          every: str) -> None:
    """3,650 at 10 % a year accrues exactly 1.00 a day: the days charged are countable."""
    policy = rules(f"late_fees: [{{name: i, kind: interest, rate: 10, every: {every}}}]\n")
    inv = make_invoice(days_overdue=overdue, total="3650.00")
    start = inv.due_date + timedelta(days=since)
    pause = Pause(invoice_id="inv-1", reason="other", since=start,
                  until=start + timedelta(days=length))
    if pause.active_on(TODAY):
        assert plan([inv], {}, policy, TODAY, pauses=[pause]) == []
        return
    forgiven = fees_of(plan([inv], {}, policy, TODAY, pauses=[pause]))
    full = fees_of(plan([inv], {}, policy, TODAY))
    charged_full = sum((f.amount.amount for f in full), D(0))
    charged = sum((f.amount.amount for f in forgiven), D(0))
    # every day accrued before the last charge and inside the pause is left out, no more
    last = max((f.due_on for f in full), default=inv.due_date)
    inside = max(0, (min(pause.until + timedelta(days=1), last) - max(start, inv.due_date)).days)
    assert charged == charged_full - inside


def test_simulated_days_are_the_days_the_writes_go_not_the_stages_due_days() -> None:
    """What the console's "What comes next" shows: under the journey a stage due months ago
    goes out on a later day (one step at a time, min_gap); simulate_days gives that day (the
    console showed the stage's due day before: "28 Jul 2026" as coming next in November)."""
    inv = make_invoice(days_overdue=120)
    policy = load_policy("email")
    days = simulate_days([inv], {}, policy, TODAY, 30)
    assert [a for _, a in days] == simulate([inv], {}, policy, TODAY, 30)
    assert all(TODAY <= day < TODAY + timedelta(days=30) for day, _ in days)
    stages = [(day, a) for day, a in days if isinstance(a, AddNote)]
    assert stages and stages[0][0] == TODAY and any(a.due_on < day for day, a in stages[1:])
    gaps = [(b - a).days for (a, _), (b, _) in pairwise(stages) if a != b]
    assert gaps and min(gaps) >= policy.journey.min_gap
