"""What every `llmclient` command prints with: aligned tables, exact decimals, JSON of Decimals and days."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """Aligned columns: `align` says l or r per column (default: the first left, the others right);
    dollar amounts line up on their decimal point."""
    align = align or "l" + "r" * (len(headers) - 1)
    columns = [list(column) for column in zip(headers, *rows)] if rows else [[header] for header in headers]
    out = []
    for side, cells in zip(align, columns):
        if all(cell.startswith("$") or cell == "-" for cell in cells[1:]) and any("." in cell for cell in cells[1:]):
            digits = [len(cell.partition(".")[2]) if "." in cell else -1 for cell in cells[1:]]
            cells = [cells[0], *(cell + " " * (max(digits) - count) for cell, count in zip(cells[1:], digits))]
        width = max(len(cell) for cell in cells)
        out.append([cell.ljust(width) if side == "l" else cell.rjust(width) for cell in cells])
    return ["  ".join(row).rstrip() for row in zip(*out)]


def decimal_text(value: Decimal) -> str:
    """The exact digits, no exponent, no trailing zeros: 0.04690 -> "0.0469", 1E+2 -> "100"."""
    return format(value.normalize(), "f")


def jsonable(value: Any) -> Any:
    """`json.dumps(..., default=jsonable)`: Decimals as exact decimal strings, days as YYYY-MM-DD."""
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
