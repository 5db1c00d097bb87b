"""Every internal link in README.md (`(#anchor)`) resolves to a heading, GitHub-style."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"^(```|~~~)")


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    in_code = False
    for line in markdown.splitlines():
        if FENCE.match(line.strip()):
            in_code = not in_code
            continue
        match = None if in_code else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = github_slug(match.group(1))
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def internal_links(markdown: str) -> list[str]:
    text = re.sub(r"^(```|~~~).*?^(```|~~~)", "", markdown, flags=re.M | re.S)
    return re.findall(r"\]\(#([^)\s]+)\)", text)


def test_slugs_follow_github() -> None:
    assert github_slug("Exactly once: the ledger protocol") == "exactly-once-the-ledger-protocol"
    assert github_slug("Follow-up rules (YAML)") == "follow-up-rules-yaml"
    assert github_slug("`ar-sync run` exit codes") == "ar-sync-run-exit-codes"
    assert anchors("# A\n## A\n```\n# B\n```\n") == {"a", "a-1"}


def test_every_internal_readme_link_resolves() -> None:
    markdown = README.read_text(encoding="utf-8")
    links = internal_links(markdown)
    assert links, "the README has a contents list"
    missing = sorted(set(links) - anchors(markdown))
    assert not missing, f"README links to headings that do not exist: {missing}"

