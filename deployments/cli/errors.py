"""The CLI's one error path: the failures a user can cause or fix become one line on stderr and exit code 1."""

from __future__ import annotations

from registry import ModelRegistryError
from tasks.core.errors import PipelineError


def one_line(exc: BaseException) -> str | None:
    """What to print for `exc`, or None for a bug (which keeps its traceback)."""
    if isinstance(exc, ModelRegistryError | PipelineError):
        message = str(exc)
    elif isinstance(exc, OSError) and exc.filename is not None:
        message = f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    else:
        return None
    return " ".join(message.split())  # one line, whatever the message held
