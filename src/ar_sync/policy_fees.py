"""Fee rules of a rules file (`late_fees:`): fixed, percent and statutory interest."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    Field,
    field_validator,
)

from ar_sync.models import FeeMode
from ar_sync.policy_fields import (
    DEFAULT_FEE_LABEL,
    AmountsField,
    Currency,
    Every,
    FeeLabel,
    Int,
    Name,
    Number,
    _Model,
)


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
    tax: str | None = Field(None, min_length=1, max_length=100,
                            description="Platform tax code/name for the fee; default: the "
                            "edition's no-tax / out-of-scope code")


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
