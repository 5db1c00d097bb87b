"""Pause markers: a line a bookkeeper writes where the customer never sees it (QuickBooks: the
invoice's private note; Xero: a note in the invoice's History and Notes), e.g.

    ar-sync: pause until 2026-12-31 dispute customer says the goods arrived damaged
    ar-sync: pause promise until 2027-01-15
    ar-sync: resume

Words after `pause`, in any order: `until YYYY-MM-DD` (the last paused day; none: until a
`resume` line or the line is removed), a reason `dispute | promise | other` (default other),
anything else is the note. The last `pause` or `resume` line wins. A date that cannot be read
pauses until resumed (the safe side: no follow-up rather than unwanted follow-up).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from ar_sync.domain.pauses import REASONS, Pause

_LINE = re.compile(r"^\s*ar-sync:\s*(pause|resume)\b(.*)$", re.IGNORECASE)
_UNTIL = re.compile(r"\buntil\s+(\S+)", re.IGNORECASE)


def parse_line(line: str, *, invoice_id: str, since: date) -> Pause | bool | None:
    """A Pause for a pause line, False for a resume line, None for any other line."""
    m = _LINE.match(line)
    if m is None:
        return None
    if m.group(1).lower() == "resume":
        return False
    rest = m.group(2)
    until: date | None = None
    note: list[str] = []
    found = _UNTIL.search(rest)
    if found:
        try:
            until = date.fromisoformat(found.group(1))
        except ValueError:
            note.append(f"(unreadable date {found.group(1)!r}: paused until resumed)")
        rest = rest[:found.start()] + rest[found.end():]
    reason = "other"
    words: list[str] = []
    for word in rest.split():
        if word.lower() in REASONS and reason == "other" and not words:
            reason = word.lower()
        else:
            words.append(word)
    note.insert(0, " ".join(words))
    if until is not None and until < since:
        since = until  # a marker set after its own end date: it pauses nothing now
    return Pause(invoice_id=invoice_id, until=until, reason=reason,
                 since=since, note=" ".join(n for n in note if n)[:500], source="platform")


def from_lines(lines: Iterable[tuple[date, str]], *, invoice_id: str) -> Pause | None:
    """The pause the lines leave in force ((day written, text) oldest first), if any."""
    current: Pause | None = None
    for day, text in lines:
        for line in text.splitlines():
            got = parse_line(line, invoice_id=invoice_id, since=day)
            if got is False:
                current = None
            elif isinstance(got, Pause):
                current = got
    return current


__all__ = ["from_lines", "parse_line"]
