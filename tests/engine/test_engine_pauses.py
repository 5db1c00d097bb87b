"""Pauses: the model, which pause is in force, and a pause freezing every action."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ar_sync.domain.pauses import Pause, active_pauses
from ar_sync.planner.plan import explain, plan
from ar_sync.rules.policy import load_policy

from .conftest import TODAY, make_invoice

FIRM = load_policy("firm")


def test_a_pause_names_exactly_one_target_and_ends_after_it_starts() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        Pause(reason="dispute", since=TODAY)
    with pytest.raises(ValidationError, match="exactly one"):
        Pause(invoice_id="inv-1", customer_id="c1", reason="dispute", since=TODAY)
    with pytest.raises(ValidationError, match="before it starts"):
        Pause(invoice_id="inv-1", reason="other", since=TODAY, until=TODAY - timedelta(days=1))


def test_active_pause_matches_invoice_or_customer_within_its_dates() -> None:
    inv = make_invoice(1)  # customer c1
    other = Pause(invoice_id="inv-2", reason="dispute", since=TODAY)
    promise = Pause(customer_id="c1", reason="promise", since=TODAY - timedelta(days=3),
                    until=TODAY + timedelta(days=5))
    dispute = Pause(invoice_id="inv-1", reason="dispute", since=TODAY - timedelta(days=1))
    assert active_pauses([other], inv, TODAY) is None
    assert active_pauses([other, promise], inv, TODAY) == promise
    assert active_pauses([promise, dispute], inv, TODAY) == dispute  # a dispute wins
    assert active_pauses([promise], inv, TODAY + timedelta(days=5)) == promise  # inclusive
    assert active_pauses([promise], inv, TODAY + timedelta(days=6)) is None
    assert active_pauses([promise], inv, TODAY - timedelta(days=4)) is None  # not yet
    marked = make_invoice(1, pause=dispute.model_copy(update={"source": "platform"}))
    assert active_pauses([], marked, TODAY) is not None  # the platform marker counts


@settings(max_examples=60, deadline=None)
@given(days=st.integers(-10, 400), by_customer=st.booleans(), open_ended=st.booleans(),
       reason=st.sampled_from(["dispute", "promise", "other"]))
def test_a_pause_freezes_every_action(days: int, by_customer: bool, open_ended: bool,
                                      reason: str) -> None:
    inv = make_invoice(1, days_overdue=days, total="10000.00")
    target = {"customer_id": "c1"} if by_customer else {"invoice_id": "inv-1"}
    until = None if open_ended else TODAY + timedelta(days=1)
    pause = Pause(**target, reason=reason, since=TODAY - timedelta(days=1),  # type: ignore[arg-type]
                  until=until)
    assert plan([inv], {}, FIRM, TODAY, pauses=[pause]) == []
    marked = inv.model_copy(update={"pause": pause})
    assert plan([marked], {}, FIRM, TODAY) == []
    # and the pause is the only reason: without it the same invoice gets actions (past day 1)
    if days >= 60:
        assert plan([inv], {}, FIRM, TODAY) != []


def test_explain_says_why_a_paused_invoice_gets_nothing() -> None:
    inv = make_invoice(1, days_overdue=40)
    pause = Pause(invoice_id="inv-1", reason="dispute", since=date(2026, 11, 1))
    lines = explain(inv, {}, FIRM, TODAY, pauses=[pause])
    assert lines[-1].startswith("nothing to do: paused (dispute, since 2026-11-01")
