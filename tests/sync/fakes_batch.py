"""The in-memory connector with the optional BatchWriter capability (fees and notes batched),
per-item errors, a whole-call failure after the platform applied the batch, and an interrupt
inside the call: the sync core's batch path without any SDK."""

from __future__ import annotations

from collections.abc import Sequence

from ar_sync.domain.errors import ConnectorError, TransientError
from ar_sync.domain.models import Action, ActionKind, AddNote, ApplyLateFee, FeeMode, Invoice, Money
from ar_sync.sync.connector import BatchItemResult, BatchWrite

from .fakes import FakeConnector, SimulatedCrash


class BatchFakeConnector(FakeConnector):
    """`refuse`: key -> the error its item gets; `lose_answer`: the next batch call applies
    every item and then fails as a whole; `interrupt`: Ctrl-C inside the next batch call;
    `crash`: "before" / "after" the next batch call (the process dies)."""

    max_batch = 3
    kinds = (ActionKind.LATE_FEE, ActionKind.NOTE)
    refuse: dict[str, ConnectorError]
    lose_answer = False
    interrupt = False
    crash: str | None = None

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.refuse = {}
        self.batches: list[list[tuple[str, str]]] = []  # (invoice id, key) per call
        self.order: list[tuple[str, str]] = []  # every write, single or batched, in order
        self.reads: list[list[str]] = []

    def can_batch(self, action: Action) -> bool:
        return action.kind in self.kinds

    def get_invoices(self, invoice_ids: Sequence[str]) -> dict[str, Invoice | None]:
        self.budget.spend("GET invoices?IDs")
        self.reads.append(list(invoice_ids))
        with self.state.lock:
            return {i: self.state.invoices.get(i) for i in invoice_ids}

    def write_batch(self, writes: Sequence[BatchWrite]) -> list[BatchItemResult]:
        self.budget.spend("POST batch")
        assert len(writes) <= self.max_batch
        assert len({w.invoice.id for w in writes}) == len(writes), "an invoice twice"
        self.batches.append([(w.invoice.id, w.action.key) for w in writes])
        if self.crash == "before":
            self.crash = None
            raise SimulatedCrash("before the batch call")
        if self.interrupt:
            self.interrupt = False
            raise KeyboardInterrupt
        out: list[BatchItemResult] = []
        for w in writes:
            error = self.refuse.get(w.action.key)
            if error is not None and not isinstance(error, TransientError):
                out.append(BatchItemResult(w.action.key, error=error))
                continue
            ref = self._apply(w.action, w.invoice)
            out.append(BatchItemResult(w.action.key, ref=None if error else ref, error=error))
        if self.crash == "after":
            self.crash = None
            raise SimulatedCrash("after the platform applied the batch")
        if self.lose_answer:
            self.lose_answer = False
            raise TransientError("connection reset after the batch was applied")
        return out

    def _apply(self, action: Action, invoice: Invoice) -> str:
        self.order.append((invoice.id, action.key))
        if isinstance(action, ApplyLateFee):
            return super().add_late_fee(invoice, action.amount, action.label, key=action.key,
                                        mode=action.mode, tax=action.tax)
        assert isinstance(action, AddNote)
        return super().add_note(invoice, action.text, key=action.key)

    def add_note(self, invoice: Invoice, text: str, *, key: str) -> str:
        self.order.append((invoice.id, key))
        return super().add_note(invoice, text, key=key)

    def add_late_fee(self, invoice: Invoice, fee: Money, label: str, *, key: str,
                     mode: FeeMode, tax: str | None = None, account: str | None = None) -> str:
        self.order.append((invoice.id, key))
        return super().add_late_fee(invoice, fee, label, key=key, mode=mode, tax=tax,
                                    account=account)

    def send_reminder(self, invoice: Invoice, *, key: str, to: str | None = None) -> str:
        self.order.append((invoice.id, key))
        return super().send_reminder(invoice, key=key, to=to)
