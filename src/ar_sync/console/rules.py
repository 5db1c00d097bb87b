"""The Rules screen: pick a shipped preset or edit the YAML, see each error at its line and
field, preview the change per customer (the `rules diff` simulation), apply it as a new
stored version, see the versions and roll back."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ar_sync.console.pages import company, config, flash, render, today_for
from ar_sync.delivery import webhook_http
from ar_sync.rules.policy import Policy, PolicyError, PolicyIssue, shipped_rule_sets
from ar_sync.sync.company_rules import choose_rules, parse_text, version_name
from ar_sync.sync.company_settings import SettingsChangeError, apply_rules, rollback_rules
from ar_sync.sync.company_store import planner_pauses
from ar_sync.sync.connector import Connection
from ar_sync.sync.mail import webhook_urls
from ar_sync.sync.rules_diff import DiffRow, RulesDiff, rules_diff

MAX_RULES_BYTES = 256_000
DIFF_DAYS = 30


@dataclass(frozen=True)
class Line:
    number: int
    text: str
    issues: list[PolicyIssue]


def _current_text(request: Request, connection: Connection) -> str:
    stored = config(request).store.current_rules(connection.id)
    if stored is not None:
        return stored.text
    shipped = shipped_rule_sets()
    path = shipped.get(connection.rules)
    return path.read_text(encoding="utf-8") if path is not None else ""


def _lines(text: str, issues: list[PolicyIssue]) -> list[Line]:
    """The text, numbered, each line with the issues found at it (for showing errors there)."""
    at: dict[int, list[PolicyIssue]] = defaultdict(list)
    for issue in issues:
        at[issue.line or 0].append(issue)
    return [Line(n, line, at.get(n, [])) for n, line in enumerate(text.splitlines(), 1)]


def _page(request: Request, connection: Connection, text: str, *, status: int = 200,
          issues: list[PolicyIssue] | None = None, diff: RulesDiff | None = None,
          per_customer: dict[str, list[DiffRow]] | None = None, note: str = "") -> Response:
    store = config(request).store
    issues = issues or []
    return render(request, "rules.html", status=status, company=connection, text=text,
                  issues=issues, lines=_lines(text, issues) if issues else [],
                  presets=sorted(shipped_rule_sets()), diff=diff, per_customer=per_customer,
                  versions=list(reversed(store.rules_versions(connection.id))), note=note,
                  current=choose_rules(store, connection).label)


async def rules_page(request: Request) -> Response:
    connection = company(request)
    preset = request.query_params.get("preset")
    shipped = shipped_rule_sets()
    if preset and preset in shipped:
        return _page(request, connection, shipped[preset].read_text(encoding="utf-8"),
                     note=f"Loaded the {preset} preset. Preview the change, then apply it.")
    return _page(request, connection, _current_text(request, connection))


async def _text(request: Request) -> tuple[str, str]:
    form = await request.form()
    text = str(form.get("text") or "").replace("\r\n", "\n")
    return text, str(form.get("note") or "")[:200]


def _checked(request: Request, connection: Connection, text: str) -> list[PolicyIssue]:
    if not text.strip():
        return [PolicyIssue("rules", None, "", "the rules are empty")]
    if len(text.encode()) > MAX_RULES_BYTES:
        return [PolicyIssue("rules", None, "", f"longer than {MAX_RULES_BYTES} bytes")]
    current = config(request).store.current_rules(connection.id)
    try:
        policy = parse_text(text, version_name(connection.id,
                                               (current.version if current else 0) + 1))
    except PolicyError as exc:
        return list(exc.issues)
    return [PolicyIssue("rules", None, "", issue) for issue in vetted(policy)]


def vetted(policy: Policy) -> list[str]:
    """What the core cannot check: every escalation webhook's host resolved now, and refused
    if it is not a public receiver (checked again at every send)."""
    return webhook_http.unsafe_targets(webhook_urls(policy))


async def preview_change(request: Request) -> Response:
    """What the new text would do differently over the next DIFF_DAYS days, per customer."""
    cfg = config(request)
    connection = company(request)
    text, _ = await _text(request)
    issues = _checked(request, connection, text)
    if issues:  # a preview that found problems is still an answer (htmx swaps only 2xx)
        return _page(request, connection, text, issues=issues)
    new = parse_text(text, "new rules")
    store = cfg.store
    invoices = store.open_invoices(connection.id)
    history = store.history(connection.id, [i.id for i in invoices]) if invoices else {}
    diff = rules_diff(invoices, history, choose_rules(store, connection).policy, new,
                      start=today_for(request, connection), days=DIFF_DAYS,
                      go_live=connection.live_from(),
                      pauses=planner_pauses(store.list_pauses(connection.id)),
                      plans=store.payment_plans(connection.id))
    names = {i.number: i.customer_name for i in invoices}
    per_customer: dict[str, list[DiffRow]] = defaultdict(list)
    for row in diff.rows:
        per_customer[names.get(row.invoice, "(unknown customer)")].append(row)
    return _page(request, connection, text, diff=diff,
                 per_customer=dict(sorted(per_customer.items())),
                 note="" if invoices else "No open invoices are stored yet: open the "
                      "preview first so the invoices are fetched.")


async def apply(request: Request) -> Response:
    cfg = config(request)
    connection = company(request)
    text, note = await _text(request)
    issues = _checked(request, connection, text)
    if issues:
        return _page(request, connection, text, status=400, issues=issues)
    applied = apply_rules(cfg.store, connection.id, text, source="console", now=cfg.clock(),
                          note=note, vet=vetted)
    flash(request, f"Rules version {applied.version} is already the current one." if
          applied.unchanged else f"Rules version {applied.version} applied: the next run "
          "uses it.")
    return RedirectResponse(f"{cfg.prefix}/c/{connection.id}/rules", 303)


async def rollback(request: Request) -> Response:
    cfg = config(request)
    connection = company(request)
    form = await request.form()
    try:
        new, target = rollback_rules(cfg.store, connection.id, int(str(form.get("version"))),
                                     now=cfg.clock())
        flash(request, f"Back to version {target.version} (stored again as version {new}).")
    except (SettingsChangeError, ValueError) as exc:
        flash(request, f"Could not roll back: {exc}", "error")
    return RedirectResponse(f"{cfg.prefix}/c/{connection.id}/rules", 303)


def routes() -> list[Any]:
    return [Route("/c/{tenant}/rules", rules_page),
            Route("/c/{tenant}/rules/preview", preview_change, methods=["POST"]),
            Route("/c/{tenant}/rules/apply", apply, methods=["POST"]),
            Route("/c/{tenant}/rules/rollback", rollback, methods=["POST"])]


__all__ = ["routes"]
