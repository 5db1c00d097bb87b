"""Xero's tax model for the emulator: tax rates per region, the chart's sales accounts, and
the per-line arithmetic of `LineAmount`, `TaxAmount`, `SubTotal`, `TotalTax` and `Total`.

Pure functions over plain data (no HTTP). Xero rounds tax on each line (its default "line
rounding"), then sums: SubTotal + TotalTax = Total, exactly, in the currency's decimals.
Sources: Xero-OpenAPI xero_accounting.yaml (`LineItem.LineAmount`, `TaxRate`), Xero developer
docs "Tax Rates" (the TaxType codes per region) and "Invoices" (LineAmountTypes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from ar_sync.domain.money import round_money

LINE_AMOUNT_TYPES = ("Exclusive", "Inclusive", "NoTax")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class TaxRate:
    """One row of GET /TaxRates."""

    tax_type: str
    name: str
    rate: Decimal  # percent, e.g. 15.0000
    report_tax_type: str
    revenue: bool = True  # CanApplyToRevenue
    status: str = "ACTIVE"

    def json(self) -> dict[str, object]:
        return {"Name": self.name, "TaxType": self.tax_type, "ReportTaxType": self.report_tax_type,
                "CanApplyToAssets": True, "CanApplyToEquity": True,
                "CanApplyToExpenses": not self.revenue, "CanApplyToLiabilities": True,
                "CanApplyToRevenue": self.revenue, "DisplayTaxRate": self.rate,
                "EffectiveRate": self.rate, "Status": self.status,
                "TaxComponents": [{"Name": self.name.split(" ")[0], "Rate": self.rate,
                                   "IsCompound": False, "IsNonRecoverable": False}]}


def _rates(*rows: tuple[str, str, str, str, bool]) -> dict[str, TaxRate]:
    return {t: TaxRate(t, n, Decimal(r), rep, rev) for t, n, r, rep, rev in rows}


# The sales-side codes of each Xero region (developer docs "Tax Rates", per-region tables).
REGION_TAX_RATES: dict[str, dict[str, TaxRate]] = {
    "NZ": _rates(("OUTPUT2", "15% GST on Income", "15.0000", "OUTPUT", True),
                 ("INPUT2", "15% GST on Expenses", "15.0000", "INPUT", False),
                 ("ZERORATED", "Zero Rated", "0.0000", "OUTPUT", True),
                 ("NONE", "No GST", "0.0000", "NONE", True)),
    "AU": _rates(("OUTPUT", "GST on Income", "10.0000", "OUTPUT", True),
                 ("INPUT", "GST on Expenses", "10.0000", "INPUT", False),
                 ("EXEMPTOUTPUT", "GST Free Income", "0.0000", "EXEMPTOUTPUT", True),
                 ("BASEXCLUDED", "BAS Excluded", "0.0000", "BASEXCLUDED", True)),
    "GLOBAL": _rates(("NONE", "Tax Exempt", "0.0000", "NONE", True),
                     ("OUTPUT", "Tax on Sales", "0.0000", "OUTPUT", True)),
}
# Each region's "no tax" code: what a fee line should carry unless the rules name another.
NO_TAX_TYPE = {"NZ": "NONE", "AU": "BASEXCLUDED", "GLOBAL": "NONE", "UK": "NONE", "US": "NONE"}


@dataclass
class Account:
    """A chart-of-accounts entry (Xero developer docs, Accounts: Code, Name, Type, Status,
    Class, TaxType); `GET /Accounts` lists them, and a sales line may use an ACTIVE account
    of Class REVENUE only."""

    code: str
    name: str
    tax_type: str  # the account's default tax: a line sent without TaxType takes this one
    type: str = "REVENUE"  # REVENUE, SALES, OTHERINCOME (Class REVENUE); EXPENSE, BANK, …
    status: str = "ACTIVE"  # ACTIVE or ARCHIVED

    @property
    def account_class(self) -> str:
        return "REVENUE" if self.type in ("REVENUE", "SALES", "OTHERINCOME") else (
            "EXPENSE" if self.type in ("EXPENSE", "DIRECTCOSTS", "OVERHEADS") else "ASSET")

    def usable_on_sales(self) -> bool:
        return self.status == "ACTIVE" and self.account_class == "REVENUE"

    def json(self) -> dict[str, object]:
        return {"AccountID": "00000000-0000-4000-8000-" + self.code.encode().hex()[:12].rjust(
                    12, "0"), "Code": self.code, "Name": self.name, "Type": self.type,
                "Status": self.status, "Class": self.account_class, "TaxType": self.tax_type,
                "EnablePaymentsToAccount": False, "ShowInExpenseClaims": False,
                "ReportingCode": "REV" if self.account_class == "REVENUE" else "EXP",
                "HasAttachments": False}


@dataclass
class TaxSetup:
    """An organisation's tax rates, sales accounts, items and tracking categories."""

    version: str = "GLOBAL"  # Organisation.Version: AU, NZ, GLOBAL, UK, US
    rates: dict[str, TaxRate] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    items: dict[str, str] = field(default_factory=dict)  # ItemCode -> ItemID
    # category name -> (TrackingCategoryID, {option name: TrackingOptionID})
    tracking: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)

    @classmethod
    def region(cls, version: str, sales_tax: str | None = None) -> TaxSetup:
        """A region's rates, with sales accounts 200 and 260 defaulting to `sales_tax`."""
        rates = dict(REGION_TAX_RATES.get(version, REGION_TAX_RATES["GLOBAL"]))
        default = sales_tax or NO_TAX_TYPE.get(version, "NONE")
        return cls(version=version, rates=rates,
                   accounts={"200": Account("200", "Sales", default),
                             "260": Account("260", "Other Revenue", default),
                             "270": Account("270", "Interest Income", default),
                             "400": Account("400", "Advertising", "NONE", "EXPENSE")})


def line_amount(quantity: Decimal, unit: Decimal, discount_rate: Decimal | None,
                discount_amount: Decimal | None, currency: str) -> Decimal:
    """Quantity x UnitAmount less the discount (Xero-OpenAPI `LineItem.LineAmount`)."""
    gross = quantity * unit
    if discount_rate is not None:
        gross = gross * (HUNDRED - discount_rate) / HUNDRED
    elif discount_amount is not None:
        gross -= discount_amount
    return round_money(gross, currency)


def line_tax(amount: Decimal, rate: Decimal, amount_types: str, currency: str) -> Decimal:
    """The tax of one line, rounded on the line (Exclusive: on top; Inclusive: within)."""
    if amount_types == "NoTax" or rate == 0:
        return round_money(Decimal(0), currency)
    if amount_types == "Inclusive":
        return round_money(amount * rate / (HUNDRED + rate), currency)
    return round_money(amount * rate / HUNDRED, currency)


def totals(lines: list[tuple[Decimal, Decimal]], amount_types: str,
           currency: str) -> tuple[Decimal, Decimal, Decimal]:
    """(SubTotal, TotalTax, Total) from each line's (LineAmount, TaxAmount)."""
    zero = round_money(Decimal(0), currency)
    tax = sum((t for _, t in lines), zero)
    amounts = sum((a for a, _ in lines), zero)
    sub = amounts - tax if amount_types == "Inclusive" else amounts
    return sub, tax, sub + tax
