"""The CLI's one error path: the failures a user can cause or fix become one line on stderr and exit code 1."""

from __future__ import annotations

from pydantic import ValidationError

from registry import ModelRegistryError
from tasks.core.errors import PipelineError

# The settings classes read from the environment, by the title pydantic gives their validation errors.
SETTINGS_PREFIXES = {"Settings": "QMP_", "UISettings": "QMP_UI_"}


def one_line(exc: BaseException) -> str | None:
    """What to print for `exc`, or None for a bug (which keeps its traceback)."""
    if isinstance(exc, ModelRegistryError | PipelineError):
        message = str(exc)
    elif isinstance(exc, OSError) and exc.filename is not None:
        message = f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    elif isinstance(exc, ValidationError) and exc.title in SETTINGS_PREFIXES:
        message = bad_setting(exc, SETTINGS_PREFIXES[exc.title])
    else:
        return None
    return " ".join(message.split())  # one line, whatever the message held


def bad_setting(exc: ValidationError, prefix: str) -> str:
    """`invalid setting QMP_UI_STALE_DAYS='abc': ...`, naming the environment variable of each bad field."""
    parts = []
    for error in exc.errors():
        variable = prefix + "_".join(str(part) for part in error["loc"]).upper()
        parts.append(f"invalid setting {variable}={error.get('input')!r}: {error['msg']}")
    return "; ".join(parts)
