"""A neutral, deterministic demo company that both emulators seed themselves from.

Platform-neutral on purpose: the QuickBooks and Xero emulators translate it into their own
shapes, so the demo, the tests and the benchmarks see the same receivables on either platform.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Literal

from ar_sync.domain.money import minor_units

DEMO_TODAY = date(2026, 11, 16)  # the fixed "today" the demo runs as of (a Monday)

InvoiceState = Literal["open", "paid", "voided"]


@dataclass(frozen=True)
class DemoCustomer:
    id: str
    name: str
    email: str | None
    currency: str


@dataclass(frozen=True)
class DemoLine:
    description: str
    amount: Decimal


@dataclass(frozen=True)
class DemoInvoice:
    id: str
    number: str
    customer_id: str
    issue_date: date
    due_date: date
    currency: str
    lines: tuple[DemoLine, ...]
    amount_paid: Decimal
    status: InvoiceState
    disputed: bool

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def balance(self) -> Decimal:
        """Amount still due (0 for paid and voided invoices)."""
        return Decimal(0) if self.status != "open" else self.total - self.amount_paid


@dataclass(frozen=True)
class DemoCompany:
    name: str
    home_currency: str
    customers: tuple[DemoCustomer, ...]
    invoices: tuple[DemoInvoice, ...]

    def customer(self, customer_id: str) -> DemoCustomer:
        for customer in self.customers:
            if customer.id == customer_id:
                return customer
        raise KeyError(customer_id)


_FIRST = ("Acme", "Bluebird", "Cedar", "Delta", "Evergreen", "Fjord", "Granite", "Harbour",
          "Iris", "Juniper", "Kestrel", "Lumen", "Maple", "Northwind", "Orchid", "Pioneer",
          "Quartz", "Riverside", "Summit", "Tidewater", "Umber", "Vantage", "Willow", "Zenith")
_SECOND = ("Bakery", "Builders", "Consulting", "Design", "Electrics", "Foods", "Garage",
           "Holdings", "Imports", "Joinery", "Logistics", "Media", "Plumbing", "Studio",
           "Supplies", "Traders")
_SERVICES = ("Consulting hours", "Monthly retainer", "Installation", "Maintenance visit",
             "Design work", "Materials", "Delivery", "Training session", "Support plan")
# Weighted currency mix; one extra customer is given BHD (3 decimals) explicitly.
_CURRENCIES = ("USD",) * 6 + ("GBP",) * 2 + ("EUR",) * 2 + ("JPY",)
# Typical price of one line, in whole units of each currency.
_SCALE: dict[str, Decimal] = {"USD": Decimal(1), "GBP": Decimal(1), "EUR": Decimal(1),
                             "JPY": Decimal(150), "BHD": Decimal("0.4")}


def _customers(rng: random.Random, count: int) -> tuple[DemoCustomer, ...]:
    out: list[DemoCustomer] = []
    for i in range(1, count + 1):
        name = f"{_FIRST[(i - 1) % len(_FIRST)]} {_SECOND[(i * 7) % len(_SECOND)]}"
        if i > len(_FIRST):
            name = f"{name} {(i - 1) // len(_FIRST) + 1}"
        currency = "BHD" if i == count else rng.choice(_CURRENCIES)
        slug = name.lower().replace(" ", "")
        email = None if i % 13 == 0 else f"accounts@{slug}.example"
        out.append(DemoCustomer(id=f"C{i:03d}", name=name, email=email, currency=currency))
    return tuple(out)


def _amount(rng: random.Random, currency: str) -> Decimal:
    """A line amount in the currency's minor units, typical size 50..3000 units."""
    whole = Decimal(rng.randint(50, 3000)) * _SCALE.get(currency, Decimal(1))
    minor = Decimal(rng.randint(0, 99)) / 100
    return (whole + minor).quantize(Decimal(1).scaleb(-minor_units(currency)))


def _lines(rng: random.Random, currency: str) -> tuple[DemoLine, ...]:
    return tuple(DemoLine(rng.choice(_SERVICES), _amount(rng, currency))
                 for _ in range(rng.randint(1, 3)))


def _paid_part(rng: random.Random, total: Decimal, currency: str) -> Decimal:
    """Between 10% and 80% of the total, rounded down to the minor unit (never the whole)."""
    share = Decimal(rng.randint(10, 80)) / 100
    unit = Decimal(1).scaleb(-minor_units(currency))
    return max(unit, (total * share).quantize(unit, rounding=ROUND_DOWN))


def _invoice(rng: random.Random, index: int, customer: DemoCustomer, today: date) -> DemoInvoice:
    roll = rng.random()
    terms = rng.choice((7, 14, 30, 30, 45))
    if roll < 0.15:  # not yet due
        due = today + timedelta(days=rng.randint(0, 30))
    else:  # overdue 1..120 days (paid ones are old invoices too)
        due = today - timedelta(days=1 + (index * 37 + rng.randint(0, 119)) % 120)
    issue = due - timedelta(days=terms)
    lines = _lines(rng, customer.currency)
    total = sum((line.amount for line in lines), Decimal(0))
    status: InvoiceState = "open"
    paid = Decimal(0)
    kind = rng.random()
    if kind < 0.30 and due < today:
        status, paid = "paid", total
    elif kind < 0.45:
        paid = _paid_part(rng, total, customer.currency)
    return DemoInvoice(id=f"I{index:05d}", number=f"INV-{index:05d}", customer_id=customer.id,
                       issue_date=issue, due_date=due, currency=customer.currency, lines=lines,
                       amount_paid=paid, status=status, disputed=False)


def _mark(invoice: DemoInvoice, *, voided: bool = False, disputed: bool = False) -> DemoInvoice:
    if voided:
        return DemoInvoice(**{**invoice.__dict__, "status": "voided",
                              "amount_paid": Decimal(0), "disputed": False})
    return DemoInvoice(**{**invoice.__dict__, "status": "open", "disputed": disputed})


def demo_company(seed: int = 7, *, today: date = DEMO_TODAY, customers: int = 40,
                 invoices: int = 300) -> DemoCompany:
    """The demo company: same seed, same company, on every machine.

    Exactly one invoice is voided and exactly one (open, overdue, unpaid) is disputed.
    """
    if customers < 2 or invoices < 4:
        raise ValueError("a demo company needs at least 2 customers and 4 invoices")
    rng = random.Random(seed)
    people = _customers(rng, customers)
    # Every customer gets at least one invoice; the rest are spread at random.
    owners = [people[i % customers] for i in range(invoices)]
    rng.shuffle(owners)
    made = [_invoice(rng, i + 1, owner, today) for i, owner in enumerate(owners)]
    opens = [i for i, inv in enumerate(made)
             if inv.status == "open" and inv.amount_paid == 0 and inv.due_date < today]
    if len(opens) < 2:  # tiny companies: force two overdue, unpaid invoices
        opens = [0, 1]
        for i in opens:
            inv = made[i]
            due = today - timedelta(days=10 + i)
            made[i] = DemoInvoice(**{**inv.__dict__, "status": "open", "amount_paid": Decimal(0),
                                     "due_date": due, "issue_date": due - timedelta(days=30)})
    voided, disputed = opens[len(opens) // 3], opens[(2 * len(opens)) // 3]
    made[voided] = _mark(made[voided], voided=True)
    made[disputed] = _mark(made[disputed], disputed=True)
    return DemoCompany(name="Demo Trading Co", home_currency="USD", customers=people,
                       invoices=tuple(made))


def large_company(invoices: int = 10_000, seed: int = 11,
                  today: date = DEMO_TODAY) -> DemoCompany:
    """A benchmark-sized company (one customer per 25 invoices); generates 10k in well under 1 s."""
    return demo_company(seed, today=today, customers=max(40, invoices // 25), invoices=invoices)
