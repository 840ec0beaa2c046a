"""The instruments files after an ingest, kept as Qlib's collector keeps them: a member listed until its last stored
day is extended to its new last day, a new listing joins ``all`` (and the universes named for new listings), an
instrument absent from the new rows keeps its last day."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from tasks.core.data.qlib_binary import Span, read_universe


def updated_universes(
    out: Path,
    calendar: pd.DatetimeIndex,
    spans: Mapping[str, Span],
    old_spans: Mapping[str, tuple[int, int] | None],
    add_to: set[str],
    outside: frozenset[str],
) -> dict[str, dict[str, Span]]:
    """Every universe's members after the ingest (``spans``: the written instruments' new spans)."""
    instruments = out / "instruments"
    names = {path.stem for path in instruments.glob("*.txt")} if instruments.is_dir() else set()
    universes: dict[str, dict[str, Span]] = {}
    for name in sorted(names | add_to):
        members = read_universe(out, name) if name in names else {}
        for symbol, span in spans.items():
            stored = old_spans.get(symbol)
            key = symbol.upper()
            if stored is None:
                if name in add_to and key not in outside:
                    members[key] = span
            elif key in members and members[key].end == calendar[stored[1]]:
                members[key] = Span(members[key].start, span.end)
        universes[name] = members
    return universes
