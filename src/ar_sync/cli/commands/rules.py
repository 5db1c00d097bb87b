"""`ar-sync rules …` (validate, schema, list, docs, explain) and `ar-sync plan` (dry plan)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, TypeAdapter, ValidationError
from rich.markup import escape
from rich.table import Table

from ar_sync.cli.app import app, console, err_console
from ar_sync.cli.common import DbOption, open_connection, parse_date
from ar_sync.cli.errors import UserError
from ar_sync.cli.fee_accounts import account_problems, report_problems
from ar_sync.cli.render.fit import Column, Fitted
from ar_sync.domain.models import Action, ApplyLateFee, Invoice, SkipStage
from ar_sync.domain.money import format_money
from ar_sync.messages.grouping import plan_messages
from ar_sync.planner.invoice_checks import plannable
from ar_sync.planner.plan import explain, plan_run, risk_for
from ar_sync.rules.policy import (
    CalendarSettings,
    Escalation,
    EscalationTarget,
    EscalationWhen,
    Exclusions,
    FixedFee,
    Holidays,
    InstalmentReminders,
    Interest,
    PaymentPlan,
    PercentFee,
    Policy,
    PolicyError,
    Reminder,
    RiskAdjustment,
    RiskRules,
    UkStatutoryInterest,
    load_policy,
    policy_json_schema,
    shipped_rule_sets,
)
from ar_sync.rules.rates import stale_rate_warnings
from ar_sync.rules.templates import PLACEHOLDERS
from ar_sync.rules.terms import unannounced
from ar_sync.sync.mail import mail_rules
from ar_sync.sync.run_report import describe

rules_app = typer.Typer(help="Check, document and explain follow-up rule files.",
                        no_args_is_help=True)
app.add_typer(rules_app, name="rules")

_ACTIONS: TypeAdapter[list[Action]] = TypeAdapter(list[Action])


def _load(source: str) -> Policy:
    try:
        return load_policy(source)
    except PolicyError as exc:
        raise UserError(str(exc), hint="check the file with `ar-sync rules validate`") from None


def _today(value: str | None, policy: Policy) -> date:
    if value is None:
        return policy.today(datetime.now(UTC))
    return parse_date(value, "--today")


def read_invoices(path: Path) -> tuple[list[Invoice], list[str]]:
    """Invoices from a JSON list of Invoice objects; malformed entries become warnings."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(raw, list):
        raise UserError(f"{path}: expected a JSON list of invoices")
    invoices: list[Invoice] = []
    warnings: list[str] = []
    for index, item in enumerate(raw):
        try:
            invoices.append(Invoice.model_validate(item))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "entry"
            name = item.get("number") or item.get("id") if isinstance(item, dict) else None
            warnings.append(f"skipped invoice [{index}]{f' {name}' if name else ''}: "
                            f"{where}: {first['msg']}")
    return invoices, warnings


# ----------------------------------------------------------------------------- rules


@rules_app.command("validate")
def validate_cmd(
    files: Annotated[list[str], typer.Argument(help="Rules files or shipped rule set names")],
    today: Annotated[str | None, typer.Option(help="Check the reference-rate tables as of "
                                                   "YYYY-MM-DD (default: today)")] = None,
    company: Annotated[str | None, typer.Option(
        "--company", "--tenant", help="Also check the fee accounts against this connected "
        "company's chart of accounts")] = None,
    db: DbOption = None,
) -> None:
    """Check rules files; print file:line errors and exit 1 if any is invalid. Warns when a
    reference-rate table a fee rule uses may miss a decision for the current half-year. With
    --company, also that the company has the income accounts the fee rules book to."""
    store, connection = open_connection(db, company) if company else (None, None)
    bad = 0
    for source in files:
        try:
            policy = load_policy(source)
        except PolicyError as exc:
            bad += 1
            for issue in exc.issues:
                err_console.print(f"[red]{escape(str(issue))}[/]", highlight=False,
                                  soft_wrap=True)
            continue
        if store is not None and connection is not None:
            problems = account_problems(store, connection, policy)
            if problems:
                bad += 1
                report_problems(connection, problems)
                continue
        console.print(f"[green]ok[/] {source}: {len(policy.reminders)} reminder stages, "
                      f"{len(policy.late_fees)} fee rules, {len(policy.escalations)} "
                      "escalations", highlight=False)
        for warning in [*stale_rate_warnings(policy, _today(today, policy)),
                        *unannounced(policy)]:
            err_console.print(f"[yellow]warning:[/] {source}: {escape(warning)}",
                              highlight=False, soft_wrap=True)
    if bad:
        raise typer.Exit(1)


@rules_app.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of rules files (for editors)."""
    typer.echo(json.dumps(policy_json_schema(), indent=2, sort_keys=False))


@rules_app.command("list")
def list_cmd() -> None:
    """List the shipped rule sets (use their names with --rules or `extends:`)."""
    table = Table("name", "description", "file")
    for name, path in shipped_rule_sets().items():
        try:
            description = load_policy(name).description
        except PolicyError as exc:
            description = f"[red]invalid: {exc.issues[0]}[/]"
        table.add_row(name, description, str(path))
    console.print(table)


def _type_of(prop: dict[str, Any], defs: dict[str, Any] | None = None) -> str:
    defs = defs or {}
    if "$ref" in prop:
        name = str(prop["$ref"]).rsplit("/", 1)[-1]
        target = defs.get(name, {})
        return _type_of(target, defs) if "enum" in target else name
    if "enum" in prop:
        return " \\| ".join(json.dumps(v) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    if "anyOf" in prop or "oneOf" in prop:
        parts = [_type_of(p, defs) for p in prop.get("anyOf", prop.get("oneOf", []))]
        if "number" in parts and "string" in parts:  # a Decimal: written as a number
            parts.remove("string")
        return " \\| ".join(p for p in parts if p != "null") + (
            " \\| null" if "null" in parts else "")
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type_of(prop.get('items', {}), defs)}"
    if kind == "object" and "additionalProperties" in prop:
        return "{CURRENCY: number}"
    if prop.get("format") == "date":
        return "date"
    return str(kind or "any")


_DOC_MODELS: Sequence[type[BaseModel]] = (
    Policy, CalendarSettings, Holidays, Exclusions, Reminder, FixedFee, PercentFee, Interest,
    UkStatutoryInterest, Escalation, EscalationWhen, EscalationTarget, InstalmentReminders,
    PaymentPlan, RiskRules, RiskAdjustment,
)


def rules_markdown() -> str:
    """The rules file reference, generated from the schema."""
    schema = policy_json_schema()
    defs = schema.get("$defs", {})
    lines = ["## Rules file reference", "",
             "Generated by `ar-sync rules docs` from the schema. Amounts are one number "
             "(in the invoice's own currency) or `{CURRENCY: number}` per currency; a currency "
             "not listed has no such amount.", ""]
    for model in _DOC_MODELS:
        spec = schema if model is Policy else defs.get(model.__name__, {})
        title = "top level" if model is Policy else model.__name__
        doc = " ".join((model.__doc__ or "").strip().split("\n\n")[0].split())
        lines += [f"### {title}", "", doc, "", "| key | type | default | meaning |",
                  "|---|---|---|---|"]
        required = set(spec.get("required", []))
        for key, prop in spec.get("properties", {}).items():
            if key in required:
                default = "required"
            elif "default" in prop:
                default = json.dumps(prop["default"])
            else:
                default = "see below"
            desc = str(prop.get("description", "")).replace("|", "\\|")
            if key == "kind" and not desc:
                desc = "Which kind of fee this is"
            lines.append(f"| `{key}` | {_type_of(prop, defs)} | {default} | {desc} |")
        lines.append("")
    lines += ["### Placeholders in notes and labels", "", "| placeholder | becomes |",
              "|---|---|"]
    lines += [f"| `{{{name}}}` | {text} |" for name, text in PLACEHOLDERS.items()]
    return "\n".join(lines) + "\n"


@rules_app.command("docs")
def docs_cmd() -> None:
    """Print the rules file reference as Markdown."""
    typer.echo(rules_markdown(), nl=False)


@rules_app.command("explain")
def explain_cmd(
    invoice_id: Annotated[str, typer.Argument(help="Invoice id or number")],
    invoices_file: Annotated[Path, typer.Option("--invoices", help="JSON list of invoices")],
    rules: Annotated[str, typer.Option("--rules", help="Rules file or shipped name")] = "default",
    today: Annotated[str | None, typer.Option(help="Plan as of YYYY-MM-DD")] = None,
    live_from: Annotated[str | None, typer.Option("--live-from", help="Go-live date "
                                                  "YYYY-MM-DD: what began before is caught "
                                                  "up per the rules' backfill")] = None,
) -> None:
    """Explain, stage by stage, what the rules do with one invoice."""
    policy = _load(rules)
    invoices, _ = read_invoices(invoices_file)
    match = [i for i in invoices if invoice_id in (i.id, i.number)]
    if not match:
        raise UserError(f"no invoice {invoice_id!r} in {invoices_file}")
    day = _today(today, policy)
    go_live = parse_date(live_from, "--live-from") if live_from else None
    risk = risk_for(invoices, {}, policy, day)  # as a run computes it: the preview is the run
    for line in explain(match[0], {}, policy, day, go_live=go_live, risk=risk):
        console.print(line, highlight=False, soft_wrap=True)


# ----------------------------------------------------------------------------- plan


_SHORT = {"late_fee": "fee", "note": "note", "reminder_email": "e-mail",
          "escalate": "escalate", "skip": "skip", "waive_fee": "waive", "message": "e-mail",
          "notify": "notify"}


def plan_table(actions: Sequence[Action], invoices: Sequence[Invoice], today: date,
               total: int | None = None) -> Fitted:
    """One row per action: which invoice, what, and why (one block per action when the
    terminal is too narrow for the table)."""
    by_id = {i.id: i for i in invoices}
    shown = f"{len(actions)} of {total}" if total is not None and total != len(actions) else (
        str(len(actions)))
    table = Fitted(f"Plan for {today}: {shown} actions", [
        Column("invoice"), Column("customer"), Column("overdue", justify="right"),
        Column("action"), Column("rule"), Column("what", long=True),
        Column("why", long=True)], heading=5)
    for a in actions:
        inv = by_id.get(a.invoice_id)
        rule = a.rule if a.occurrence == "once" else f"{a.rule} {a.occurrence}"
        table.add_row(escape(a.invoice_number), escape(_short_name(inv.customer_name)) if inv
                      else "", f"{(today - inv.due_date).days}d" if inv else "",
                      _SHORT.get(str(a.kind), str(a.kind)), escape(rule),
                      escape(describe(a, brief=True)), escape(a.reason))
    return table


def _short_name(name: str, limit: int = 22) -> str:
    return name if len(name) <= limit else name[:limit - 1] + "…"


@app.command("plan")
def plan_cmd(
    invoices_file: Annotated[Path, typer.Option("--invoices", help="JSON list of invoices")],
    rules: Annotated[str, typer.Option("--rules", help="Rules file or shipped name")] = "default",
    today: Annotated[str | None, typer.Option(help="Plan as of YYYY-MM-DD (default: today "
                                                   "in the company's zone)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    skips: Annotated[bool, typer.Option("--skips/--no-skips", help="Show superseded stages "
                                        "in the table")] = False,
    live_from: Annotated[str | None, typer.Option("--live-from", help="Preview the first "
                                                  "live run of a company going live on "
                                                  "YYYY-MM-DD (the rules' backfill decides "
                                                  "what is caught up)")] = None,
) -> None:
    """Show what the rules would do today with these invoices, and why (writes nothing)."""
    if fmt not in ("table", "json"):
        raise UserError(f"--format {fmt!r} is not supported", hint="use table or json")
    policy = _load(rules)
    day = _today(today, policy)
    invoices, warnings = read_invoices(invoices_file)
    invoices, unplannable = plannable(invoices)
    for warning in warnings + unplannable + stale_rate_warnings(policy, day):
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    go_live = parse_date(live_from, "--live-from") if live_from else None
    actions = plan_run(invoices, {}, policy, day, go_live=go_live)
    # ar-sync's own e-mails as they would go out: one message per customer (no contacts here)
    grouped = plan_messages(actions, {i.id: i for i in invoices}, mail_rules(policy), {}, day)
    actions = grouped.actions
    for gone in grouped.unreachable:
        err_console.print(f"[yellow]not e-mailed:[/] {gone.customer_name} "
                          f"({', '.join(gone.invoices)}): {gone.why}", highlight=False)
    if fmt == "json":
        typer.echo(_ACTIONS.dump_json(actions, indent=2).decode())
        return
    shown = actions if skips else [a for a in actions if not isinstance(a, SkipStage)]
    console.print(plan_table(shown, invoices, day, len(actions)))
    kinds = Counter(str(a.kind) for a in actions)
    fees: dict[str, Decimal] = {}
    for a in actions:
        if isinstance(a, ApplyLateFee):
            cur = a.amount.currency
            fees[cur] = fees.get(cur, Decimal(0)) + a.amount.amount
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "nothing to do"
    if kinds.get("skip") and not skips:
        summary += " (skips not shown: --skips)"
    console.print(f"{len(invoices)} invoices: {summary}", highlight=False)
    if fees:
        console.print("fees: " + ", ".join(format_money(v, k) for k, v in sorted(fees.items())),
                      highlight=False)
