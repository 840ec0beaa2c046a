"""Numbers as the pages show them: integers as integers, four decimals for the usual metric values, and
scientific notation where four decimals would say nothing (tiny values) or too much (huge ones)."""

from __future__ import annotations

import math


def number(value: float | int) -> str:
    """`value` for a person: 162 (not 162.0000), 0.0321, 1.7e+308, 3.2e-07; ±∞ for infinities."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1e6 or abs(value) < 1e-4:
        return f"{value:.4g}"
    return f"{value:.4f}"


def signed(value: float) -> str:
    """A difference, with its sign: +0.0012, −3, +1.2e+300."""
    text = number(value)
    if text == "0":
        return text
    return text if text.startswith(("-", "−")) else f"+{text}"
