"""The QuickBooks emulator's credit memos and zero-amount payments (how a waiver is applied).

Modelled on Intuit's Accounting API reference (developer.intuit.com, entities CreditMemo and
Payment) and python-quickbooks' quickbooks/objects/creditmemo.py and payment.py:

- `POST /creditmemo` creates a CreditMemo for a customer: `Line` as on an invoice (the item
  must exist), `PrivateNote` (internal memo, not printed), `TotalAmt` computed from the lines,
  `Balance` = `RemainingCredit` = what is not yet applied. The credit is NOT applied to any
  invoice by itself here: QuickBooks applies credits automatically only when the company
  setting "Automatically apply credits" is on; the emulator models it off (the safe side: the
  connector applies the credit explicitly, so it never lands on another invoice).
- A credit memo is applied to an invoice with a Payment (`POST /payment`) of `TotalAmt` 0
  whose `Line` links the invoice (`LinkedTxn` TxnType Invoice) and the credit memo (TxnType
  CreditMemo) with the same amount. The invoice's `Balance` and the memo's `RemainingCredit`
  drop by it, and the invoice gains a `LinkedTxn` to the payment. Applying more than the
  invoice's balance or the memo's remaining credit, mixing currencies or customers, or
  amounts that do not add up is refused with a 6000 Business Validation Error (QuickBooks'
  exact wording for each case is not documented; the emulator refuses on the safe side).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from ar_sync.domain.money import round_money, to_decimal
from ar_sync_emulators.base import Effect
from ar_sync_emulators.quickbooks.shapes import amount, qbo_time

MARKER = re.compile(r"ar-sync:([A-Za-z0-9_\-]+)")
CREDIT_ENTITIES = ("CreditMemo", "Payment")


class QboFail(Protocol):
    def __call__(self, status: int, code: str, message: str, detail: str = "") -> Exception: ...


class _Emulator(Protocol):
    rows: dict[str, dict[str, dict[str, Any]]]
    _paid: dict[str, Decimal]
    clock: Callable[[], datetime]

    def _new_id(self) -> str: ...

    def _lines(self, lines: Any) -> list[dict[str, Any]]: ...

    def _check_customer(self, inv: dict[str, Any]) -> dict[str, Any]: ...

    def _recompute(self, inv: dict[str, Any]) -> None: ...

    def _touch(self, row: dict[str, Any], *, bump: bool = True) -> None: ...


def _stamp(emu: _Emulator) -> dict[str, str]:
    stamp = qbo_time(emu.clock())
    return {"CreateTime": stamp, "LastUpdatedTime": stamp}


def create_credit_memo(emu: _Emulator, body: dict[str, Any], fail: QboFail) -> dict[str, Any]:
    row = {k: v for k, v in body.items() if v not in ("", None, [], {})}
    for computed in ("TotalAmt", "Balance", "RemainingCredit", "sparse", "SyncToken"):
        row.pop(computed, None)
    customer = emu._check_customer(row)
    row["Line"] = emu._lines(body.get("Line") or [])
    currency = str((row.get("CurrencyRef") or customer.get("CurrencyRef")
                    or {"value": "USD"})["value"])
    total = round_money(sum((to_decimal(ln["Amount"]) for ln in row["Line"]), Decimal(0)),
                        currency)
    if total <= 0:
        raise fail(400, "6000", "A business validation error has occurred while processing "
                   "your request", "Business Validation Error: the credit memo total must be "
                   "more than zero")
    cid = emu._new_id()
    row.update({"Id": cid, "SyncToken": "0", "domain": "QBO", "sparse": False,
                "CurrencyRef": {"value": currency}, "TotalAmt": amount(total),
                "Balance": amount(total), "RemainingCredit": amount(total),
                "CustomerRef": {"value": customer["Id"], "name": customer["DisplayName"]},
                "MetaData": _stamp(emu)})
    row.setdefault("DocNumber", f"CM{cid}")
    row.setdefault("TxnDate", qbo_time(emu.clock())[:10])
    row.setdefault("PrivateNote", "")
    emu.rows["CreditMemo"][cid] = row
    return row


def _business(fail: QboFail, detail: str) -> Exception:
    return fail(400, "6000", "A business validation error has occurred while processing your "
                "request", f"Business Validation Error: {detail}")


def create_payment(emu: _Emulator, body: dict[str, Any], fail: QboFail) -> dict[str, Any]:
    """A payment; with TotalAmt 0 it only applies credit memos to invoices."""
    customer = emu._check_customer(body)
    total = to_decimal(body.get("TotalAmt", 0))
    if total != 0:
        raise fail(400, "4000", "Unsupported Operation",
                   "the emulator records money payments with QuickBooksEmulator.pay(); "
                   "POST /payment only applies credits (TotalAmt 0)")
    invoices: list[tuple[dict[str, Any], Decimal]] = []
    credits: list[tuple[dict[str, Any], Decimal]] = []
    for line in body.get("Line") or []:
        value = to_decimal(line.get("Amount", 0))
        for linked in line.get("LinkedTxn") or []:
            kind, txn = str(linked.get("TxnType")), str(linked.get("TxnId"))
            table = {"Invoice": emu.rows["Invoice"], "CreditMemo": emu.rows["CreditMemo"]}.get(
                kind)
            if table is None or txn not in table:
                raise fail(400, "2500", "Invalid Reference Id",
                           f"Invalid Reference Id : {kind} {txn} does not exist")
            (invoices if kind == "Invoice" else credits).append((table[txn], value))
    if not invoices or not credits:
        raise _business(fail, "a zero-amount payment must link an invoice and a credit memo")
    rows = [r for r, _ in invoices + credits]
    if any(str(r["CustomerRef"]["value"]) != str(customer["Id"]) for r in rows):
        raise _business(fail, "every linked transaction must belong to the payment's customer")
    if len({r["CurrencyRef"]["value"] for r in rows}) != 1:
        raise _business(fail, "linked transactions must share one currency")
    applied = sum((v for _, v in invoices), Decimal(0))
    if applied != sum((v for _, v in credits), Decimal(0)) or applied <= 0:
        raise _business(fail, "the amounts applied to invoices must equal the credits used")
    for inv, value in invoices:
        if value > to_decimal(inv["Balance"]):
            raise _business(fail, f"the amount applied to invoice {inv.get('DocNumber')} is "
                            "more than its open balance")
    for memo, value in credits:
        if value > to_decimal(memo["RemainingCredit"]):
            raise _business(fail, f"credit memo {memo.get('DocNumber')} has not that much "
                            "credit left")
    pid = emu._new_id()
    payment = {"Id": pid, "SyncToken": "0", "domain": "QBO", "sparse": False,
               "TotalAmt": amount(Decimal(0)), "UnappliedAmt": amount(Decimal(0)),
               "CustomerRef": {"value": customer["Id"], "name": customer["DisplayName"]},
               "CurrencyRef": rows[0]["CurrencyRef"], "Line": body.get("Line") or [],
               "PrivateNote": str(body.get("PrivateNote") or ""),
               "TxnDate": qbo_time(emu.clock())[:10], "MetaData": _stamp(emu)}
    for inv, value in invoices:
        emu._paid[inv["Id"]] = emu._paid.get(inv["Id"], Decimal(0)) + value
        inv.setdefault("LinkedTxn", []).append({"TxnId": pid, "TxnType": "Payment"})
        emu._recompute(inv)
        emu._touch(inv)
    for memo, value in credits:
        left = to_decimal(memo["RemainingCredit"]) - value
        memo["RemainingCredit"] = memo["Balance"] = amount(left)
        emu._touch(memo)
    emu.rows["Payment"][pid] = payment
    return payment


def credit_effects(emu: _Emulator) -> list[Effect]:
    """One `waive_fee` effect per credit memo carrying a key, on the invoice it was applied
    to (or "" while unapplied), and one `waive_applied` per application of such a memo."""
    out: list[Effect] = []
    applied_to: dict[str, list[str]] = {}
    for payment in emu.rows["Payment"].values():
        linked = [(str(t["TxnType"]), str(t["TxnId"])) for ln in payment.get("Line", [])
                  for t in ln.get("LinkedTxn") or []]
        invoices = [i for kind, i in linked if kind == "Invoice"]
        for kind, memo_id in linked:
            if kind == "CreditMemo":
                applied_to.setdefault(memo_id, []).extend(invoices)
    for memo in emu.rows["CreditMemo"].values():
        for key in MARKER.findall(memo.get("PrivateNote", "") or ""):
            targets = applied_to.get(memo["Id"], [])
            out.append(Effect("waive_fee", targets[0] if targets else "", key, memo["Id"]))
            out.extend(Effect("waive_applied", t, key, memo["Id"]) for t in targets)
    return out
