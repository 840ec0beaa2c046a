"""Text as the pages show it: every value as readable text (never JSON escapes), and no character that can
reorder what follows it on the line."""

from __future__ import annotations

import json
import re
from typing import Any

from markupsafe import Markup

from deployments.ui.numbers import number

# Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): a U+202E in a reason would
# show the rest of the line reversed. Each is replaced by a visible replacement character.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
REPLACEMENT = "\ufffd"


def neutralise(value: Any) -> Any:
    """Jinja's `finalize`: bidi controls in plain text replaced; markup from the macros passed through."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return BIDI_CONTROLS.sub(REPLACEMENT, value)
    return value


def as_text(value: Any) -> str:
    """A configuration value as a person reads it: strings as they are, numbers as numbers, lists and
    mappings as compact JSON with their characters (Ω, <) unescaped; null for None."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return number(value)
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
