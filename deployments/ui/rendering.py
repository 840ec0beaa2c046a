"""The Jinja2 templates and their filters (numbers, times, sizes, URL parts)."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape

from deployments.ui.numbers import number, signed
from deployments.ui.text import as_text, neutralise

TEMPLATES = Path(__file__).parent / "templates"


def templates() -> Environment:
    """The pages' templates, autoescaped, with the filters they use."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "svg"]),
                      trim_blocks=True, lstrip_blocks=True, finalize=neutralise)
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.filters["num"] = lambda value: "–" if value is None else number(value)
    env.filters["signed"] = signed
    env.filters["text"] = as_text
    env.filters["when"] = lambda value: "–" if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    env.filters["size"] = size
    return env


def size(value: int | None) -> str:
    """A byte count in B, KiB, MiB or GiB."""
    if value is None:
        return "–"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"
