"""Rules with the journey as it was before issue 21, for the suites that test the machinery
underneath it (exactly-once writes, faults, batches, the quiet index in a run): the first
stage by the invoice's age, fees as agreed terms from go-live, one message a day at most.
The journey itself (first contact, spacing, announcements, deadlines) is tested in
tests/engine/test_engine_journey.py."""

from __future__ import annotations

from pathlib import Path

from ar_sync.rules.policy import Policy, load_policy


def by_age(policy: Policy) -> Policy:
    """`policy` with first_contact: by_age, fee_notice: agreed, min_gap: 1."""
    journey = policy.journey.model_copy(update={
        "first_contact": "by_age", "fee_notice": "agreed", "min_gap": 1})
    return policy.model_copy(update={"journey": journey})


def old_journey(source: str | Path) -> Policy:
    """load_policy(source), then by_age."""
    return by_age(load_policy(source))
