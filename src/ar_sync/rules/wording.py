"""The default wording of ar-sync's own e-mails, per tone. Kept with the rules (not with the
messages that render it) because the planner must know what a message states: a stage whose
e-mail carries `{late_fee_terms}` or `{interest_terms}` announces those terms, and fees wait
for that announcement (`journey.notice_days`)."""

from __future__ import annotations

TONES = ("friendly", "neutral", "firm", "final")  # mildest first
TONE_RANK = {tone: rank for rank, tone in enumerate(TONES)}

DEFAULT_SUBJECTS: dict[str, str] = {
    "friendly": "Payment reminder from {company_name}",
    "neutral": "Invoices outstanding with {company_name}",
    "firm": "Overdue: {total_due} unpaid to {company_name}",
    "final": "Final notice from {company_name}: {total_due} overdue",
}
_TERMS = "\n\n{late_fee_terms} {interest_terms}"
DEFAULT_BODIES: dict[str, str] = {
    "friendly": ("Hello {customer_name},\n\nA friendly reminder from {company_name}: "
                 "{total_due} is due on the invoices listed below." + _TERMS),
    "neutral": ("Hello {customer_name},\n\nOur records show {total_due} outstanding on the "
                "invoices listed below. Please arrange payment at your earliest convenience."
                + _TERMS),
    "firm": ("Dear {customer_name},\n\nThe invoices listed below are overdue and {total_due} "
             "remains unpaid. Please pay now, or reply to tell us when payment will be made."
             + _TERMS),
    "final": ("Dear {customer_name},\n\nThis is our final notice: {total_due} is seriously "
              "overdue. Unless we receive payment by {deadline} we will take further steps to "
              "recover the debt, which may include passing it to a collection agency."
              + _TERMS),
}
