"""Tables that fit the terminal: a table when there is room, one record per block when not.

At 80 columns a wide table does not shrink gracefully: rich squeezes the last columns to
nothing (the plan lost its what/why columns) or folds a 34-character key over 16 lines. So a
`Fitted` table decides when it is rendered, from the width it is given: if every short
column fits whole and each long-text column keeps at least `min_width` characters, it is a
table; otherwise each row becomes a block — a heading line from the first columns, then one
`label  value` line per other column, wrapped at the terminal's width.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

Justify = Literal["left", "right"]


@dataclass(frozen=True)
class Column:
    name: str
    long: bool = False  # free text (why, reason, detail): folds in a table, a line in a block
    justify: Justify = "left"
    min_width: int = 16  # for a long column: narrower than this, the rows become blocks


@dataclass
class Fitted:
    """A table or, when the width is too small for it, blocks; render it with console.print."""

    title: str
    columns: Sequence[Column]
    heading: int = 2  # the first `heading` columns make a block's first line
    rows: list[list[str]] = field(default_factory=list)
    caption: str | None = None
    compact: bool = False  # blocks as one wrapped line of `name value` pairs (all short)

    def add_row(self, *cells: str) -> None:
        self.rows.append(list(cells))

    def needed_width(self) -> int:
        """The narrowest terminal in which the table shows every cell of its short columns
        whole and keeps `min_width` for each long one (borders and padding included)."""
        width = 1
        for i, col in enumerate(self.columns):
            if col.long:
                width += col.min_width + 3
                continue
            cells = [Text.from_markup(row[i]).cell_len for row in self.rows] or [0]
            width += max(len(col.name), *cells) + 3
        return width

    def table(self) -> Table:
        table = Table(title=self.title, caption=self.caption)
        for col in self.columns:
            if col.long:
                table.add_column(col.name, overflow="fold", ratio=1, min_width=col.min_width)
            else:
                table.add_column(col.name, justify=col.justify, no_wrap=True)
        for row in self.rows:
            table.add_row(*row)
        return table

    def blocks(self) -> Group:
        parts: list[Text | Table] = [Text(self.title, style="bold")]
        labels = [c.name for c in self.columns[self.heading:]]
        label_width = max((len(name) for name in labels), default=0)
        for row in self.rows:
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="dim", no_wrap=True, min_width=label_width)
            grid.add_column(overflow="fold")
            head = Text("  ").join(Text.from_markup(c) for c in row[:self.heading] if c)
            head.stylize("bold")
            parts.append(Text(""))
            parts.append(head)
            pairs = [(name, cell) for name, cell in zip(labels, row[self.heading:], strict=True)
                     if cell]
            if self.compact:  # a no-break space keeps each name with its value
                parts.append(Text("   ").join(Text.from_markup(f"[dim]{name}[/]\u00a0{cell}")
                                              for name, cell in pairs))
                continue
            for name, cell in pairs:
                grid.add_row(name, Text.from_markup(cell))
            parts.append(grid)
        if self.caption:
            parts.extend([Text(""), Text(self.caption, style="dim")])
        return Group(*parts)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        chosen = self.table() if self.needed_width() <= options.max_width else self.blocks()
        yield chosen

    def __iter__(self) -> Iterator[list[str]]:
        return iter(self.rows)


__all__ = ["Column", "Fitted"]
