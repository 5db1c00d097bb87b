"""Rules-file building blocks: the error type that names file:line:field, the field types
(names, amounts, templates) and the defaults every rule model shares."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    Strict,
    WithJsonSchema,
)

from ar_sync.domain.money import Amounts, normalise_currency, parse_amounts
from ar_sync.rules.templates import (
    EMAIL_FIELDS,
    ESCALATION_FIELDS,
    FEE_LABEL_FIELDS,
    NOTE_FIELDS,
    compile_template,
)

# ============================================================================= errors


@dataclass(frozen=True)
class PolicyIssue:
    """One problem in a rules file."""

    file: str
    line: int | None
    path: str
    message: str
    got: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return f"{text} (got {self.got})" if self.got is not None else text


class PolicyError(ValueError):
    """A rules file that cannot be used; str() lists every problem as file:line: path: msg."""

    def __init__(self, issues: list[PolicyIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def fail(file: str, line: int | None, message: str, path: str = "") -> PolicyError:
    return PolicyError([PolicyIssue(file, line, path, message)])


# ============================================================================= field types


def _name(value: str) -> str:
    ok = 0 < len(value) <= 64 and value[0].isalnum() and all(
        c.isalnum() or c in "-_." for c in value
    )
    if not ok or not value.isascii():
        raise ValueError("names use ASCII letters, digits, '-', '_' or '.' (1-64 characters, "
                         "starting with a letter or digit)")
    return value


def _template(allowed: frozenset[str]) -> Any:
    def check(text: str) -> str:
        compile_template(text, allowed)
        return text
    return AfterValidator(check)


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


def _every(value: Any) -> str | int:
    if isinstance(value, bool):
        raise ValueError("must be 'once', 'month' or a number of days")
    if value in ("once", "month"):
        return str(value)
    if isinstance(value, int):
        if value < 1:
            raise ValueError("a number of days must be at least 1")
        if value > 3650:
            raise ValueError("a number of days must be at most 3650")
        return value
    raise ValueError("must be 'once', 'month' or a number of days")


def _dump_amounts(value: Amounts) -> Any:
    if value.default is not None:
        return str(value.default)
    return {k: str(v) for k, v in value.per_currency.items()}


_AMOUNTS_SCHEMA: dict[str, Any] = {
    "description": "One number (in the invoice's own currency) or a number per ISO 4217 "
                   "currency, e.g. {USD: 10, GBP: 8}",
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "object", "propertyNames": {"pattern": "^[A-Z]{3}$"},
         "additionalProperties": {"type": "number", "minimum": 0}, "minProperties": 1},
    ],
}

Name = Annotated[str, Strict(), AfterValidator(_name)]
Int = Annotated[int, Strict()]
Number = Annotated[Decimal, BeforeValidator(_no_bool)]
Currency = Annotated[str, Strict(), AfterValidator(normalise_currency)]
AmountsField = Annotated[
    Amounts, PlainValidator(parse_amounts), PlainSerializer(_dump_amounts),
    WithJsonSchema(_AMOUNTS_SCHEMA),
]
Every = Annotated[
    str | int, PlainValidator(_every),
    WithJsonSchema({"description": "'once', 'month' or a number of days",
                    "anyOf": [{"enum": ["once", "month"]},
                              {"type": "integer", "minimum": 1, "maximum": 3650}]}),
]
NoteTemplate = Annotated[str, Strict(), _template(NOTE_FIELDS)]
FeeLabel = Annotated[str, Strict(), _template(FEE_LABEL_FIELDS)]
EscalationNote = Annotated[str, Strict(), _template(ESCALATION_FIELDS)]
Backfill = Literal["none", "latest", "all"]
EmailTemplate = Annotated[str, Strict(), _template(EMAIL_FIELDS)]
Tone = Literal["friendly", "neutral", "firm", "final"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

DEFAULT_NOTE = ("Reminder ({stage}): invoice {invoice_number} for {customer_name}, "
                "{balance} due {due_date}.")
DEFAULT_FEE_LABEL = "Late fee {period} on invoice {invoice_number}"
DEFAULT_ESCALATION_NOTE = ("Escalated to {to}: invoice {invoice_number} is {days_overdue} days "
                           "overdue with {balance} unpaid.")


class RulesModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
