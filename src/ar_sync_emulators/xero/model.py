"""In-memory state of one emulated Xero organisation, and its JSON in Xero's conventions.

Kept apart from the HTTP layer (xero/server.py) so the rules — totals, payments, which
edits an AUTHORISED invoice allows — are plain functions over plain data.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from ar_sync.domain.money import round_money
from ar_sync_emulators.books import DemoCompany, DemoInvoice
from ar_sync_emulators.xero.tax import TaxSetup, line_amount, line_tax, totals
from ar_sync_emulators.xero.where import GUID, Value

_NS = uuid.UUID("6b1d3c0e-6a57-4f0e-9f3e-2f5b8a9d7c41")
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def stable_id(*parts: str) -> str:
    """A GUID derived from names, so a seeded organisation has the same ids on every run."""
    return str(uuid.uuid5(_NS, "/".join(parts)))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms_date(value: datetime | date) -> str:
    """Xero's JSON timestamp: `/Date(1700000000000+0000)/` (dates are midnight UTC)."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0), tzinfo=UTC)
    if value.tzinfo is None:
        return f"/Date({int(value.timestamp() * 1000)}+0000)/"
    # whole milliseconds in integers: `timestamp() * 1000` through a float can land a
    # millisecond short (2038-01-19 03:14:08.002 gave ...8001)
    return f"/Date({(value - _EPOCH) // timedelta(milliseconds=1)}+0000)/"


def parse_xero_date(value: object) -> date:
    """A date as clients send it: `/Date(ms±zzzz)/`, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS`."""
    text = str(value)
    m = _MS_DATE.match(text)
    if m:
        return datetime.fromtimestamp(int(m.group(1)) / 1000, tz=UTC).date()
    try:
        return date.fromisoformat(text[:10])
    except ValueError as exc:
        raise ValidationFailed(f"'{text}' is not a valid date") from exc


def routes(*templates: str) -> list[tuple[str, re.Pattern[str], str]]:
    """(method, regex over the lower-cased path, template) for endpoint templates such as
    `GET /api.xro/2.0/Invoices/{id}` (the template also names the endpoint in the counters)."""
    out = []
    for template in templates:
        method, path = template.split(" ", 1)
        pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(path.lower()))
        out.append((method, re.compile(f"^{pattern}$"), template))
    return out


def truncate_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class ValidationFailed(Exception):
    """A business-rule rejection, answered with Xero's ValidationException envelope."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass
class XContact:
    id: str
    name: str
    email: str | None
    currency: str
    updated: datetime


@dataclass(frozen=True)
class XTracking:
    category_id: str
    name: str
    option_id: str
    option: str


@dataclass
class XLine:
    """One line as Xero stores it; the tax rate is fixed when the line is written."""

    id: str
    description: str
    quantity: Decimal
    unit_amount: Decimal
    account_code: str = "200"
    tax_type: str = "NONE"
    tax_rate: Decimal = Decimal(0)
    tax_override: Decimal | None = None  # a TaxAmount the client sent instead of Xero's
    discount_rate: Decimal | None = None
    discount_amount: Decimal | None = None
    item_code: str | None = None
    tracking: tuple[XTracking, ...] = ()

    def amount(self, currency: str) -> Decimal:
        return line_amount(self.quantity, self.unit_amount, self.discount_rate,
                           self.discount_amount, currency)

    def tax(self, currency: str, amount_types: str) -> Decimal:
        if amount_types == "NoTax":
            return round_money(Decimal(0), currency)
        if self.tax_override is not None:
            return round_money(self.tax_override, currency)
        return line_tax(self.amount(currency), self.tax_rate, amount_types, currency)


@dataclass
class XHistory:
    at: datetime
    changes: str  # "Note", "Created", "Approved", "Paid", "Edited", "Voided"
    details: str
    user: str = "System Generated"


@dataclass
class XPayment:
    id: str
    amount: Decimal
    on: date


@dataclass
class XInvoice:
    id: str
    number: str
    type: str
    contact_id: str
    date: dt.date
    due_date: dt.date | None
    currency: str
    status: str
    lines: list[XLine]
    reference: str
    updated: datetime
    payments: list[XPayment] = field(default_factory=list)
    credits: list[XPayment] = field(default_factory=list)  # credit notes (xero_credit.py)
    history: list[XHistory] = field(default_factory=list)
    sent_to_contact: bool = False
    online_token: str = ""
    amount_types: str = "NoTax"  # LineAmountTypes: Exclusive, Inclusive or NoTax
    # Raw JSON fields forced onto the answer (tests: a malformed invoice from the platform).
    overrides: dict[str, Any] = field(default_factory=dict)

    def _totals(self) -> tuple[Decimal, Decimal, Decimal]:
        return totals([(line.amount(self.currency), line.tax(self.currency, self.amount_types))
                       for line in self.lines], self.amount_types, self.currency)

    @property
    def sub_total(self) -> Decimal:
        return self._totals()[0]

    @property
    def total_tax(self) -> Decimal:
        return self._totals()[1]

    @property
    def total(self) -> Decimal:
        return self._totals()[2]

    @property
    def amount_paid(self) -> Decimal:
        return sum((p.amount for p in self.payments), Decimal(0))

    @property
    def amount_credited(self) -> Decimal:
        return sum((c.amount for c in self.credits), Decimal(0))

    @property
    def amount_due(self) -> Decimal:
        if self.status in ("VOIDED", "DELETED"):
            return Decimal(0)
        return self.total - self.amount_paid - self.amount_credited


@dataclass
class Organisation:
    """One Xero tenant: its contacts, invoices and the e-mails it was asked to send."""

    tenant_id: str
    name: str
    base_currency: str
    contacts: dict[str, XContact] = field(default_factory=dict)
    invoices: dict[str, XInvoice] = field(default_factory=dict)
    emails: list[tuple[str, str | None, datetime]] = field(default_factory=list)
    request_keys: set[str] = field(default_factory=set)  # Idempotency-Keys received (effects)
    next_number: int = 1
    tax: TaxSetup = field(default_factory=lambda: TaxSetup.region("GLOBAL"))
    country_code: str = "US"
    period_lock: date | None = None  # PeriodLockDate
    year_end_lock: date | None = None  # EndOfYearLockDate
    email_limit: int | None = 1000  # e-mails the API may send a day (None: unlimited)
    credit_notes: dict[str, Any] = field(default_factory=dict)  # id -> XCreditNote
    contact_groups: dict[str, Any] = field(default_factory=dict)  # id -> XGroup (groups.py)
    created: datetime = field(default_factory=lambda: datetime(2020, 1, 1, tzinfo=UTC))

    def lock_messages(self, day: date) -> list[str]:
        """Xero's refusals for a change to a document dated `day` (empty: not locked)."""
        out = []
        if self.period_lock is not None and day <= self.period_lock:
            out.append("The document date cannot be before the period lock date, currently "
                       f"set at {self.period_lock:%d-%b-%Y}")
        if self.year_end_lock is not None and day <= self.year_end_lock:
            out.append("The document date cannot be before the end of year lock date, "
                       f"currently set at {self.year_end_lock:%d-%b-%Y}")
        return out

    def emails_on(self, day: date) -> int:
        return sum(1 for _, _, at in self.emails if at.date() == day)

    def new_number(self) -> str:
        while True:
            number = f"INV-{self.next_number:05d}"
            self.next_number += 1
            if all(inv.number != number for inv in self.invoices.values()):
                return number


# ----------------------------------------------------------------------------- seeding


def _moment(day: date, hour: int, now: datetime) -> datetime:
    return min(datetime.combine(day, time(hour), tzinfo=UTC), now - timedelta(minutes=5))


def seed_invoice(org: Organisation, inv: DemoInvoice, now: datetime) -> XInvoice:
    created = _moment(inv.issue_date, 9, now)
    lines = [XLine(stable_id(org.tenant_id, inv.id, f"line{i}"), line.description,
                   Decimal(1), line.amount) for i, line in enumerate(inv.lines)]
    status = {"open": "AUTHORISED", "paid": "PAID", "voided": "VOIDED"}[inv.status]
    x = XInvoice(id=stable_id(org.tenant_id, inv.id), number=inv.number, type="ACCREC",
                 contact_id=stable_id(org.tenant_id, inv.customer_id), date=inv.issue_date,
                 due_date=inv.due_date, currency=inv.currency, status=status, lines=lines,
                 reference="#disputed customer disputes this invoice" if inv.disputed else "",
                 updated=truncate_ms(created), online_token=stable_id("online", inv.id))
    x.history.append(XHistory(created, "Created", f"INV {inv.number} created."))
    x.history.append(XHistory(created, "Approved", f"INV {inv.number} approved."))
    if inv.amount_paid > 0:
        paid_on = min(inv.due_date, now.date())
        x.payments.append(XPayment(stable_id(org.tenant_id, inv.id, "pay"), inv.amount_paid,
                                   paid_on))
        x.updated = truncate_ms(_moment(paid_on, 15, now))
        x.history.append(XHistory(x.updated, "Paid" if status == "PAID" else "Payment",
                                  f"Payment received of {inv.amount_paid}"))
    if status == "VOIDED":
        x.updated = truncate_ms(_moment(inv.due_date, 11, now))
        x.history.append(XHistory(x.updated, "Voided", f"INV {inv.number} voided."))
    return x


def seed_organisation(company: DemoCompany, tenant_id: str, now: datetime) -> Organisation:
    org = Organisation(tenant_id=tenant_id, name=company.name,
                       base_currency=company.home_currency)
    stamp = truncate_ms(now - timedelta(days=200))
    for c in company.customers:
        cid = stable_id(tenant_id, c.id)
        org.contacts[cid] = XContact(cid, c.name, c.email, c.currency, stamp)
    for inv in company.invoices:
        x = seed_invoice(org, inv, now)
        org.invoices[x.id] = x
    org.next_number = len(company.invoices) + 1
    return org


# ----------------------------------------------------------------------------- JSON


def contact_json(c: XContact, *, summary: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"ContactID": c.id, "ContactStatus": "ACTIVE", "Name": c.name,
                           "EmailAddress": c.email or "", "IsCustomer": True,
                           "IsSupplier": False, "DefaultCurrency": c.currency,
                           "UpdatedDateUTC": ms_date(c.updated), "HasAttachments": False}
    if not summary:
        out.update({"Addresses": [], "Phones": [], "ContactGroups": [], "ContactPersons": [],
                    "HasValidationErrors": False})
    return out


def line_json(line: XLine, inv: XInvoice) -> dict[str, Any]:
    out: dict[str, Any] = {
        "LineItemID": line.id, "Description": line.description, "Quantity": line.quantity,
        "UnitAmount": line.unit_amount, "AccountCode": line.account_code,
        "TaxType": line.tax_type, "TaxAmount": line.tax(inv.currency, inv.amount_types),
        "LineAmount": line.amount(inv.currency),
        "Tracking": [{"TrackingCategoryID": t.category_id, "Name": t.name,
                      "TrackingOptionID": t.option_id, "Option": t.option}
                     for t in line.tracking]}
    if line.item_code:
        out["ItemCode"] = line.item_code
    if line.discount_rate is not None:
        out["DiscountRate"] = line.discount_rate
    if line.discount_amount is not None:
        out["DiscountAmount"] = line.discount_amount
    return out


def organisation_json(org: Organisation) -> dict[str, Any]:
    """GET /Organisation (the fields ar-sync and xero-python's model read)."""
    out: dict[str, Any] = {
        "OrganisationID": org.tenant_id, "Name": org.name, "LegalName": org.name,
        "PaysTax": org.tax.version != "GLOBAL", "Version": org.tax.version,
        "OrganisationType": "COMPANY", "BaseCurrency": org.base_currency,
        "CountryCode": org.country_code, "IsDemoCompany": False,
        "OrganisationStatus": "ACTIVE", "FinancialYearEndDay": 31,
        "FinancialYearEndMonth": 3, "SalesTaxBasis": "INVOICE", "SalesTaxPeriod": "TWOMONTHS",
        "DefaultSalesTax": "Tax Exclusive", "DefaultPurchasesTax": "Tax Exclusive",
        "CreatedDateUTC": ms_date(org.created), "OrganisationEntityType": "COMPANY",
        "Timezone": "NEWZEALANDSTANDARDTIME" if org.country_code == "NZ" else "UTC",
        "ShortCode": "!" + org.tenant_id[:5], "Edition": "BUSINESS", "Class": "STANDARD"}
    if org.period_lock is not None:
        out["PeriodLockDate"] = ms_date(org.period_lock)
    if org.year_end_lock is not None:
        out["EndOfYearLockDate"] = ms_date(org.year_end_lock)
    return out


def invoice_json(org: Organisation, inv: XInvoice, *, lines: bool = True,
                 summary: bool = False) -> dict[str, Any]:
    contact = org.contacts[inv.contact_id]
    out: dict[str, Any] = {
        "Type": inv.type, "InvoiceID": inv.id, "InvoiceNumber": inv.number,
        "Reference": inv.reference, "AmountDue": inv.amount_due,
        "AmountPaid": inv.amount_paid, "AmountCredited": inv.amount_credited,
        "CurrencyRate": Decimal(1), "IsDiscounted": False, "HasAttachments": False,
        "HasErrors": False,
        "Contact": ({"ContactID": contact.id, "Name": contact.name} if summary
                    else contact_json(contact, summary=True)),
        "DateString": inv.date.isoformat() + "T00:00:00", "Date": ms_date(inv.date),
        "Status": inv.status, "LineAmountTypes": inv.amount_types,
        "SubTotal": inv.sub_total, "TotalTax": inv.total_tax, "Total": inv.total,
        "UpdatedDateUTC": ms_date(inv.updated),
        "CurrencyCode": inv.currency, "SentToContact": inv.sent_to_contact,
    }
    if inv.due_date is not None:
        out["DueDateString"] = inv.due_date.isoformat() + "T00:00:00"
        out["DueDate"] = ms_date(inv.due_date)
    if inv.status == "PAID" and inv.payments:
        out["FullyPaidOnDate"] = ms_date(max(p.on for p in inv.payments))
    if not summary:
        out["Payments"] = [{"PaymentID": p.id, "Date": ms_date(p.on), "Amount": p.amount,
                            "CurrencyRate": Decimal(1), "HasAccount": False,
                            "HasValidationErrors": False} for p in inv.payments]
        out.update({"CreditNotes": [{"CreditNoteID": c.id, "AppliedAmount": c.amount,
                                     "Date": ms_date(c.on)} for c in inv.credits],
                    "Prepayments": [], "Overpayments": []})
        if lines:
            out["LineItems"] = [line_json(line, inv) for line in inv.lines]
    for key, value in inv.overrides.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def history_json(record: XHistory) -> dict[str, Any]:
    return {"Changes": record.changes, "DateUTCString": record.at.strftime("%Y-%m-%dT%H:%M:%S"),
            "DateUTC": ms_date(record.at), "User": record.user, "Details": record.details}


# Field types the where parser accepts for invoices, and the record it evaluates against.
INVOICE_WHERE_FIELDS: dict[str, type] = {
    "Type": str, "Status": str, "InvoiceNumber": str, "Reference": str, "CurrencyCode": str,
    "InvoiceID": GUID, "Contact.ContactID": GUID, "Contact.Name": str,
    "AmountDue": Decimal, "AmountPaid": Decimal, "Total": Decimal, "SubTotal": Decimal,
    "Date": date, "DueDate": date, "UpdatedDateUTC": datetime, "SentToContact": bool,
}
CONTACT_WHERE_FIELDS: dict[str, type] = {
    "Name": str, "EmailAddress": str, "ContactID": GUID, "ContactStatus": str,
    "IsCustomer": bool, "IsSupplier": bool,
}


def invoice_record(org: Organisation, inv: XInvoice) -> dict[str, Value]:
    contact = org.contacts[inv.contact_id]
    return {"Type": inv.type, "Status": inv.status, "InvoiceNumber": inv.number,
            "Reference": inv.reference, "CurrencyCode": inv.currency, "InvoiceID": inv.id,
            "Contact.ContactID": contact.id, "Contact.Name": contact.name,
            "AmountDue": inv.amount_due, "AmountPaid": inv.amount_paid, "Total": inv.total,
            "SubTotal": inv.sub_total, "Date": inv.date, "DueDate": inv.due_date,
            "UpdatedDateUTC": inv.updated, "SentToContact": inv.sent_to_contact}


def contact_record(c: XContact) -> dict[str, Value]:
    return {"Name": c.name, "EmailAddress": c.email or "", "ContactID": c.id,
            "ContactStatus": "ACTIVE", "IsCustomer": True, "IsSupplier": False}


_DECIMAL_MARK = re.compile(r'"\\u0000D(-?[0-9.E+-]+)\\u0000"')


def dumps(payload: object) -> bytes:
    """JSON with Decimals written as exact numbers (Xero sends numbers, never strings)."""

    def default(value: object) -> str:
        if isinstance(value, Decimal):
            return f"\x00D{value}\x00"
        if isinstance(value, datetime | date):
            return value.isoformat()
        raise TypeError(f"not JSON serialisable: {type(value).__name__}")

    text = json.dumps(payload, default=default)
    return _DECIMAL_MARK.sub(r"\1", text).encode("utf-8")
