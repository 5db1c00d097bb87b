"""The follow-up rules an admin writes in YAML: schema, safe loading, precise errors.

A rules file is parsed with yaml.SafeLoader into a node tree that remembers every value's file
and line, merged with the rule set it `extends`, then validated by the frozen pydantic models
below. Any problem (YAML syntax, wrong type, unknown key, bad currency, unsafe template, bad
time zone, unknown holiday country, an `extends` cycle) becomes one PolicyError whose message
names the file, the line and the field path:

    rules/my.yaml:14: reminders[2].days: Input should be a valid integer (got -5x)

Merge semantics of `extends` (documented for admins in rules/default.yaml and the README):
the file and its sections (calendar, exclude) merge key by key, values inside them (holidays,
amounts, lists) are replaced whole;
the named lists `reminders`, `late_fees` and `escalations` merge item by item on `name`: an
item whose name the parent has is merged over the parent's item, a new name is appended, and
`{name: x, remove: true}` deletes the parent's item.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ar_sync.calendar import WEEKDAYS, check_holiday_region, local_date, zone
from ar_sync.fees import Amounts, parse_amounts
from ar_sync.models import FeeMode
from ar_sync.money import normalise_currency
from ar_sync.plans import PaymentPlan as PaymentPlan  # re-exported: a rules file section
from ar_sync.templates import (
    ESCALATION_FIELDS,
    FEE_LABEL_FIELDS,
    NOTE_FIELDS,
    compile_template,
)

SCHEMA_ID = "https://ar-sync.dev/schemas/rules-v1.json"
NAMED_LISTS = ("reminders", "late_fees", "escalations")
MAX_EXTENDS_DEPTH = 8
MAX_NODES = 50_000  # guards against alias bombs ("billion laughs")


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


def _fail(file: str, line: int | None, message: str, path: str = "") -> PolicyError:
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
Tone = Literal["friendly", "neutral", "firm", "final"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

DEFAULT_NOTE = ("Reminder ({stage}): invoice {invoice_number} for {customer_name}, "
                "{balance} due {due_date}.")
DEFAULT_FEE_LABEL = "Late fee {period} on invoice {invoice_number}"
DEFAULT_ESCALATION_NOTE = ("Escalated to {to}: invoice {invoice_number} is {days_overdue} days "
                           "overdue with {balance} unpaid.")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ============================================================================= the schema


class Reminder(_Model):
    """A reminder stage: a note on the invoice, optionally the platform's e-mail."""

    name: Name = Field(description="Unique stage name; part of the idempotency key, so "
                                   "renaming a stage makes it new")
    days: Int = Field(ge=-365, le=3650, description="Days relative to the due date: -3 is "
                      "three days before, 0 the due date, 7 a week after")
    tone: Tone = Field("friendly", description="How firm the stage is (shown to bookkeepers)")
    email: bool = Field(False, description="Also ask the platform to send its invoice e-mail")
    note: NoteTemplate = Field(DEFAULT_NOTE, description="Note text; {placeholders} allowed")


class _FeeRule(_Model):
    name: Name = Field(description="Unique fee rule name; part of the idempotency key")
    grace_days: Int = Field(0, ge=0, le=3650, description="Grace period: days after the due "
                            "date before the first charge")
    every: Every = Field("once", description="'once', 'month' (same day each month) or a "
                         "number of days between charges")
    mode: FeeMode = Field(FeeMode.LINE, description="'line': a line on the overdue invoice; "
                          "'invoice': a separate fee invoice")
    label: FeeLabel = Field(DEFAULT_FEE_LABEL, description="Fee line description; "
                            "{fee} and {period} allowed")
    min_balance: AmountsField | None = Field(None, description="Charge only when the unpaid "
                                             "balance is at least this")
    min_fee: AmountsField | None = Field(None, description="Smallest single charge")
    max_fee: AmountsField | None = Field(None, description="Largest single charge")
    cap_amount: AmountsField | None = Field(None, description="Most late fees an invoice may "
                                            "carry in total (all fee rules)")
    cap_percent: Number | None = Field(None, gt=0, le=100, description="Most late fees an "
                                       "invoice may carry, as a percent of its original total")
    max_occurrences: Int | None = Field(None, ge=1, le=1000, description="Stop after this "
                                        "many charges")
    currencies: tuple[Currency, ...] | None = Field(None, description="Only invoices in these "
                                                    "currencies (default: all)")


class FixedFee(_FeeRule):
    """A fixed amount per charge."""

    kind: Literal["fixed"]
    amount: AmountsField = Field(description="The fee per charge")


class PercentFee(_FeeRule):
    """A percentage of the unpaid balance per charge."""

    kind: Literal["percent"]
    percent: Number = Field(gt=0, le=100, description="Percent of the unpaid balance")
    compounding: bool = Field(False, description="Also charge the percentage on earlier late "
                              "fees (default: simple, on the original debt only)")


class UkStatutoryInterest(_FeeRule):
    """Late Payment of Commercial Debts (Interest) Act 1998: daily simple interest at the
    Bank of England reference rate + 8 %, charged each period, plus fixed compensation."""

    kind: Literal["uk_statutory"]
    every: Every = Field("month", description="How often accrued interest is charged: "
                         "'month' or a number of days")
    reference_rate: Number = Field(ge=0, le=100, description="Bank of England base rate in "
                                   "force on 31 Dec / 30 Jun before the current half-year, %")
    margin: Number = Field(Decimal(8), ge=0, le=100, description="Statutory margin over the "
                           "reference rate, % (8 under the Act)")
    compensation: bool = Field(True, description="Also charge the fixed sum (40/70/100 GBP by "
                               "debt size; GBP invoices only)")

    @field_validator("every")
    @classmethod
    def _recurring(cls, value: str | int) -> str | int:
        if value == "once":
            raise ValueError("interest accrues over time: use 'month' or a number of days")
        return value


LateFee = Annotated[FixedFee | PercentFee | UkStatutoryInterest, Field(discriminator="kind")]


class Holidays(_Model):
    """Whose public holidays are not business days."""

    country: Annotated[str, Strict()] = Field(description="ISO 3166 code, e.g. US, GB, DE")
    subdivision: Annotated[str, Strict()] | None = Field(
        None, description="State/province/region code, e.g. NY, SCT")

    @model_validator(mode="after")
    def _known(self) -> Holidays:
        check_holiday_region(self.country, self.subdivision)
        return self


def _holidays_shorthand(value: Any) -> Any:
    if isinstance(value, str):  # "US" or "US-NY"
        country, _, sub = value.partition("-")
        return {"country": country, "subdivision": sub or None}
    return value


class CalendarSettings(_Model):
    """When reminders may go out."""

    timezone: Annotated[str, Strict()] = Field("UTC", description="The company's IANA time "
                                               "zone; decides what 'today' is")
    send_on: Literal["business_days", "any_day"] = Field(
        "business_days", description="business_days: reminders falling on a weekend or "
        "holiday move to the next business day")
    holidays: Annotated[Holidays | None, BeforeValidator(_holidays_shorthand)] = Field(
        None, description="Public holidays: {country: GB, subdivision: ENG} or 'US-NY'")
    weekend: tuple[Weekday, ...] = Field(("saturday", "sunday"), description="Non-working "
                                         "days of the week")
    extra_holidays: tuple[date, ...] = Field((), description="Company closing days "
                                             "(YYYY-MM-DD)")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("weekend")
    @classmethod
    def _workday(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) >= 7:
            raise ValueError("a week needs at least one working day")
        return value


class Exclusions(_Model):
    """Invoices that get nothing at all (no notes, e-mails, fees or escalation)."""

    customer_ids: tuple[Annotated[str, Strict()], ...] = Field((), description="Platform "
                                                               "customer ids")
    customer_names: tuple[Annotated[str, Strict()], ...] = Field(
        (), description="Customer display names (case-insensitive exact match)")
    disputed: bool = Field(True, description="Skip invoices marked disputed")
    below_balance: AmountsField | None = Field(None, description="Skip invoices whose unpaid "
                                               "balance is below this")
    currencies: tuple[Currency, ...] = Field((), description="Skip invoices in these "
                                             "currencies")


class EscalationWhen(_Model):
    """One set of conditions; all the conditions given must hold."""

    days_overdue: Int | None = Field(None, ge=1, le=3650, description="At least this many "
                                     "days past due")
    balance_over: AmountsField | None = Field(None, description="Unpaid balance above this")
    reminders_ignored: Int | None = Field(None, ge=1, le=100, description="At least this many "
                                          "overdue reminder stages sent and still unpaid")

    @model_validator(mode="after")
    def _something(self) -> EscalationWhen:
        if self.days_overdue is None and self.balance_over is None and (
            self.reminders_ignored is None
        ):
            raise ValueError("give at least one of days_overdue, balance_over, "
                             "reminders_ignored")
        return self


class EscalationTarget(_Model):
    """Exactly one of person or agency."""

    person: Annotated[str, Strict()] | None = Field(None, description="A person, e.g. "
                                                    "'Jane Doe <jane@example.com>'")
    agency: Annotated[str, Strict()] | None = Field(None, description="A collection agency")

    @model_validator(mode="after")
    def _one(self) -> EscalationTarget:
        if (self.person is None) == (self.agency is None):
            raise ValueError("give exactly one of person or agency")
        return self

    def __str__(self) -> str:
        return f"person {self.person}" if self.person else f"agency {self.agency}"


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


class Escalation(_Model):
    """Hand a debt to a person or an agency, once per invoice."""

    name: Name = Field(description="Unique escalation name; part of the idempotency key")
    when: Annotated[tuple[EscalationWhen, ...], BeforeValidator(_one_or_many)] = Field(
        min_length=1, description="Alternatives (any may match); in each, all conditions must "
        "hold. A single mapping is one alternative")
    to: EscalationTarget = Field(description="{person: ...} or {agency: ...}")
    note: EscalationNote = Field(DEFAULT_ESCALATION_NOTE, description="Note written on the "
                                 "invoice; {to} allowed")


class InstalmentReminders(_Model):
    """How payment-plan instalments are reminded and when a plan counts as broken."""

    days_before: Int = Field(3, ge=0, le=365, description="Note (and e-mail) this many days "
                             "before each instalment is due; 0: only on the day")
    on_due_date: bool = Field(True, description="Also remind on the instalment's due date")
    email: bool = Field(False, description="Also ask the platform to send its invoice e-mail")
    grace_days: Int = Field(3, ge=0, le=365, description="An instalment not met this many "
                            "days after its due date breaks the plan; normal rules resume")


class RiskAdjustment(_Model):
    """Rule changes for customers at one risk level (from `ar-sync report`'s risk score)."""

    reminder_offset_days: Int = Field(0, ge=-365, le=365, description="Shift every reminder "
                                      "stage by this many days (-3: three days earlier)")
    escalate_after_days: Int | None = Field(None, ge=1, le=3650, description="Escalation "
                                            "rules with a days_overdue condition fire after at "
                                            "most this many days")


class RiskRules(_Model):
    """Per risk level (low, medium, high) adjustments; a level not given uses the rules as
    written."""

    low: RiskAdjustment | None = Field(None, description="Adjustments for low-risk customers")
    medium: RiskAdjustment | None = Field(None, description="Adjustments for medium-risk "
                                          "customers")
    high: RiskAdjustment | None = Field(None, description="Adjustments for high-risk "
                                        "customers")

    def levels(self) -> dict[str, RiskAdjustment]:
        """The levels that change something."""
        found = {"low": self.low, "medium": self.medium, "high": self.high}
        return {k: v for k, v in found.items() if v is not None and (
            v.reminder_offset_days != 0 or v.escalate_after_days is not None)}


def _unique_names(items: tuple[Any, ...], what: str) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.name in seen:
            raise ValueError(f"{what} name {item.name!r} is used twice "
                             f"([{seen[item.name]}] and [{i}])")
        seen[item.name] = i


class Policy(_Model):
    """A complete rule set."""

    version: Literal[1] = Field(1, description="Rules file format version")
    extends: Annotated[str, Strict()] | None = Field(
        None, description="Start from a shipped rule set (default, gentle, firm, "
        "uk-late-payment) or a relative path, and override parts of it")
    description: Annotated[str, Strict()] = Field("", description="Free text for people")
    company_name: Annotated[str, Strict()] = Field("", description="Your company name, "
                                                   "for {company_name}")
    calendar: CalendarSettings = Field(default_factory=CalendarSettings,
                                       description="Time zone, business days, holidays")
    exclude: Exclusions = Field(default_factory=Exclusions,
                                description="Invoices that get nothing at all")
    reminders: tuple[Reminder, ...] = Field((), description="Reminder stages")
    late_fees: tuple[LateFee, ...] = Field((), description="Late fees and statutory interest")
    escalations: tuple[Escalation, ...] = Field((), description="Escalation rules")
    instalment_reminders: InstalmentReminders = Field(
        default_factory=InstalmentReminders, description="Payment-plan instalment reminders")
    payment_plans: tuple[PaymentPlan, ...] = Field(
        (), description="Agreed payment plans, keyed by invoice number (plans recorded with "
        "`ar-sync payment-plan create` take precedence)")
    risk: RiskRules = Field(default_factory=RiskRules,
                            description="Rule changes per customer risk level")

    @field_validator("reminders")
    @classmethod
    def _stages(cls, value: tuple[Reminder, ...]) -> tuple[Reminder, ...]:
        _unique_names(value, "reminder")
        days: dict[int, str] = {}
        for r in value:
            if r.days in days:
                raise ValueError(f"stages {days[r.days]!r} and {r.name!r} are both at day "
                                 f"{r.days}")
            days[r.days] = r.name
        return value

    @field_validator("late_fees")
    @classmethod
    def _fees(cls, value: tuple[Any, ...]) -> tuple[Any, ...]:
        _unique_names(value, "late fee")
        return value

    @field_validator("escalations")
    @classmethod
    def _escalations(cls, value: tuple[Escalation, ...]) -> tuple[Escalation, ...]:
        _unique_names(value, "escalation")
        return value

    def today(self, now: datetime) -> date:
        """The date it is at `now` in the company's time zone."""
        return local_date(now, zone(self.calendar.timezone))


# ============================================================================= YAML with lines


@dataclass
class _Loc:
    """A YAML value with where it was written."""

    value: Any  # dict[str, _Loc] | list[_Loc] | scalar
    file: str
    line: int
    text: str | None = None  # the scalar as written


_constructor = yaml.constructor.SafeConstructor()
_BOOL_WORDS = {"true", "false"}


def _scalar(node: yaml.ScalarNode) -> Any:
    tag = node.tag
    if tag == "tag:yaml.org,2002:float":
        text = node.value.replace("_", "")
        try:
            value = Decimal(text)
        except InvalidOperation:
            return node.value  # .inf / .nan: left as text so validation rejects it
        return value if value.is_finite() else node.value
    if tag == "tag:yaml.org,2002:bool" and node.value.lower() not in _BOOL_WORDS:
        return node.value  # YAML 1.1 yes/no/on/off stay text ("NO" is Norway)
    return _constructor.construct_object(node, deep=True)


def _convert(node: yaml.Node, file: str, budget: list[int]) -> _Loc:
    budget[0] -= 1
    if budget[0] < 0:
        raise _fail(file, node.start_mark.line + 1, "document too large (alias expansion?)")
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, _Loc] = {}
        for key_node, value_node in node.value:
            kline = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                raise _fail(file, kline, "keys must be plain names (merge keys and complex "
                                         "keys are not supported)")
            key = str(key_node.value)
            if key in out:
                raise _fail(file, kline, f"duplicate key {key!r}")
            child = _convert(value_node, file, budget)
            out[key] = _Loc(child.value, file, kline, child.text)
        return _Loc(out, file, line)
    if isinstance(node, yaml.SequenceNode):
        return _Loc([_convert(n, file, budget) for n in node.value], file, line)
    assert isinstance(node, yaml.ScalarNode)
    try:
        value = _scalar(node)
    except (yaml.YAMLError, ValueError) as exc:
        raise _fail(file, line, f"cannot read value: {exc}") from exc
    return _Loc(value, file, line, node.value)


def _compose(text: str, file: str) -> _Loc:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise _fail(file, line, f"YAML syntax error: {problem}") from exc
    if node is None:
        return _Loc({}, file, 1)
    tree = _convert(node, file, [MAX_NODES])
    if not isinstance(tree.value, dict):
        raise _fail(file, tree.line, "a rules file must be a mapping of keys to values")
    return tree


def _merge(parent: _Loc, child: _Loc, path: tuple[str | int, ...]) -> _Loc:
    """Child over parent: the file and its sections (calendar, exclude, a named item) merge
    key by key; anything deeper (holidays, when, to, amounts) is replaced whole."""
    if isinstance(parent.value, dict) and isinstance(child.value, dict) and len(path) <= 1:
        merged = dict(parent.value)
        for key, value in child.value.items():
            merged[key] = _merge(merged[key], value, (*path, key)) if key in merged else value
        return _Loc(merged, child.file, child.line)
    if (len(path) == 1 and path[0] in NAMED_LISTS and isinstance(parent.value, list)
            and isinstance(child.value, list)):
        return _merge_named(parent, child)
    return child


def _item_name(item: _Loc) -> str | None:
    if isinstance(item.value, dict) and "name" in item.value:
        name = item.value["name"].value
        return name if isinstance(name, str) else None
    return None


def _merge_named(parent: _Loc, child: _Loc) -> _Loc:
    items = list(parent.value)
    names = [_item_name(i) for i in items]
    for item in child.value:
        name = _item_name(item)
        remove = isinstance(item.value, dict) and "remove" in item.value
        if remove:
            flag = item.value["remove"]
            if flag.value is not True:
                raise _fail(item.file, flag.line, "remove must be true", "remove")
            if name not in names:
                raise _fail(item.file, item.line, f"nothing named {name!r} to remove in the "
                                                  "rule set this one extends")
            del items[names.index(name)]
            names.remove(name)
        elif name is not None and name in names:
            index = names.index(name)
            items[index] = _merge(items[index], item, ("item",))
        else:
            items.append(item)
            names.append(name)
    return _Loc(items, child.file, child.line)


def _flatten(tree: _Loc) -> tuple[Any, dict[tuple[str | int, ...], _Loc]]:
    locs: dict[tuple[str | int, ...], _Loc] = {}

    def walk(node: _Loc, path: tuple[str | int, ...]) -> Any:
        locs[path] = node
        if isinstance(node.value, dict):
            return {k: walk(v, (*path, k)) for k, v in node.value.items()}
        if isinstance(node.value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(node.value)]
        return node.value

    return walk(tree, ()), locs


# ============================================================================= shipped sets


def shipped_rules_dir() -> Path:
    """Where the shipped rule sets are: ar_sync/_rules in a wheel, <repo>/rules otherwise."""
    packaged = Path(str(resources.files("ar_sync"))) / "_rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "rules"


def shipped_rule_sets() -> dict[str, Path]:
    """Shipped rule set names ('default', 'gentle', ...) mapped to their files."""
    folder = shipped_rules_dir()
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _is_name(source: str) -> bool:
    return "/" not in source and "\\" not in source and not source.endswith((".yaml", ".yml"))


def _resolve_extends(value: _Loc, base_dir: Path | None) -> Path:
    target = value.value
    if not isinstance(target, str) or not target.strip():
        raise _fail(value.file, value.line, "must be a shipped rule set name or a relative path",
                    "extends")
    if _is_name(target):
        shipped = shipped_rule_sets()
        if target not in shipped:
            known = ", ".join(shipped) or "none"
            raise _fail(value.file, value.line, f"no shipped rule set named {target!r} "
                        f"(shipped: {known})", "extends")
        return shipped[target]
    path = Path(target)
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    if not path.is_file():
        raise _fail(value.file, value.line, f"file not found: {target}", "extends")
    return path


def _read_tree(text: str, file: str, base_dir: Path | None, chain: tuple[Path, ...]) -> _Loc:
    tree = _compose(text, file)
    ext = tree.value.get("extends")
    if ext is None or ext.value is None:
        return tree
    parent_path = _resolve_extends(ext, base_dir).resolve()
    if parent_path in chain:
        loop = " -> ".join(_display(p) for p in (*chain, parent_path))
        raise _fail(ext.file, ext.line, f"extends cycle: {loop}", "extends")
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise _fail(ext.file, ext.line, "extends chain too deep", "extends")
    try:
        parent_text = parent_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(ext.file, ext.line, f"cannot read {parent_path}: {exc.strerror}",
                    "extends") from exc
    parent = _read_tree(parent_text, _display(parent_path), parent_path.parent,
                        (*chain, parent_path))
    parent.value.pop("extends", None)
    return _merge(parent, tree, ())


# ============================================================================= error mapping


def _unwrap(annotation: Any, tag: Any) -> type[BaseModel] | None:
    """The model class behind a field annotation (through Optional, tuple, Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0], tag)
    if origin in (tuple, list):
        return _unwrap(typing.get_args(annotation)[0], tag)
    if origin in (Union, types.UnionType):
        models = [m for a in typing.get_args(annotation) if (m := _unwrap(a, tag)) is not None]
        for m in models:
            kind = m.model_fields.get("kind")
            if kind is not None and tag in typing.get_args(kind.annotation):
                return m
        return models[0] if len(models) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at the parent of `loc` accepts (for 'did you mean')."""
    model: type[BaseModel] | None = Policy
    ann: Any = None
    for el in loc[:-1]:
        if isinstance(el, int):
            continue
        if ann is not None:
            plain, tagged = _unwrap(ann, None), _unwrap(ann, el)
            ann = None
            if plain is None and tagged is not None:
                model = tagged  # `el` was a discriminator tag
                continue
            model = plain
        if model is None or el not in model.model_fields:
            return []
        ann = model.model_fields[el].annotation
    if ann is not None:
        model = _unwrap(ann, None)
    return sorted(model.model_fields) if model is not None else []


def _locate(
    loc: tuple[Any, ...], data: Any, locs: Mapping[tuple[str | int, ...], _Loc]
) -> tuple[str, _Loc, bool]:
    """Field path for people, the closest located node, and whether loc was fully found."""
    parts: list[str] = []
    cur = data
    path: tuple[str | int, ...] = ()
    found = True
    for i, el in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(cur, dict) and isinstance(el, str):
            if not last and el == cur.get("kind"):
                continue  # the discriminator tag pydantic puts in the location
            if el in cur:
                path = (*path, el)
                cur = cur[el]
                parts.append(el)
            elif last:
                parts.append(el)
                found = False
            continue
        if isinstance(cur, list) and isinstance(el, int) and 0 <= el < len(cur):
            path = (*path, el)
            cur = cur[el]
            parts.append(f"[{el}]")
            continue
        found = False
    text = ".".join(parts).replace(".[", "[")
    return text, locs.get(path, locs[()]), found


_MESSAGES = {
    "missing": "required field missing",
    "union_tag_not_found": "missing 'kind' (one of: fixed, percent, uk_statutory)",
}


def _issues(exc: ValidationError, data: Any,
            locs: Mapping[tuple[str | int, ...], _Loc]) -> list[PolicyIssue]:
    issues = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path, node, found = _locate(loc, data, locs)
        kind = err["type"]
        message = _MESSAGES.get(kind, str(err["msg"]))
        if message.startswith(("Value error, ", "Assertion failed, ")):
            message = message.split(", ", 1)[1]
        got: str | None = None
        if kind == "extra_forbidden":
            allowed = _allowed_keys(loc)
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            message = "unknown key" + (f", did you mean {close[0]!r}?" if close else "")
            if allowed:
                message += f" (allowed: {', '.join(allowed)})"
        elif kind != "missing":
            if found and node.text is not None:
                got = node.text
            elif not isinstance(err.get("input"), dict | list):
                got = repr(err.get("input"))[:60]
        issues.append(PolicyIssue(node.file, node.line, path, message, got))
    return issues


def _clashes(data: Any, locs: Mapping[tuple[str | int, ...], _Loc]) -> list[PolicyIssue]:
    """Two items of a named list with one name (or two stages on one day), located at the
    second one: pydantic could only point at the whole list."""
    issues = []
    for section in NAMED_LISTS:
        items = data.get(section) if isinstance(data, dict) else None
        if not isinstance(items, list):
            continue
        for field in ("name", "days") if section == "reminders" else ("name",):
            seen: dict[Any, int] = {}
            for i, item in enumerate(items):
                value = item.get(field) if isinstance(item, dict) else None
                if value is None or isinstance(value, dict | list):
                    continue
                if value in seen:
                    node = locs[(section, i, field)]
                    what = "name" if field == "name" else "day"
                    issues.append(PolicyIssue(
                        node.file, node.line, f"{section}[{i}].{field}",
                        f"{what} {value!r} is already used by {section}[{seen[value]}]"))
                else:
                    seen[value] = i
    return issues


# ============================================================================= API


def parse_policy(text: str, filename: str, *, base_dir: Path | None = None) -> Policy:
    """Parse and validate rules from `text`; `filename` is used in messages and, unless
    `base_dir` is given, to resolve a relative `extends`."""
    if base_dir is None:
        base_dir = Path(filename).parent
    start = (Path(filename).resolve(),)
    tree = _read_tree(text, filename, base_dir, start)
    data, locs = _flatten(tree)
    clashes = _clashes(data, locs)
    if clashes:
        raise PolicyError(clashes)
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_issues(exc, data, locs)) from None


def load_policy(source: str | Path) -> Policy:
    """Load a shipped rule set by name ('default') or a rules file by path."""
    if isinstance(source, str) and _is_name(source) and not Path(source).is_file():
        shipped = shipped_rule_sets()
        if source not in shipped:
            known = ", ".join(shipped) or "none"
            raise _fail(source, None, f"no shipped rule set named {source!r} (shipped: {known})")
        path = shipped[source]
        filename = _display(path)
    else:
        path = Path(source)
        filename = str(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(filename, None, f"cannot read file: {exc.strerror or exc}") from exc
    return parse_policy(text, filename, base_dir=path.parent)


def policy_json_schema() -> dict[str, Any]:
    """JSON Schema of the rules file, for editors (yaml-language-server, VS Code)."""
    schema = Policy.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            **schema, "title": "ar-sync rules"}


def weekday_numbers(names: tuple[str, ...]) -> frozenset[int]:
    """'saturday' -> 5, as datetime.weekday() counts."""
    return frozenset(WEEKDAYS.index(n) for n in names)
