"""Safe note templates: `{placeholder}` substitution and nothing else.

Admins write these in YAML, so they are untrusted text. A tiny parser turns a template into
literal pieces and placeholder names once, at policy load time; rendering only looks names up
in a dict of ready-made strings. There is no attribute access, no indexing, no format spec and
no conversion, so a template can never reach an object or run code (str.format is never used).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from ar_sync.domain.money import format_money

MAX_TEMPLATE_LENGTH = 2000

# Every placeholder a template may use, with what it becomes.
PLACEHOLDERS: dict[str, str] = {
    "invoice_number": "the invoice number as the customer sees it",
    "customer_name": "the customer's display name",
    "balance": "amount still due, with its currency (e.g. '1,234.50 USD')",
    "total": "the invoice total, with its currency",
    "currency": "the ISO 4217 currency code",
    "issue_date": "issue date (YYYY-MM-DD)",
    "due_date": "due date (YYYY-MM-DD)",
    "days_overdue": "whole days past the due date (negative before it)",
    "payment_link": "the platform's online payment link (empty if none)",
    "company_name": "your company name (`company_name` in the rules file)",
    "stage": "the reminder stage or rule name",
    "fee": "the fee charged, with its currency (late-fee labels only)",
    "period": "which occurrence of a recurring fee, e.g. '2026-11' or 'n3' (fee labels only)",
    "to": "who the debt is escalated to (escalation notes only)",
    "late_fee_terms": "the late-fee terms of the rules for the invoice's currency, one "
                      "sentence (empty without late fees); a message stating them announces "
                      "them (`journey.notice_days`)",
    "interest_terms": "the interest terms of the rules for the invoice's currency, one "
                      "sentence (empty without interest)",
    "deadline": "the date the final notice's deadline falls on: today + "
                "`journey.deadline_days` (YYYY-MM-DD)",
    "deadline_days": "`journey.deadline_days`: the days the final notice gives",
    "invoice_count": "how many invoices the e-mail lists (e-mail subject/body only)",
    "total_due": "the sum of their balances, per currency (e-mail subject/body only)",
}

_FEE_ONLY = frozenset({"fee", "period"})
_EMAIL_ONLY = frozenset({"invoice_count", "total_due"})
NOTE_FIELDS: frozenset[str] = frozenset(PLACEHOLDERS) - _FEE_ONLY - _EMAIL_ONLY - {"to"}
FEE_LABEL_FIELDS: frozenset[str] = frozenset(PLACEHOLDERS) - _EMAIL_ONLY - {"to"}
ESCALATION_FIELDS: frozenset[str] = frozenset(PLACEHOLDERS) - _FEE_ONLY - _EMAIL_ONLY
EMAIL_FIELDS: frozenset[str] = NOTE_FIELDS | _EMAIL_ONLY

_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")


class TemplateError(ValueError):
    """A template that cannot be used; the message names the offending placeholder."""


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text and placeholder names, alternating."""

    source: str
    literals: tuple[str, ...]  # len(literals) == len(names) + 1
    names: tuple[str, ...]

    def render(self, values: Mapping[str, str]) -> str:
        """Substitute ready-made strings; a missing value renders as an empty string."""
        out = [self.literals[0]]
        for name, literal in zip(self.names, self.literals[1:], strict=True):
            out.append(values.get(name, ""))
            out.append(literal)
        return "".join(out)


def _placeholder_error(inner: str, allowed: frozenset[str]) -> TemplateError:
    shown = "{" + inner + "}"
    if "." in inner:
        return TemplateError(f"attribute access is not allowed in placeholder {shown}")
    if "[" in inner or "]" in inner:
        return TemplateError(f"indexing is not allowed in placeholder {shown}")
    if ":" in inner or "!" in inner:
        return TemplateError(f"format specs and conversions are not allowed in {shown}")
    if _NAME.match(inner):
        hint = ", ".join(sorted(allowed))
        return TemplateError(f"unknown placeholder {shown} here (known: {hint})")
    return TemplateError(f"invalid placeholder {shown} (use {{name}}; write {{{{ for a brace)")


@lru_cache(maxsize=1024)
def compile_template(text: str, allowed: frozenset[str] = NOTE_FIELDS) -> Template:
    """Parse `text`; raise TemplateError naming the first bad placeholder.

    `{{` and `}}` stand for literal braces.
    """
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise TemplateError(f"template longer than {MAX_TEMPLATE_LENGTH} characters")
    literals: list[str] = []
    names: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "{":
            if text.startswith("{{", i):
                buf.append("{")
                i += 2
                continue
            end = text.find("}", i + 1)
            if end < 0:
                raise TemplateError(f"unclosed '{{' at character {i + 1}: {text[i:i + 20]!r}")
            inner = text[i + 1:end]
            if not _NAME.match(inner) or inner not in allowed:
                raise _placeholder_error(inner, allowed)
            literals.append("".join(buf))
            buf = []
            names.append(inner)
            i = end + 1
        elif ch == "}":
            if text.startswith("}}", i):
                buf.append("}")
                i += 2
                continue
            raise TemplateError(f"single '}}' at character {i + 1} (write }}}} for a brace)")
        else:
            buf.append(ch)
            i += 1
    literals.append("".join(buf))
    return Template(text, tuple(literals), tuple(names))


def invoice_values(
    *,
    number: str,
    customer_name: str,
    balance: Decimal,
    total: Decimal,
    currency: str,
    issue_date: date,
    due_date: date,
    today: date,
    payment_link: str | None,
    company_name: str,
    stage: str,
) -> dict[str, str]:
    """The placeholder values every template can use, as strings."""
    return {
        "invoice_number": number,
        "customer_name": customer_name,
        "balance": format_money(balance, currency),
        "total": format_money(total, currency),
        "currency": currency,
        "issue_date": issue_date.isoformat(),
        "due_date": due_date.isoformat(),
        "days_overdue": str((today - due_date).days),
        "payment_link": payment_link or "",
        "company_name": company_name,
        "stage": stage,
    }
