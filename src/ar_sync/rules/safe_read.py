"""Reading a rules file's bytes safely, before any YAML parsing.

A rules file comes from an admin, maybe from an upload: it is bounded in size before it is
read into memory or parsed (a 50 MB file must not cost a gigabyte), must be UTF-8, must not
hold NUL or other control bytes, and must not nest deeper than any real rule set does (a
5,000-level document would exhaust the parser's recursion). Every refusal is a PolicyError
naming the file and, where there is one, the line and the key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ar_sync.rules.fields import PolicyError, fail

DEFAULT_MAX_BYTES = 1_000_000
MAX_DEPTH = 32  # real rule sets nest 4-5 levels; flow or block nesting past this is refused
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_KEY = re.compile(r"^\s*(?:-\s+)*([\w.-]+)\s*:")


def max_rules_bytes() -> int:
    """The size limit: AR_SYNC_MAX_RULES_BYTES, else 1 MB."""
    raw = os.environ.get("AR_SYNC_MAX_RULES_BYTES", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_MAX_BYTES


def _too_big(file: str, size: int, limit: int) -> PolicyError:
    return fail(file, None, f"file is {size:,} bytes, over the {limit:,}-byte limit for a "
                             "rules file (AR_SYNC_MAX_RULES_BYTES raises it)")


def read_rules_file(path: Path, file: str) -> str:
    """The text of a rules file, refused before reading when it is too large."""
    limit = max_rules_bytes()
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise _too_big(file, size, limit)
            data = handle.read(limit + 1)  # a file growing while read is still bounded
    except OSError as exc:
        raise fail(file, None, f"cannot read file: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise _too_big(file, len(data), limit)
    return decode_rules(data, file)


def decode_rules(data: bytes, file: str) -> str:
    """UTF-8 (a BOM is allowed), or an error naming the line of the first bad byte."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise fail(file, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the "
                                "file as UTF-8") from None
    check_text(text, file)
    return text


def _field(line_text: str) -> str:
    match = _KEY.match(line_text)
    return match.group(1) if match else ""


def check_text(text: str, file: str) -> None:
    """Size, control characters and nesting depth of rules text, with line and key."""
    limit = max_rules_bytes()
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise _too_big(file, size, limit)
    match = _CONTROL.search(text)
    if match:
        line = text.count("\n", 0, match.start()) + 1
        line_text = text.splitlines()[line - 1] if text.splitlines() else ""
        raise fail(file, line, f"control character {match.group()!r} is not allowed in a "
                                "rules file", _field(line_text))
    _check_depth(text, file)


def _check_depth(text: str, file: str) -> None:
    """Approximate YAML nesting (flow brackets + block indentation/sequence dashes), so a
    hostile document is refused with its line instead of crashing the parser."""
    flow = 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        dashes = len(re.match(r"(?:-\s+)*", stripped).group()) // 2  # type: ignore[union-attr]
        quote: str | None = None
        for char in stripped:
            if quote:
                quote = None if char == quote else quote
            elif char in "\"'":
                quote = char
            elif char == "#":
                break
            elif char in "[{":
                flow += 1
                if flow > MAX_DEPTH:
                    break
            elif char in "]}":
                flow = max(0, flow - 1)
        depth = flow + indent // 2 + dashes
        if depth > MAX_DEPTH:
            raise fail(file, number, f"nested more than {MAX_DEPTH} levels deep; a rules file "
                                      "needs only a few", _field(line))
