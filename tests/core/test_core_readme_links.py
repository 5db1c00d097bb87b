"""Every link in README.md that stays in the repository resolves: an internal link
(`(#anchor)`) to a heading, GitHub-style, and a relative link (`docs/x.md`, `docs/x.md#y`)
to a file that exists (and, for a Markdown file, to one of its headings)."""

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


def _without_code(markdown: str) -> str:
    return re.sub(r"^(```|~~~).*?^(```|~~~)", "", markdown, flags=re.M | re.S)


def internal_links(markdown: str) -> list[str]:
    return re.findall(r"\]\(#([^)\s]+)\)", _without_code(markdown))


def relative_links(markdown: str) -> list[str]:
    """Links to files of the repository: neither `#anchor` nor a URL with a scheme."""
    targets = re.findall(r"\]\(([^)\s]+)\)", _without_code(markdown))
    return [t for t in targets if not t.startswith("#") and not re.match(r"[a-z][a-z0-9+.-]*:", t)]


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


def test_relative_links_are_told_apart() -> None:
    text = ("[a](docs/a.md) [b](#b) [c](https://x.example/c.md) [d](docs/d.md#e)\n"
            "```\n[f](g.md)\n```\n")
    assert relative_links(text) == ["docs/a.md", "docs/d.md#e"]


def test_every_relative_readme_link_names_a_file_that_exists() -> None:
    markdown = README.read_text(encoding="utf-8")
    links = relative_links(markdown)
    assert links, "the README links into the docs"
    missing, bad_anchors = [], []
    for link in links:
        path, _, anchor = link.partition("#")
        target = (README.parent / path).resolve()
        if not target.exists():
            missing.append(link)
        elif anchor and target.suffix == ".md":
            if anchor not in anchors(target.read_text(encoding="utf-8")):
                bad_anchors.append(link)
    assert not missing, f"README links to files that do not exist: {sorted(set(missing))}"
    assert not bad_anchors, f"README links to headings that do not exist: {bad_anchors}"
