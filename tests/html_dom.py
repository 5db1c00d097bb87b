"""An HTML page as the tests read it (tests/ is on the path through tests/conftest.py)."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser


class Dom(HTMLParser):
    """Elements counted by tag and by `tag.class`, the text, the links' targets, every
    attribute name seen and <body>'s attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.count: Counter[str] = Counter()
        self.text: list[str] = []
        self.links: list[str] = []
        self.attrs_seen: set[str] = set()
        self.body_attrs: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.count[tag] += 1
        for cls in (values.get("class") or "").split():
            self.count[f"{tag}.{cls}"] += 1
        self.attrs_seen.update(values)
        if tag == "a":
            self.links.append(values.get("href") or "")
        if tag == "body":
            self.body_attrs = values

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def tags(self) -> set[str]:
        """The element names seen."""
        return {name for name in self.count if "." not in name}


def parse_html(html: str) -> Dom:
    dom = Dom()
    dom.feed(html)
    return dom
