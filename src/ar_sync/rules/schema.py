"""The rules-file schema: reminder stages, calendar, exclusions, escalations, payment-plan
reminders, risk, and the Policy that holds them."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from babel import localedata
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    Strict,
    field_validator,
    model_validator,
)

from ar_sync.domain.addresses import address_problem
from ar_sync.domain.calendar import check_holiday_region, local_date, zone
from ar_sync.domain.payment_plans import PaymentPlan
from ar_sync.domain.webhook_urls import UnsafeUrlError, parse_webhook_url
from ar_sync.rules.fee_rules import LateFee
from ar_sync.rules.fields import (
    DEFAULT_ESCALATION_NOTE,
    DEFAULT_NOTE,
    AmountsField,
    Currency,
    EmailTemplate,
    EscalationNote,
    Int,
    Name,
    NoteTemplate,
    Number,
    RulesModel,
    Tone,
    Weekday,
)

# ============================================================================= the schema

Channel = Literal["note", "platform", "email"]
MAX_LISTED = 10_000  # customers named in `exclude`
MAX_NOTIFY = 10  # targets one escalation tells (each is a notice per escalated invoice)


def _address(value: str) -> str:
    if problem := address_problem(value):
        raise ValueError(f"not a usable e-mail address ({problem}): {value!r}")
    return value


def _locale(value: str) -> str:
    if not re.fullmatch(r"[a-z]{2,3}(_[A-Z][a-z]{3})?(_[A-Z]{2}|_\d{3})?", value) or (
            not localedata.exists(value)):
        raise ValueError(f"unknown locale {value!r}: use a language_TERRITORY such as en_GB")
    return value


def _url(value: str) -> str:
    try:
        parse_webhook_url(value)
    except UnsafeUrlError as exc:
        raise ValueError(f"{exc}: {value[:200]!r}") from None
    return value


class Reminder(RulesModel):
    """A reminder stage: a note on the invoice, optionally the platform's e-mail."""

    name: Name = Field(description="Unique stage name; part of the idempotency key, so "
                                   "renaming a stage makes it new")
    days: Int = Field(ge=-365, le=3650, description="Days relative to the due date: -3 is "
                      "three days before, 0 the due date, 7 a week after")
    tone: Tone = Field("friendly", description="How firm the stage is (shown to bookkeepers)")
    email: bool = Field(False, description="Also ask the platform to send its invoice e-mail "
                        "(the same as channel: platform)")
    channel: Channel | None = Field(None, description="Who tells the customer: 'note' (only "
                                    "the note on the invoice), 'platform' (the platform's "
                                    "invoice e-mail) or 'email' (ar-sync's own e-mail with this "
                                    "stage's subject and body, one per customer a day)")
    subject: EmailTemplate | None = Field(None, description="E-mail subject (channel: email); "
                                          "default per tone")
    body: EmailTemplate | None = Field(None, description="E-mail opening text (channel: "
                                       "email); the statement of invoices follows; default "
                                       "per tone")
    note: NoteTemplate = Field(DEFAULT_NOTE, description="Note text; {placeholders} allowed")
    backfill: Literal["none", "latest"] = Field(
        "latest", description="When the connection goes live after this stage's date: "
        "'latest' (default) sends it if it is the latest stage due, once; 'none' never sends "
        "it (only stages dated from go-live on are sent)")

    @model_validator(mode="after")
    def _channel(self) -> Reminder:
        if self.email and self.channel not in (None, "platform"):
            raise ValueError(f"email: true asks for the platform's e-mail; it contradicts "
                             f"channel: {self.channel}")
        return self

    @property
    def delivery(self) -> Channel:
        """The channel in effect (`email: true` is the older spelling of `platform`)."""
        return self.channel or ("platform" if self.email else "note")


class Holidays(RulesModel):
    """Whose public holidays are not business days."""

    country: Annotated[str, Strict()] = Field(description="ISO 3166 code, e.g. US, GB, DE")
    subdivision: Annotated[str, Strict()] | None = Field(
        None, description="State/province/region code, e.g. NY, SCT")

    @model_validator(mode="after")
    def _known(self) -> Holidays:
        check_holiday_region(self.country, self.subdivision)
        return self


def _holidays_shorthand(value: Any) -> Any:
    if isinstance(value, str):  # "US" or "US-NY"
        country, _, sub = value.partition("-")
        return {"country": country, "subdivision": sub or None}
    return value


class CalendarSettings(RulesModel):
    """When reminders may go out."""

    timezone: Annotated[str, Strict()] = Field("UTC", description="The company's IANA time "
                                               "zone; decides what 'today' is")
    send_on: Literal["business_days", "any_day"] = Field(
        "business_days", description="business_days: reminders falling on a weekend or "
        "holiday move to the next business day")
    holidays: Annotated[Holidays | None, BeforeValidator(_holidays_shorthand)] = Field(
        None, description="Public holidays: {country: GB, subdivision: ENG} or 'US-NY'")
    weekend: tuple[Weekday, ...] = Field(("saturday", "sunday"), description="Non-working "
                                         "days of the week")
    extra_holidays: tuple[date, ...] = Field((), max_length=1000, description="Company "
                                             "closing days "
                                             "(YYYY-MM-DD)")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("weekend")
    @classmethod
    def _workday(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) >= 7:
            raise ValueError("a week needs at least one working day")
        return value


class Exclusions(RulesModel):
    """Invoices that get nothing at all (no notes, e-mails, fees or escalation)."""

    customer_ids: tuple[Annotated[str, Strict()], ...] = Field((), max_length=MAX_LISTED,
                                                               description="Platform "
                                                               "customer ids")
    customer_names: tuple[Annotated[str, Strict()], ...] = Field(
        (), max_length=MAX_LISTED,
        description="Customer display names (case-insensitive exact match)")
    disputed: bool = Field(True, description="Skip invoices marked disputed")
    below_balance: AmountsField | None = Field(None, description="Skip invoices whose unpaid "
                                               "balance is below this")
    currencies: tuple[Currency, ...] = Field((), max_length=200, description="Skip invoices "
                                             "in these "
                                             "currencies")


class EscalationWhen(RulesModel):
    """One set of conditions; all the conditions given must hold."""

    days_overdue: Int | None = Field(None, ge=1, le=3650, description="At least this many "
                                     "days past due")
    balance_over: AmountsField | None = Field(None, description="Unpaid balance above this")
    reminders_ignored: Int | None = Field(None, ge=1, le=100, description="At least this many "
                                          "overdue reminder stages sent and still unpaid")

    @model_validator(mode="after")
    def _something(self) -> EscalationWhen:
        if self.days_overdue is None and self.balance_over is None and (
            self.reminders_ignored is None
        ):
            raise ValueError("give at least one of days_overdue, balance_over, "
                             "reminders_ignored")
        return self


class EscalationTarget(RulesModel):
    """Exactly one of person or agency."""

    person: Annotated[str, Strict()] | None = Field(None, description="A person, e.g. "
                                                    "'Jane Doe <jane@example.com>'")
    agency: Annotated[str, Strict()] | None = Field(None, description="A collection agency")

    @model_validator(mode="after")
    def _one(self) -> EscalationTarget:
        if (self.person is None) == (self.agency is None):
            raise ValueError("give exactly one of person or agency")
        return self

    def __str__(self) -> str:
        return f"person {self.person}" if self.person else f"agency {self.agency}"


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


class EscalationNotify(RulesModel):
    """Who hears about an escalation: people by e-mail, receivers by signed webhook."""

    email: tuple[Annotated[str, Strict(), AfterValidator(_address)], ...] = Field(
        (), max_length=MAX_NOTIFY,
        description="Addresses told by e-mail (e.g. the credit controller)")
    webhook: tuple[Annotated[str, Strict(), AfterValidator(_url)], ...] = Field(
        (), max_length=MAX_NOTIFY, description="https URLs that receive a signed JSON POST (an "
        "agency's API, a chat incoming hook); signed with the company's webhook secret. "
        "Public receivers only: no user@ part, no private, loopback or link-local address "
        "(checked again when sent)")


class Escalation(RulesModel):
    """Hand a debt to a person or an agency, once per invoice."""

    name: Name = Field(description="Unique escalation name; part of the idempotency key")
    when: Annotated[tuple[EscalationWhen, ...], BeforeValidator(_one_or_many)] = Field(
        min_length=1, max_length=10, description="Alternatives (any may match); in each, all "
        "conditions must "
        "hold. A single mapping is one alternative")
    to: EscalationTarget = Field(description="{person: ...} or {agency: ...}")
    note: EscalationNote = Field(DEFAULT_ESCALATION_NOTE, description="Note written on the "
                                 "invoice; {to} allowed")
    notify: EscalationNotify | None = Field(None, description="Also tell someone: e-mail "
                                            "addresses and/or webhook URLs")


class EmailRules(RulesModel):
    """ar-sync's own e-mails to customers (stages with channel: email)."""

    group_by: Literal["customer", "invoice"] = Field("customer", description="'customer': "
                                                     "one message a day listing every invoice "
                                                     "due a reminder; 'invoice': one each")
    attach_pdf: bool = Field(False, description="Attach each invoice's PDF from the platform")
    payment_instructions: EmailTemplate | None = Field(
        None, description="How to pay, shown under the statement of every message (bank "
        "details, a reference to quote); a safe template with the e-mail placeholders")


class OnPaid(RulesModel):
    """A thank-you e-mail, once, when an invoice that was reminded about is paid."""

    subject: EmailTemplate = Field("Thank you for your payment to {company_name}",
                                   description="Subject; the e-mail placeholders")
    body: EmailTemplate = Field(
        "Hello {customer_name},\n\nThank you: your payment has reached us, and nothing more "
        "is due on the invoices below.", description="The opening; the paid invoices are "
        "listed after it. The e-mail placeholders ({total_due}: what they came to)")
    within_days: Int = Field(14, ge=1, le=365, description="Thank only for payments seen "
                             "this many days ago at most (a late first run stays quiet)")


class Journey(RulesModel):
    """How one customer's follow-up unfolds: where it starts, how far apart its messages are,
    when fees may be charged and when a final notice's deadline has passed."""

    first_contact: Literal["gentle", "by_age"] = Field(
        "gentle", description="The first stage an invoice gets from ar-sync: 'gentle' (default) "
        "the gentlest stage after the due date (the pre-due one when not yet due), whatever the "
        "invoice's age at go-live, so nobody's first message is a threat; 'by_age' the latest "
        "stage its age has reached. Either way stages then advance one step at a time")
    min_gap: Int = Field(
        3, ge=1, le=90, description="Days between two messages to one customer, across every "
        "channel (ar-sync's e-mail, the platform's e-mail, escalations): 3 (default) leaves time "
        "to read, pay and for a payment to clear before the next message; at least 1, so nobody "
        "gets two messages a day")
    notice_days: Int = Field(
        7, ge=1, le=90, description="A late fee or interest period is chargeable only from this "
        "many days after a message stating its terms ({late_fee_terms} or {interest_terms}) was "
        "sent to the customer: 7 (default) is a week's notice, time to pay before anything is "
        "added")
    deadline_days: Int = Field(
        7, ge=1, le=90, description="The deadline the final notice names ({deadline}): an "
        "escalation waits until the final notice was sent and this many days have passed")
    fee_notice: Literal["announced", "agreed"] = Field(
        "announced", description="'announced' (default): fees and interest only after the "
        "terms were announced (notice_days); 'agreed': the customer agreed them elsewhere (the "
        "contract, the invoice terms), so periods from go-live on are chargeable as `backfill` "
        "says")


class InstalmentReminders(RulesModel):
    """How payment-plan instalments are reminded and when a plan counts as broken."""

    days_before: Int = Field(3, ge=0, le=365, description="Note (and e-mail) this many days "
                             "before each instalment is due; 0: only on the day")
    on_due_date: bool = Field(True, description="Also remind on the instalment's due date")
    email: bool = Field(False, description="Also ask the platform to send its invoice e-mail")
    grace_days: Int = Field(3, ge=0, le=365, description="An instalment not met this many "
                            "days after its due date breaks the plan; normal rules resume")


class RiskAdjustment(RulesModel):
    """Rule changes for customers at one risk level (from `ar-sync report`'s risk score)."""

    reminder_offset_days: Int = Field(0, ge=-365, le=365, description="Shift every reminder "
                                      "stage by this many days (-3: three days earlier)")
    escalate_after_days: Int | None = Field(None, ge=1, le=3650, description="Escalation "
                                            "rules with a days_overdue condition fire after at "
                                            "most this many days")


class RiskRules(RulesModel):
    """Per risk level (low, medium, high) adjustments; a level not given uses the rules as
    written."""

    low: RiskAdjustment | None = Field(None, description="Adjustments for low-risk customers")
    medium: RiskAdjustment | None = Field(None, description="Adjustments for medium-risk "
                                          "customers")
    high: RiskAdjustment | None = Field(None, description="Adjustments for high-risk "
                                        "customers")

    def levels(self) -> dict[str, RiskAdjustment]:
        """The levels that change something."""
        found = {"low": self.low, "medium": self.medium, "high": self.high}
        return {k: v for k, v in found.items() if v is not None and (
            v.reminder_offset_days != 0 or v.escalate_after_days is not None)}


class RateChange(RulesModel):
    """One central-bank rate decision: the day it took effect and the new rate."""

    effective: date = Field(description="The day the new rate took effect (YYYY-MM-DD)")
    rate: Number = Field(ge=-10, le=100, description="The new rate, %")


class RateUpdate(RulesModel):
    """Rows added to a bundled reference-rate table (until a release carries them)."""

    changes: tuple[RateChange, ...] = Field((), max_length=500, description="Rate decisions "
                                            "missing from "
                                            "the bundled table")
    checked: date | None = Field(None, description="The table (with these rows) is complete "
                                 "up to this day; silences the out-of-date warning until the "
                                 "next half-year")


RateName = Literal["bank_of_england", "ecb_main_refinancing"]  # the keys of RATE_TABLES


def _unique_names(items: tuple[Any, ...], what: str) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.name in seen:
            raise ValueError(f"{what} name {item.name!r} is used twice "
                             f"([{seen[item.name]}] and [{i}])")
        seen[item.name] = i


class Policy(RulesModel):
    """A complete rule set."""

    version: Literal[1] = Field(1, description="Rules file format version")
    extends: Annotated[str, Strict()] | None = Field(
        None, description="Start from a shipped rule set (default, gentle, firm, "
        "uk-late-payment) or a relative path, and override parts of it")
    description: Annotated[str, Strict()] = Field("", description="Free text for people")
    company_name: Annotated[str, Strict()] = Field("", description="Your company name, "
                                                   "for {company_name}")
    locale: Annotated[str, Strict(), AfterValidator(_locale)] | None = Field(
        None, description="How customers see amounts and dates, e.g. en_GB ('£1,234.50', "
        "'14 November 2025'); default: English for calendar.holidays' country, else for the "
        "invoice's currency")
    calendar: CalendarSettings = Field(default_factory=CalendarSettings,
                                       description="Time zone, business days, holidays")
    exclude: Exclusions = Field(default_factory=Exclusions,
                                description="Invoices that get nothing at all")
    reminders: tuple[Reminder, ...] = Field((), max_length=50, description="Reminder stages")
    late_fees: tuple[LateFee, ...] = Field((), max_length=20, description="Late fees and "
                                           "statutory interest")
    escalations: tuple[Escalation, ...] = Field((), max_length=20,
                                                description="Escalation rules")
    instalment_reminders: InstalmentReminders = Field(
        default_factory=InstalmentReminders, description="Payment-plan instalment reminders")
    payment_plans: tuple[PaymentPlan, ...] = Field(
        (), max_length=MAX_LISTED, description="Agreed payment plans, keyed by invoice number "
        "(plans recorded with `ar-sync payment-plan create` take precedence)")
    risk: RiskRules = Field(default_factory=RiskRules,
                            description="Rule changes per customer risk level")
    reference_rates: dict[RateName, RateUpdate] = Field(
        default_factory=dict, description="Rows added to the bundled dated rate tables "
        "(bank_of_england, ecb_main_refinancing) before a release carries them")
    email: EmailRules = Field(default_factory=EmailRules,
                              description="ar-sync's own e-mails to customers")
    on_paid: OnPaid | None = Field(None, description="Thank the customer once when an invoice "
                                   "that got a reminder e-mail is paid: {} for the default "
                                   "wording")
    journey: Journey = Field(default_factory=Journey,
                             description="A customer's follow-up over time: first contact, "
                             "spacing, fee notice, the final notice's deadline")

    @field_validator("reminders")
    @classmethod
    def _stages(cls, value: tuple[Reminder, ...]) -> tuple[Reminder, ...]:
        _unique_names(value, "reminder")
        days: dict[int, str] = {}
        for r in value:
            if r.days in days:
                raise ValueError(f"stages {days[r.days]!r} and {r.name!r} are both at day "
                                 f"{r.days}")
            days[r.days] = r.name
        return value

    @field_validator("late_fees")
    @classmethod
    def _fees(cls, value: tuple[Any, ...]) -> tuple[Any, ...]:
        _unique_names(value, "late fee")
        return value

    @field_validator("escalations")
    @classmethod
    def _escalations(cls, value: tuple[Escalation, ...]) -> tuple[Escalation, ...]:
        _unique_names(value, "escalation")
        return value

    def today(self, now: datetime) -> date:
        """The date it is at `now` in the company's time zone."""
        return local_date(now, zone(self.calendar.timezone))
