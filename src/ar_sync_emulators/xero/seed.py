"""A real-looking New Zealand Xero organisation for the demo, the tests and the benchmarks.

GST at 15% (OUTPUT2 on the sales accounts), tax-exclusive, tax-inclusive and no-tax invoices,
percentage and amount discounts, two tracking categories, item codes, an AUD customer
(multi-currency, zero-rated export), part-paid invoices and a period lock date, so that every
line shape a fee line must leave untouched is there. Deterministic: same seed, same data.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from ar_sync.domain.money import round_money
from ar_sync_emulators.books import DEMO_TODAY
from ar_sync_emulators.xero.model import (
    Organisation,
    XContact,
    XHistory,
    XInvoice,
    XLine,
    XPayment,
    XTracking,
    stable_id,
    truncate_ms,
)
from ar_sync_emulators.xero.tax import TaxSetup

# Each invoice gets one shape, in turn: (LineAmountTypes, what is special about its lines).
SHAPES = ("exclusive", "inclusive", "discount_rate", "discount_amount", "tracked", "no_tax",
          "foreign", "part_paid")
_ITEMS = {"SVC-INSTALL": "Installation", "SVC-MAINT": "Maintenance visit",
          "MAT-COPPER": "Copper fittings"}
_NAMES = ("Aroha Plumbing", "Kauri Joinery", "Tui Electrics", "Rimu Design", "Kea Logistics",
          "Manuka Foods", "Pohutukawa Studio", "Totara Builders", "Harbour Imports AU",
          "Weka Garage")


# region -> (sales tax on the accounts, the zero rate of exports)
_REGION_TAX = {"NZ": ("OUTPUT2", "ZERORATED"), "GLOBAL": ("NONE", "NONE")}


def _tax_setup(tenant: str, region: str) -> TaxSetup:
    tax = TaxSetup.region(region, sales_tax=_REGION_TAX[region][0])
    tax.items = {code: stable_id(tenant, "item", code) for code in _ITEMS}
    tax.tracking = {
        name: (stable_id(tenant, "tracking", name),
               {o: stable_id(tenant, "tracking", name, o) for o in options})
        for name, options in (("Region", ("North", "South")),
                              ("Department", ("Retail", "Trade")))}
    return tax


def _tracking(tax: TaxSetup, region: str, department: str) -> tuple[XTracking, ...]:
    out = []
    for name, option in (("Region", region), ("Department", department)):
        cat_id, options = tax.tracking[name]
        out.append(XTracking(cat_id, name, options[option], option))
    return tuple(out)


def _lines(rng: random.Random, tenant: str, number: str, shape: str,
           tax: TaxSetup) -> list[XLine]:
    sales, zero = _REGION_TAX[tax.version]
    rate = tax.rates[zero if shape == "foreign" else sales]
    out: list[XLine] = []
    for n in range(rng.randint(1, 3)):
        qty = Decimal(rng.choice((1, 1, 2, 3, 7)))
        unit = Decimal(rng.randint(4000, 250000)) / 100
        line = XLine(stable_id(tenant, number, f"line{n}"), rng.choice(list(_ITEMS.values())),
                     qty, unit, "200", rate.tax_type, rate.rate)
        if shape == "discount_rate" and n == 0:
            line.discount_rate = Decimal(rng.choice((5, 10, 12.5)))
        if shape == "discount_amount" and n == 0:
            line.discount_amount = round_money(qty * unit / 10, "NZD")
        if shape == "tracked":
            line.tracking = _tracking(tax, rng.choice(("North", "South")),
                                      rng.choice(("Retail", "Trade")))
            line.item_code = rng.choice(list(_ITEMS))
        out.append(line)
    return out


def nz_gst_organisation(tenant: str, now: datetime, *, today: date = DEMO_TODAY,
                        invoices: int = 64, seed: int = 64, lock_days: int = 75,
                        region: str = "NZ") -> Organisation:
    """The organisation; invoices dated `lock_days` or more before today are in a locked
    period (PeriodLockDate = today - lock_days). `region="GLOBAL"`: the same shapes in an
    organisation that charges no tax (every sales line NONE)."""
    rng = random.Random(seed)
    name = "Kowhai Trades Ltd" if region == "NZ" else "Plain Trading Ltd"
    org = Organisation(tenant_id=tenant, name=name, base_currency="NZD",
                       tax=_tax_setup(tenant, region), country_code="NZ",
                       period_lock=today - timedelta(days=lock_days))
    stamp = truncate_ms(now - timedelta(days=400))
    for i, name in enumerate(_NAMES):
        cid = stable_id(tenant, "contact", name)
        email = None if i == 5 else f"accounts@{name.lower().replace(' ', '')}.example"
        org.contacts[cid] = XContact(cid, name, email, "AUD" if name.endswith("AU") else "NZD",
                                     stamp)
    nz = [c for c in org.contacts.values() if c.currency == "NZD"]
    au = [c for c in org.contacts.values() if c.currency == "AUD"]
    for i in range(invoices):
        shape = SHAPES[i % len(SHAPES)]
        number = f"INV-{i + 1:04d}"
        contact = au[0] if shape == "foreign" else nz[rng.randrange(len(nz))]
        due = today - timedelta(days=rng.randint(-20, 150))
        issued = due - timedelta(days=20)
        inv = XInvoice(
            id=stable_id(tenant, number), number=number, type="ACCREC", contact_id=contact.id,
            date=issued, due_date=due, currency=contact.currency, status="AUTHORISED",
            lines=_lines(rng, tenant, number, shape, org.tax), reference=f"PO {1000 + i}",
            updated=stamp, online_token=stable_id("online", tenant, number),
            amount_types={"inclusive": "Inclusive", "discount_amount": "Inclusive",
                          "no_tax": "NoTax"}.get(shape, "Exclusive"))
        created = min(datetime.combine(issued, time(9), tzinfo=UTC), now - timedelta(hours=1))
        inv.updated = truncate_ms(created)
        inv.history.append(XHistory(created, "Created", f"INV {number} created."))
        inv.history.append(XHistory(created, "Approved", f"INV {number} approved."))
        if shape == "part_paid":
            paid = round_money(inv.total * Decimal(rng.randint(20, 70)) / 100, inv.currency)
            inv.payments.append(XPayment(stable_id(tenant, number, "pay"), paid,
                                         min(due, today)))
        org.invoices[inv.id] = inv
    org.next_number = invoices + 1
    return org
