"""Known third-party noise that is not ours to show: silenced once per process, before Qlib is imported."""

from __future__ import annotations

import warnings


def silence_known_notices() -> None:
    """Drop gym's unmaintained-package notice and the warnings our dependencies raise on import.

    Qlib's RL module imports gym 0.26, which prints a three-line notice to stderr from the
    `gym_notices` table on import; we never use gym, so its table is emptied before anything imports it.
    """
    try:
        import gym_notices.notices as gym_notices
    except ImportError:
        pass
    else:
        gym_notices.notices.clear()
    for module in ("gym", "qlib", "mlflow", "lightgbm"):
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
