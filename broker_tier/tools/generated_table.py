"""A Markdown table generated from the code and kept between two markers of a document, with the command line
every such generator shares: print it, ``--write FILE`` (replace the table between the markers) or ``--check FILE``
(exit 1 when the document's table differs; the test suite runs the same comparison)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GeneratedTable:
    what: str
    """What the table is, for messages: ``the configuration reference``."""
    marker: str
    """The markers' name: ``<!-- config-reference: ... -->`` ... ``<!-- /config-reference -->``."""
    source: str
    """What it is generated from, as the begin marker says."""
    module: str
    """The generator's module, run with ``python -m``."""
    document: str
    """The document it lives in, relative to the repository."""
    lines: Callable[[], list[str]]
    """The table's lines, header included."""

    @property
    def begin(self) -> str:
        return (
            f"<!-- {self.marker}: generated from {self.source} by "
            f"`python -m {self.module} --write {self.document}`; do not edit by hand -->"
        )

    @property
    def end(self) -> str:
        return f"<!-- /{self.marker} -->"

    def table(self) -> str:
        """The Markdown table, markers included."""
        return "\n".join([self.begin, "", *self.lines(), "", self.end])

    def replace_in(self, text: str) -> str:
        """``text`` with the table between the markers replaced by the generated one."""
        start, end = text.find(self.begin), text.find(self.end)
        if start < 0 or end < start:
            raise ValueError(f"markers not found: {self.begin!r} ... {self.end!r}")
        return text[:start] + self.table() + text[end + len(self.end) :]

    def main(self, argv: list[str], *, description: str) -> int:
        parser = argparse.ArgumentParser(description=description)
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--write", type=Path, metavar="FILE", help="replace the table in this file")
        mode.add_argument("--check", type=Path, metavar="FILE", help="exit 1 if this file's table is not current")
        args = parser.parse_args(argv)
        if args.write:
            args.write.write_text(self.replace_in(args.write.read_text()))
            return 0
        if args.check:
            text = args.check.read_text()
            if self.replace_in(text) != text:
                print(f"{args.check}: {self.what} is out of date; run python -m {self.module} --write {args.check}")
                return 1
            return 0
        print(self.table())
        return 0


def cell(text: str) -> str:
    """``text`` as one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")
