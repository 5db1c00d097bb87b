"""QuickBooks Online editions and their sales-tax model: the TaxCode / TaxRate entities a
company holds, and which codes a line may carry.

US companies mark each line `TAX` or `NON` and take the rate from the invoice's
`TxnTaxDetail.TxnTaxCodeRef`; UK, Canadian and Australian companies put a real `TaxCodeRef`
(VAT / GST / HST code) on every sales line and choose `GlobalTaxCalculation`. Sources are cited
in the README's emulator section ("Intuit: Manage sales tax for non-US locales", "US sales tax").
Code names are what a new company of each edition lists; they vary by company, which is why the
connector looks codes up instead of hard-coding them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class TaxRateDef:
    id: str
    name: str
    rate: Decimal  # percent


@dataclass(frozen=True)
class TaxCodeDef:
    id: str
    name: str
    description: str
    rate_ids: tuple[str, ...]  # sales rates; empty: no tax (US NON)


@dataclass(frozen=True)
class Edition:
    """One country's QuickBooks Online: its tax codes and rules about them."""

    country: str  # ISO code as CompanyInfo.Country reports it
    home_currency: str
    tax_word: str  # in the Fault 6000 message: VAT, GST, GST/HST
    rates: tuple[TaxRateDef, ...]
    codes: tuple[TaxCodeDef, ...]
    line_code_required: bool  # non-US: every sales line needs a TaxCodeRef (Fault 6000)
    default_sales_code: str = ""  # US: the TxnTaxCodeRef used when an invoice names none

    @property
    def us(self) -> bool:
        return self.country == "US"

    def code(self, code_id: str) -> TaxCodeDef | None:
        for code in self.codes:
            if code.id == code_id or code.name == code_id:
                return code
        return None

    def rate_of(self, code: TaxCodeDef) -> Decimal:
        """The code's combined sales rate, percent."""
        by_id = {r.id: r.rate for r in self.rates}
        return sum((by_id[r] for r in code.rate_ids), Decimal(0))


def _rates(*items: tuple[str, str, str]) -> tuple[TaxRateDef, ...]:
    return tuple(TaxRateDef(i, name, Decimal(rate)) for i, name, rate in items)


def _codes(*items: tuple[str, str, str, tuple[str, ...]]) -> tuple[TaxCodeDef, ...]:
    return tuple(TaxCodeDef(i, name, desc, rates) for i, name, desc, rates in items)


US = Edition(
    country="US", home_currency="USD", tax_word="sales tax", line_code_required=False,
    rates=_rates(("1", "California", "7.25"), ("2", "San Francisco", "1.375")),
    codes=_codes(("TAX", "TAX", "Taxable line (rate from TxnTaxCodeRef)", ()),
                 ("NON", "NON", "Non-taxable line", ()),
                 ("3", "California - San Francisco", "CA + SF district", ("1", "2"))),
    default_sales_code="3",
)
UK = Edition(
    country="GB", home_currency="GBP", tax_word="VAT", line_code_required=True,
    rates=_rates(("1", "20.0% S", "20"), ("2", "5.0% R", "5"), ("3", "0.0% Z", "0"),
                 ("4", "Exempt", "0"), ("5", "No VAT", "0")),
    codes=_codes(("2", "20.0% S", "Standard rated", ("1",)),
                 ("3", "5.0% R", "Reduced rate", ("2",)),
                 ("4", "0.0% Z", "Zero rated", ("3",)),
                 ("5", "Exempt", "Exempt from VAT", ("4",)),
                 ("6", "No VAT", "Outside the scope of VAT", ("5",))),
)
CA = Edition(
    country="CA", home_currency="CAD", tax_word="GST/HST", line_code_required=True,
    rates=_rates(("1", "GST", "5"), ("2", "HST ON", "13"), ("3", "Zero-rated", "0"),
                 ("4", "Exempt", "0"), ("5", "Out of Scope", "0")),
    codes=_codes(("2", "GST", "GST 5%", ("1",)), ("3", "HST ON", "HST Ontario 13%", ("2",)),
                 ("4", "Zero-rated", "Zero-rated supplies", ("3",)),
                 ("5", "Exempt", "Exempt supplies", ("4",)),
                 ("6", "Out of Scope", "Outside the scope of GST/HST", ("5",))),
)
AU = Edition(
    country="AU", home_currency="AUD", tax_word="GST", line_code_required=True,
    rates=_rates(("1", "GST (sales)", "10"), ("2", "GST free", "0"), ("3", "Out of Scope", "0")),
    codes=_codes(("2", "GST", "GST 10%", ("1",)), ("3", "GST free", "GST-free sales", ("2",)),
                 ("4", "Out of Scope", "Not reportable for GST", ("3",))),
)
EDITIONS = {"US": US, "GB": UK, "UK": UK, "CA": CA, "AU": AU}


def edition(name: str | Edition) -> Edition:
    if isinstance(name, Edition):
        return name
    try:
        return EDITIONS[name.upper()]
    except KeyError:
        raise ValueError(f"unknown QuickBooks edition {name!r}; "
                         f"choose from {', '.join(sorted(EDITIONS))}") from None


def tax_rows(ed: Edition, stamp: str) -> dict[str, dict[str, dict[str, Any]]]:
    """The TaxRate and TaxCode entities as QBO returns them from a query."""
    meta = {"CreateTime": stamp, "LastUpdatedTime": stamp}
    rates = {r.id: {"Id": r.id, "Name": r.name, "Description": r.name, "Active": True,
                    "RateValue": float(r.rate) if r.rate % 1 else int(r.rate),
                    "SpecialTaxType": "NONE", "DisplayType": "ReadOnly",
                    "AgencyRef": {"value": "1"}, "SyncToken": "0", "domain": "QBO",
                    "sparse": False, "MetaData": meta} for r in ed.rates}
    codes: dict[str, dict[str, Any]] = {}
    for c in ed.codes:
        detail = [{"TaxRateRef": {"value": r, "name": next(x.name for x in ed.rates
                                                            if x.id == r)},
                   "TaxTypeApplicable": "TaxOnAmount", "TaxOrder": 0} for r in c.rate_ids]
        codes[c.id] = {"Id": c.id, "Name": c.name, "Description": c.description,
                       "Active": True, "Hidden": False,
                       "Taxable": bool(c.rate_ids) or c.id == "TAX",
                       "TaxGroup": len(c.rate_ids) > 1,
                       "SalesTaxRateList": {"TaxRateDetail": detail},
                       "PurchaseTaxRateList": {"TaxRateDetail": []},
                       "SyncToken": "0", "domain": "QBO", "sparse": False, "MetaData": meta}
    return {"TaxRate": rates, "TaxCode": codes}
