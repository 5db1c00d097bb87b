"""Building actions cheaply: the planner computes every field itself."""

from __future__ import annotations

from typing import Any

from ar_sync.domain.models import (
    ActionKind,
    AddNote,
    ApplyLateFee,
    EmailReminder,
    Escalate,
    Invoice,
    LedgerEntry,
    Money,
    SendReminder,
    SkipStage,
    WaiveFee,
)

# every field is always given, so one shared set per class (pydantic copies it on model_copy)
_FIELDS_SET: dict[type, set[str]] = {
    cls: set(cls.model_fields)
    for cls in (AddNote, SendReminder, ApplyLateFee, Escalate, SkipStage, WaiveFee, Money,
                LedgerEntry, Invoice, EmailReminder)  # the stores read rows they wrote (rows.py)
}
_set = object.__setattr__

# an action kind from its string value (ledger rows and the planner's kind names)
ACTION_KINDS = {k.value: k for k in ActionKind}


def construct(cls: Any, fields: dict[str, Any]) -> Any:
    """A frozen pydantic model from fields the planner computed itself and typed correctly:
    what model_construct does, minus its per-field default and alias handling (which costs
    more than the whole rest of planning an invoice). Every field must be given."""
    obj = cls.__new__(cls)
    _set(obj, "__dict__", fields)
    _set(obj, "__pydantic_fields_set__", _FIELDS_SET[cls])
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj

