"""Fee rules of a rules file (`late_fees:`): fixed, percent and statutory interest."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ar_sync.domain.models import FeeMode
from ar_sync.domain.reference_rates import RATE_TABLES
from ar_sync.rules.fields import (
    DEFAULT_FEE_LABEL,
    AmountsField,
    Backfill,
    Currency,
    Every,
    FeeLabel,
    Int,
    Name,
    Number,
    RulesModel,
)


def _reference(value: Any) -> Decimal | str:
    """A rate in percent, or the name of a bundled dated table (see reference_rates)."""
    if isinstance(value, str) and not value.replace(".", "", 1).isdigit():
        if value not in RATE_TABLES:
            raise ValueError(f"unknown reference rate {value!r}: give a number or one of "
                             f"{', '.join(RATE_TABLES)}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError("give a rate in percent or the name of a rate table")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not Decimal(0) <= number <= Decimal(100):
        raise ValueError("a reference rate is between 0 and 100 (%)")
    return number


ReferenceRate = Annotated[
    Decimal | str, PlainValidator(_reference),
    WithJsonSchema({"description": "A rate in percent, or a dated table: "
                    + ", ".join(RATE_TABLES),
                    "anyOf": [{"type": "number", "minimum": 0, "maximum": 100},
                              {"enum": list(RATE_TABLES)}]}),
]


MAX_ANNUAL_RATE = Decimal(100)  # interest: reference_rate + margin, % a year


class _FeeRule(RulesModel):
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
    currencies: tuple[Currency, ...] | None = Field(None, max_length=200, description="Only "
                                                    "invoices in these "
                                                    "currencies (default: all)")
    tax: str | None = Field(None, min_length=1, max_length=100,
                            description="Platform tax code/name for the fee; default: the "
                            "edition's no-tax / out-of-scope code")
    account: str | None = Field(None, min_length=1, max_length=100, pattern=r"^\S(.*\S)?$",
                                description="Income account the fee is booked to: Xero an "
                                "account code (default 200, Sales); QuickBooks the account "
                                "(name, number or id) of the 'Late fee' item (default: the "
                                "item's, or the company's first Income account when it "
                                "creates the item). Checked against the company's chart of "
                                "accounts at connect and by `rules validate --company`")
    backfill: Backfill = Field("none", description="What the first live run may charge for "
                               "periods that began before the connection's go-live date: "
                               "'none' (default), 'latest' (the last such period) or 'all'")
    after_pause: Literal["forgive", "catch_up"] = Field(
        "forgive", description="Periods that fell in a pause (dispute, promise to pay): "
        "'forgive' (default) never charges them, 'catch_up' charges them when the pause ends")
    stack: bool = Field(False, description="Also charge periods another fee rule already "
                        "charged on the same invoice (default: a period is charged once)")
    waive_on_dispute: bool = Field(False, description="When the invoice becomes disputed, "
                                   "reverse the fees this rule charged (a credit on the "
                                   "platform)")

    @property
    def accrues(self) -> bool:
        """Interest accrued day by day (needs the invoice's payments); a fee does not."""
        return False


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


class _Accruing(_FeeRule):
    """Interest: accrues over each period, charged at its end."""

    every: Every = Field("month", description="How often accrued interest is charged: "
                         "'month' or a number of days")

    @property
    def accrues(self) -> bool:
        return True

    @field_validator("every")
    @classmethod
    def _recurring(cls, value: str | int) -> str | int:
        if value == "once":
            raise ValueError("interest accrues over time: use 'month' or a number of days")
        return value


class UkStatutoryInterest(_Accruing):
    """Late Payment of Commercial Debts (Interest) Act 1998: daily simple interest at the
    Bank of England reference rate + 8 %, charged each period, plus fixed compensation."""

    kind: Literal["uk_statutory"]
    reference_rate: ReferenceRate = Field(
        "bank_of_england", description="'bank_of_england' (default): the bundled dated Bank "
        "Rate table under the 2002 rate order (the rate in force on 30 June or 31 December "
        "before interest starts to run, fixed for the debt); or a fixed rate in %")
    margin: Number = Field(Decimal(8), ge=0, le=100, description="Statutory margin over the "
                           "reference rate, % (8 under the Act)")
    compensation: bool = Field(True, description="Also charge the fixed sum (40/70/100 GBP by "
                               "debt size; GBP invoices only)")


class Interest(_Accruing):
    """Interest on the late debt (never on our fee lines): an annual rate, simple, accrued
    day by day on the balance as it was each day and charged at the end of each period;
    optionally a fixed compensation once (e.g. the EU Late Payment Directive's 40 EUR)."""

    kind: Literal["interest"]
    rate: Number | None = Field(None, ge=0, le=100, description="Annual rate, %; or give "
                                "reference_rate and margin")
    reference_rate: ReferenceRate | None = Field(
        None, description="A reference rate: 'ecb_main_refinancing' (the bundled dated ECB "
        "table; each half-year at the rate in force on 1 January / 1 July, Directive "
        "2011/7/EU art. 3(2)) or a fixed rate in %; the annual rate is reference_rate + "
        "margin")
    margin: Number = Field(Decimal(0), ge=0, le=100, description="Points over reference_rate")
    day_count: Literal["actual/365", "actual/360"] = Field(
        "actual/365", description="Day-count convention: days elapsed / days in a year")
    compensation: AmountsField | None = Field(None, description="A fixed sum charged once, "
                                              "the day after the due date (per currency, "
                                              "e.g. {EUR: 40})")

    @model_validator(mode="after")
    def _one_rate(self) -> Interest:
        if (self.rate is None) == (self.reference_rate is None):
            raise ValueError("give either rate, or reference_rate (and margin)")
        if self.rate is not None and self.margin:
            raise ValueError("margin goes with reference_rate, not with rate")
        fixed = self.annual_rate
        if fixed is not None and fixed > MAX_ANNUAL_RATE:
            raise ValueError(f"reference_rate + margin is {fixed} %; an annual rate is at "
                             f"most {MAX_ANNUAL_RATE} %")
        return self

    @property
    def annual_rate(self) -> Decimal | None:
        """The fixed annual rate; None when it follows a dated reference-rate table."""
        if self.rate is not None:
            return self.rate
        if isinstance(self.reference_rate, str):
            return None
        return (self.reference_rate or Decimal(0)) + self.margin


LateFee = Annotated[FixedFee | PercentFee | UkStatutoryInterest | Interest,
                    Field(discriminator="kind")]
