"""Rolling-replay versions live under a derived model name: ``{model_name}.replay-{replay_id}``.

A replay's windows are versions of that name, never of the live name, so everything the registry and
the retrain flow decide per name (the newest version, the production model, champion comparisons,
version allocation) never sees them. The registry applies two more rules to such names: a replay
version is registered as ``registered``, never auto-``candidate``, and age/``keep_last`` cleanup leaves
replays alone (a replay is archived as a whole, by its id).
"""

from __future__ import annotations

import re

from registry.errors import InvalidNameError
from registry.models import validate_model_name

REPLAY_MARKER = ".replay-"
REPLAY_ID_PATTERN = re.compile(r"^[0-9a-f]{6,32}$")
# SQL LIKE pattern of every replay name (the marker holds neither `%` nor `_`).
REPLAY_NAME_LIKE = f"%{REPLAY_MARKER}%"


def replay_model_name(model_name: str, replay_id: str) -> str:
    """The registry name of replay ``replay_id`` of ``model_name``."""
    if not REPLAY_ID_PATTERN.fullmatch(replay_id):
        raise InvalidNameError(f"invalid replay id {replay_id!r}: 6-32 lower-case hex digits")
    if is_replay_name(model_name):
        raise InvalidNameError(f"model name {model_name!r} is already a replay name")
    return validate_model_name(f"{validate_model_name(model_name)}{REPLAY_MARKER}{replay_id}")


def is_replay_name(name: str) -> bool:
    """Whether ``name`` is a replay's derived name."""
    return REPLAY_MARKER in name


def split_replay_name(name: str) -> tuple[str, str] | None:
    """``(model_name, replay_id)`` of a replay name, else None."""
    base, marker, rid = name.rpartition(REPLAY_MARKER)
    if not marker or not REPLAY_ID_PATTERN.fullmatch(rid):
        return None
    return base, rid
