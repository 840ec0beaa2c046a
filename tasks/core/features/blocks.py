"""Raw feature blocks remembered within a process: one load per (data version, loader, block) however often a
model of the same features is scored on it.

Scoring loads each fixed block of trading days from its first day (tasks/core/qlib/scoring.py says why), and
the same block is often asked for again in one process: `qmp approve` checks the stale approval then applies
it, the stale check and the champion re-scoring read production's features on the candidate's window, and every
model of a name reads the same expressions. The raw frame a loader returns for a field group (before any
processor) depends only on the data, the loader's configuration, the group's expressions, the instruments and the
days asked for, so those are the key. Features and label are separate groups, so models of the same features
under different label expressions share the features; each model's own fitted processors still run on a copy.
The data version (the calendar's end and the fingerprint of the data files) is part of the key, so appended days
or a corrected value are loaded afresh.

Only Qlib's own ``QlibDataLoader`` is remembered (another loader may read anything). The memory is bounded
(:data:`MAX_BYTES`, least recently used first out). Callers hold ``QLIB_LOCK``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

MAX_BYTES = 512 * 1024 * 1024
_blocks: OrderedDict[Hashable, pd.DataFrame] = OrderedDict()
_stats = {"hits": 0, "misses": 0}


def describe_loader(handler: Any, group: str | None = None) -> tuple[str, ...] | None:
    """What a handler's raw frame is made of: its loader's fields (every group, or only ``group``), instruments,
    frequency, filters, instrument processors, level order and class; None when the loader has no fields (or not
    that group). Two handlers with the same description load the same raw frame from the same data."""
    loader = getattr(handler, "data_loader", None)
    fields = getattr(loader, "fields", None)
    if not isinstance(fields, dict) or (group is not None and group not in fields):
        return None
    return (repr(fields if group is None else fields[group]), repr(getattr(handler, "instruments", None)),
            repr(getattr(loader, "freq", "day")), repr(getattr(loader, "filter_pipe", None)),
            repr(getattr(loader, "inst_processors", None)), repr(getattr(loader, "swap_level", None)),
            type(loader).__name__)


@contextmanager
def remembered_loads(handler: Any, data: tuple[str, str] | None) -> Iterator[None]:
    """While inside, ``handler``'s loader answers a load of a field group already made on the same ``data``
    (directory, version) from memory, and remembers the loads it makes.

    The unit is Qlib's own: the loader loads each field group (``feature``, ``label``) by itself and joins them,
    so two models of the same features under different label expressions share the costly feature group."""
    # Only Qlib's own expression loader: another loader may read anything.
    qlib_loader = type(getattr(handler, "data_loader", None)).__name__ == "QlibDataLoader"
    if not qlib_loader or describe_loader(handler) is None or data is None:
        yield
        return
    loader = handler.data_loader
    original: Callable[..., pd.DataFrame] = loader.load_group_df

    def load_group_df(instruments: Any, exprs: list[str], names: list[str], start_time: Any = None,
                      end_time: Any = None, gp_name: str | None = None) -> pd.DataFrame:
        key = (data, gp_name, describe_loader(handler, gp_name), repr(instruments), str(pd.Timestamp(start_time)),
               str(pd.Timestamp(end_time)))
        frame = _blocks.get(key)
        if frame is not None:
            _blocks.move_to_end(key)
            _stats["hits"] += 1
            return frame.copy()
        _stats["misses"] += 1
        frame = original(instruments, exprs, names, start_time, end_time, gp_name)
        _remember(key, frame.copy())
        return frame

    loader.load_group_df = load_group_df  # an instance attribute: the class's method is back once it is deleted
    try:
        yield
    finally:
        del loader.load_group_df


def _remember(key: Hashable, frame: pd.DataFrame) -> None:
    _blocks[key] = frame
    while len(_blocks) > 1 and sum(int(f.memory_usage(deep=False).sum()) for f in _blocks.values()) > MAX_BYTES:
        _blocks.popitem(last=False)


def forget() -> None:
    """Forget every remembered block (a test comparing two ways of loading the same days calls it in between)."""
    _blocks.clear()


def stats() -> dict[str, int]:
    """How many loads were answered from memory (hits) and made (misses) in this process."""
    return dict(_stats, blocks=len(_blocks))
