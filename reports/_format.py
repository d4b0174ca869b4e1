"""How the report writes a number, in its tables and its sentences alike."""

from __future__ import annotations

import math
from typing import Any


def format_number(value: Any) -> str:
    """Numbers as a reader wants them: 4 significant digits, integers whole, missing as —."""
    if value is None or isinstance(value, str):
        return value or "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "—"
    if number.is_integer() and abs(number) < 1e6:
        return str(int(number))
    return f"{number:.4g}"
