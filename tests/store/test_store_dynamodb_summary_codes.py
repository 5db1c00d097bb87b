"""The DynamoDB invoice summary keeps of a finished ledger row exactly what the planner reads."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ar_sync.domain.models import ActionKind, EntryState, LedgerEntry
from ar_sync.planner.can_act import finished_of
from ar_sync.store.dynamodb.codec import summary_code, summary_rows

_TEXT = st.text(min_size=1, max_size=12)  # rule names and occurrences: any text at all


@given(kind=st.sampled_from(list(ActionKind)), rule=_TEXT, occurrence=_TEXT,
       state=st.sampled_from([EntryState.DONE, EntryState.SKIPPED, EntryState.FAILED]),
       amount=st.none() | st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**6),
                                      places=2),
       at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(UTC)),
       due_on=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
def test_a_summary_entry_reads_back_as_the_row_it_summarizes(
        kind: ActionKind, rule: str, occurrence: str, state: EntryState,
        amount: Decimal | None, at: datetime, due_on: date) -> None:
    row = LedgerEntry(key="ar" + "0" * 32, tenant="t", invoice_id="i", kind=kind, rule=rule,
                      occurrence=occurrence, state=state, due_on=due_on, updated_at=at,
                      amount=amount)
    item = {"pk": row.key, "tenant": "t", "invoice_id": "i", "kind": str(kind), "rule": rule,
            "occurrence": occurrence, "state": str(state), "due_on": due_on.isoformat(),
            "updated_at": at.isoformat(), "amount": None if amount is None else str(amount)}
    (back,) = summary_rows([summary_code(item)])
    assert back == finished_of(row)
    if state == EntryState.DONE:
        assert back.at == at
    if kind == ActionKind.LATE_FEE:
        assert back.due_on == due_on and back.amount == (amount if state == "done" else None)
