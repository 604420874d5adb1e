"""Output: data to stdout (a Rich table or JSON with stable keys), everything else to stderr.

No AWS and no logic here. Progress bars only on a terminal; plain lines in CI.
"""

from __future__ import annotations

import json
import os
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)
# Off a terminal (a pipe, a CI log) Rich assumes 80 columns and folds table cells to fit;
# a log has no width, so there tables take their natural width, up to LOG_WIDTH.
LOG_WIDTH = 200
for _console in (stdout, stderr):
    if not _console.is_terminal and "COLUMNS" not in os.environ:
        _console.width = LOG_WIDTH


# Characters that reorder the text around them (Trojan Source, CVE-2021-42574): a key
# holding U+202E shows as another name.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def plain(value: Any, *, newlines: bool = False) -> str:
    """A key, name or message as it may reach a terminal: control characters (ESC, CR, BEL,
    NUL, C1), line separators and bidi overrides escaped visibly as \\x1b or \\u202e, so
    what S3 accepts as a key can neither drive the terminal nor pose as another name.
    newlines=True keeps "\\n" for text pipectl itself put on several lines."""
    text = "" if value is None else str(value)
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escape(ch) if ch != "\n" or not newlines else ch for ch in text)


def _escape(ch: str) -> str:
    if ch not in _BIDI and unicodedata.category(ch) not in ("Cc", "Zl", "Zp"):
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def lines(*parts: Any) -> Text:
    """A table cell of several lines, each escaped as plain() does."""
    return Text("\n".join(plain(p) for p in parts if p is not None))


def _default(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def to_json(data: Any, *, indent: int | None = 2) -> str:
    if is_dataclass(data) and not isinstance(data, type):
        data = asdict(data)
    return json.dumps(data, indent=indent, default=_default, sort_keys=False)


def print_json(data: Any, *, one_line: bool = False) -> None:
    """JSON on stdout; one_line for NDJSON streams (one document a line, as jq -c reads)."""
    sys.stdout.write(to_json(data, indent=None if one_line else 2) + "\n")
    sys.stdout.flush()


def table(title: str | Text | None, columns: Sequence[str], rows: Iterable[Sequence[Any]],
          no_wrap: Iterable[str] = ()) -> Table:
    """no_wrap: short columns (a status, a count, a time) kept whole; the others fold.
    Columns all named "" make a label/value table, printed without a header row."""
    # Text, not str, for the title and every cell: object keys like "data[bold].csv" must
    # not be read as Rich markup. A Text cell is the caller's own (see lines()).
    t = Table(title=Text(plain(title)) if isinstance(title, str) else title,
              title_justify="left", header_style="bold", show_header=any(columns))
    whole = set(no_wrap)
    for column in columns:
        t.add_column(column, overflow="fold", no_wrap=column in whole)
    for row in rows:
        t.add_row(*(v if isinstance(v, Text) else Text(plain(v)) for v in row))
    return t


def show(table_: Table, console: Console | None = None) -> None:
    """Print a table, or, on a terminal narrower than the table, each row as a few whole
    lines (its first cell, then "column: value"), so keys and bucket names are never folded
    into columns of fragments. A label/value table becomes "label: value" lines."""
    console = console or stdout
    natural = console.measure(table_, options=console.options.update(width=10_000)).maximum
    if natural <= console.width:
        console.print(table_)
        return
    if table_.title:
        console.print(table_.title, highlight=False)
    names = [c.header for c in table_.columns]
    cells = [list(c.cells) for c in table_.columns]
    for row in zip(*cells, strict=True):
        if not any(names):
            console.print(Text.assemble(row[0], ": ", row[1]), highlight=False)
            continue
        entry = row[0].copy()
        entry.stylize("bold")
        for name, cell in zip(names[1:], row[1:], strict=True):
            if cell.plain:
                entry.append_text(Text.assemble("\n  ", str(name), ": ", cell))
        console.print(entry, highlight=False)


def human_time(value: Any) -> str:
    """A time for a table: UTC to the second, "2024-05-17 02:00:00" (JSON keeps the ISO
    time whole). Text that is not a time is shown as it is."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def line(text: Any) -> None:
    """One line of data on stdout, as plain text (a key, an ID, a --check reason)."""
    stdout.out(plain(text), highlight=False)


# Messages are Text, never markup: they quote object keys such as "x[/y].csv".
def info(message: str) -> None:
    stderr.print(Text(plain(message, newlines=True)), highlight=False)


def warn(message: str) -> None:
    stderr.print(Text.assemble(("warning:", "yellow"), " ", plain(message, newlines=True)),
                 highlight=False)


def error(message: str) -> None:
    stderr.print(Text.assemble(("error:", "red"), " ", plain(message, newlines=True)),
                 highlight=False)


def is_terminal() -> bool:
    return stderr.is_terminal


def human_bytes(n: int | float | None) -> str:
    if n is None:
        return ""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
