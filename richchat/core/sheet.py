"""A table laid out for the width it gets, keeping addresses and keys whole: discover's tables
(:mod:`richchat.core.discovery.render`) and ``trust list``'s (:mod:`richchat.core.trust.render`).

Rich wraps or folds any column to fit the terminal, so at 80 columns (a pipe) an address came
out as ``192.168.100.2`` / ``00`` and a fingerprint in two halves: copied, or read, wrong.
A :class:`Sheet` knows which columns hold such values (:attr:`Col.keep`) and picks a layout
once it knows its width (see :class:`Sheet`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from rich import box as rich_box
from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.table import Table
from rich.text import Text


@dataclass
class Col:
    header: str
    #: an address, a MAC, a port, a count, a key fingerprint: kept whole when the table fits so
    keep: bool = False
    right: bool = False


#: the least room a free-text column gets beside columns kept whole
FREE_TEXT_MIN = 6
#: below this many characters a column (every column folding) the table is shown as a list
FOLD_MIN = 8


@dataclass
class Sheet:
    """A table, laid out when the width it gets is known:

    * wide enough: a table whose kept columns (addresses, MACs, ports) are never split;
    * narrower: a table where every column folds (unless ``fold`` is False: where the kept
      values are the point, a fingerprint to compare, the list below is used instead);
    * narrower still (a tiny pane): a list, ``Header: value`` a line, rows apart, so that no
      value is dropped, which a table of 1-character columns would do; a value goes to a line
      of its own when it does not fit beside its header, and is folded only when it is wider
      than the whole width.

    Never is anything cropped. ``title`` may be :class:`rich.text.Text` (a path the user
    gave is shown as is, never read as markup)."""

    title: str | Text
    cols: list[Col]
    rows: list[list[Text]] = field(default_factory=list)
    caption: str | None = None
    #: the table's box (rich's default, heavy head, when None)
    box: rich_box.Box | None = None
    #: a table of folding columns may stand between the whole one and the list
    fold: bool = True

    def _widest(self, i: int) -> int:
        return max((len(line) for row in self.rows for line in row[i].plain.splitlines()),
                   default=0)

    def _header(self, i: int) -> int:
        """The longest word of column ``i``'s header: never folded mid-word in a table laid
        out for its values."""
        return max((len(word) for word in self.cols[i].header.split()), default=0)

    def table(self, keep: bool) -> Table:
        table = Table(title=self.title, title_justify="left", caption=self.caption,
                      box=rich_box.HEAVY_HEAD if self.box is None else self.box)
        for i, col in enumerate(self.cols):
            # (only a column kept whole gets a minimum width, and it does not wrap: rich
            # takes the room it lacks from wrapping columns only, and crops a table whose
            # wrapping columns have minimum widths too)
            whole = keep and col.keep and self._widest(i) > 0
            table.add_column(col.header, justify="right" if col.right else "left",
                             min_width=max(self._widest(i), self._header(i)) if whole else None,
                             no_wrap=whole, overflow="fold")
        for row in self.rows:
            table.add_row(*row)
        return table

    def stacked(self) -> RenderableType:
        title = self.title.copy() if isinstance(self.title, Text) else Text(self.title)
        title.stylize("italic")
        parts: list[RenderableType] = [title]
        for row in self.rows:
            parts.append(Text(""))
            for col, cell in zip(self.cols, row, strict=True):
                if cell.plain:
                    line = Text(f"{col.header.replace(chr(10), ' ')}: ", style="bold")
                    # lines are items, but an indented line belongs to the one before
                    # (an address's broadcast)
                    items: list[Text] = []
                    for part in cell.split("\n"):
                        if items and part.plain.startswith(" "):
                            items[-1] = Text.assemble(items[-1], " (", part.plain.strip(), ")")
                        else:
                            items.append(part)
                    # (rich wraps at the space after the header: a value that does not fit
                    # beside it goes whole to the next line, and folds only when wider than
                    # the whole width)
                    line.append_text(Text(", ").join(items))
                    parts.append(line)
        if self.caption:
            parts += [Text(""), Text(self.caption, style="italic")]
        return Group(*parts)

    def __rich_console__(self, console: Console,
                         options: ConsoleOptions) -> Iterator[RenderableType]:
        width = options.max_width
        # each column: its content, 2 of padding and 1 of border; one more border at the end
        kept = 1 + sum(max(self._widest(i) if c.keep else FREE_TEXT_MIN, self._header(i)) + 3
                       for i, c in enumerate(self.cols))
        folded = 1 + (FOLD_MIN + 3) * len(self.cols)
        if kept <= width:
            yield self.table(True)
        elif self.fold and folded <= width:
            yield self.table(False)
        else:
            yield self.stacked()
