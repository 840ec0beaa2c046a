"""Score a registered model on a date segment: the one function predictions and champion re-scoring share.

The model comes from the registry (its artifact's checksum verified), the dataset from the model's own
Qlib recorder: the ``dataset`` object saved at training (``dataset.config(dump_all=False, recursive=True)``,
so the handler's processors keep the state fitted on the training span and no data is stored). It is
pointed at the requested days and set up with ``DataHandlerLP.IT_LS`` through Qlib's ``RMDLoader``, which
is how Qlib's ``PredUpdater`` prepares the days it predicts. Qlib's expression engine reads the extra
history each expression's rolling windows need by itself, so only the requested days are loaded (plus
``step_len - 1`` days for a ``TSDatasetH``, as PredUpdater adds) and never the whole history.

Two refinements keep scores reproducible to the last bit. First, Qlib computes rolling windows with running sums
from the first loaded day and stores features as float32, so a feature can differ by one float32 step
(about 1e-7 relative) depending on where the load started. The load therefore starts at the beginning of
the fixed block of ``ANCHOR_BLOCK`` trading days (counted from the calendar's first day) that holds it, one
load per block: a day's score is then the same whether it is predicted alone, in a 20-day batch or in a
full recompute, and equals PredUpdater's whenever PredUpdater's days start on a block boundary and stay
inside one block. Second, the model is given its features as float64 (:func:`_widen_to_float64`): a model
that predicts in float32, as Qlib's ``LinearModel`` does, otherwise rounds differently with the batch's
size, so its scores equal PredUpdater's to float32 precision (about 1e-7) rather than to the last bit.
A block's raw features are loaded once per process and data version, whichever model of the same features
asks again (tasks/core/features/blocks.py): each model's own processors still run on them.
The champion re-scoring's shared-features path (:func:`score_on_shared_features`) is the exception: it
predicts on the float32 frame in one batch, as the candidate's own evaluation does, so the two compare alike.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from registry import ModelInfo, ModelRegistry
from registry.settings import Settings
from tasks.core.errors import PipelineInputError
from tasks.core.qlib.session import QLIB_LOCK, current_data, init_from_qlib_init, init_qlib
from tasks.core.qlib.training import DATASET_OBJECT, Logger, qlib_step
from tasks.core.timing import timed

DateLike = str | date | pd.Timestamp
ANCHOR_BLOCK = 20  # trading days; a one-day update loads at most 19 extra days besides the look-back
_log = logging.getLogger(__name__)


class ScoringError(PipelineInputError):
    """A model cannot be scored on the days asked (the message names the model, the days or the data)."""


class MissingDatasetStateError(ScoringError):
    """The model's recorder has no saved ``dataset`` object to predict new days with."""


class OutsideCalendarError(ScoringError):
    """The requested days have no trading day in the data calendar."""


@dataclass
class LoadedModel:
    """A registered model with the dataset state saved in its recorder, ready to score any segment."""

    info: ModelInfo
    model: Any
    dataset: Any  # qlib.data.dataset.DatasetH, as saved by training (no data inside)
    recorder: Any  # qlib.workflow.recorder.Recorder
    timings: dict[str, float] = field(default_factory=dict)
    handler_config: dict[str, Any] | None = None  # from the recorder's `task`, for the feature cache check


def resolve_provider_uri(provider_uri: str | Path | None, settings: Settings) -> Path:
    """The Qlib data directory to score on: the argument, else QMP_PROVIDER_URI."""
    chosen = provider_uri if provider_uri is not None else settings.provider_uri
    if chosen is None:
        raise ScoringError("no Qlib data directory: pass provider_uri or set QMP_PROVIDER_URI")
    return Path(chosen).expanduser().resolve()


def load_registered_model(
    model_id: str,
    *,
    settings: Settings,
    registry: ModelRegistry | None = None,
    provider_uri: str | Path | None = None,
    region: str = "cn",
    qlib_init: dict[str, Any] | None = None,
) -> LoadedModel:
    """Load ``model_id`` (checksum verified) and its recorder's saved dataset, with Qlib initialised on the data.

    ``qlib_init``: a workflow's ``qlib_init`` section to initialise Qlib from instead of ``provider_uri`` and
    ``region`` (the champion re-scoring passes the candidate's, so Qlib keeps the region and options the
    candidate was trained and evaluated with, and is not initialised again between the two).
    """
    from tasks.core.lifecycle import open_registry

    registry = registry or open_registry(settings)
    timings: dict[str, float] = {}
    with timed() as clock:
        info = registry.get_model_info(model_id)
        model = registry.get_model(model_id)  # CorruptedArtifactError when the checksum differs
    timings["load_model"] = clock.seconds
    if not info.qlib_recorder_id or not info.experiment_name:
        raise MissingDatasetStateError(
            f"model {model_id!r} has no Qlib recorder: only models trained by qmp (or Qlib's trainer) can be scored"
        )
    with QLIB_LOCK:
        with timed() as clock:
            if qlib_init is not None:
                init_from_qlib_init(qlib_init, settings)
            else:
                init_qlib(resolve_provider_uri(provider_uri, settings), region=region, settings=settings)
        timings["qlib_init"] = clock.seconds
        from qlib.workflow import R

        with timed() as clock:
            try:
                recorder = R.get_recorder(recorder_id=info.qlib_recorder_id, experiment_name=info.experiment_name)
                dataset = recorder.load_object(DATASET_OBJECT)
            except Exception as exc:  # MLflow and Qlib raise plain exceptions for missing runs and objects
                raise MissingDatasetStateError(
                    f"model {model_id!r}: recorder {info.qlib_recorder_id} of experiment {info.experiment_name!r} "
                    f"has no loadable {DATASET_OBJECT!r} object ({type(exc).__name__}); retrain the model to score it"
                ) from None
        timings["load_dataset_state"] = clock.seconds
        handler_config = _handler_config(recorder)
    return LoadedModel(info=info, model=model, dataset=dataset, recorder=recorder, timings=timings,
                       handler_config=handler_config)


def _handler_config(recorder: Any) -> dict[str, Any] | None:
    """The handler section of the `task` object training saved (None when there is none to read)."""
    try:
        handler = recorder.load_object("task")["dataset"]["kwargs"]["handler"]
    except Exception:  # no task object, or a task whose dataset is not configured this way
        return None
    return handler if isinstance(handler, dict) else None


def trading_days(start: DateLike, end: DateLike) -> pd.DatetimeIndex:
    """The data calendar's trading days in [start, end] (Qlib must be initialised); OutsideCalendarError if none."""
    from qlib.data import D

    first, last = pd.Timestamp(start), pd.Timestamp(end)
    if first > last:
        raise OutsideCalendarError(f"start {first.date()} is after end {last.date()}")
    calendar = D.calendar(freq="day")
    days = pd.DatetimeIndex(calendar[(calendar >= first) & (calendar <= last)])
    if days.empty:
        raise OutsideCalendarError(
            f"no trading day between {first.date()} and {last.date()}: the data calendar covers "
            f"{calendar[0].date()}..{calendar[-1].date()}"
        )
    return days


def block_start(day: pd.Timestamp) -> pd.Timestamp:
    """The first trading day of the fixed ``ANCHOR_BLOCK``-day block of the calendar that holds ``day``."""
    from qlib.data import D

    calendar = D.calendar(freq="day")
    position = int(calendar.searchsorted(day))
    return pd.Timestamp(calendar[position - position % ANCHOR_BLOCK])


def score_loaded(loaded: LoadedModel, start: DateLike, end: DateLike, logger: Logger | None = None) -> pd.Series:
    """Scores of an already loaded model on the trading days in [start, end] (see :func:`score_registered_model`)."""
    log = logger or _log
    with qlib_step(logger):
        days = trading_days(start, end)
        loaded.timings["features"] = loaded.timings["predict"] = 0.0
        parts = [
            _score_block(loaded, block_days.iloc[0], block_days.iloc[-1])
            for _, block_days in pd.Series(days, index=days).groupby(_block_starts(days))
        ]
    scores = pd.concat(parts).sort_index() if len(parts) > 1 else parts[0]
    log.info(
        "scored %s on %d day(s) %s..%s: %d scores", loaded.info.model_id, len(days), days[0].date(),
        days[-1].date(), len(scores),
    )
    return scores


def _block_starts(days: pd.DatetimeIndex) -> list[pd.Timestamp]:
    from qlib.data import D

    calendar = D.calendar(freq="day")
    positions = calendar.searchsorted(days)
    return [pd.Timestamp(calendar[p - p % ANCHOR_BLOCK]) for p in positions]


def _score_block(loaded: LoadedModel, first: pd.Timestamp, last: pd.Timestamp) -> pd.Series:
    """Scores of [first, last], all inside one anchor block, loaded from the block's first day."""
    from qlib.data.dataset import TSDatasetH
    from qlib.utils import get_date_by_shift
    from qlib.workflow.online.update import RMDLoader

    from tasks.core.features.blocks import remembered_loads
    from tasks.core.features.raw import skip_cold_qlib_cache

    anchor = block_start(first)
    # PredUpdater's look-back rule: a TSDatasetH needs step_len - 1 earlier days to form its first sample.
    hist_ref = loaded.dataset.step_len - 1 if isinstance(loaded.dataset, TSDatasetH) else 0
    load_start = get_date_by_shift(anchor, -hist_ref, clip_shift=False, freq="day") if hist_ref else anchor
    # A cold Qlib dataset cache (QMP_FEATURE_CACHE=qlib) would be built over the whole calendar: read uncached then.
    with timed() as clock:
        with skip_cold_qlib_cache(loaded.handler_config) if loaded.handler_config else nullcontext(), \
                remembered_loads(loaded.dataset.handler, current_data()):
            dataset = RMDLoader(loaded.recorder).get_dataset(
                start_time=load_start, end_time=last, segments={"test": (first, last)},
                unprepared_dataset=loaded.dataset,
            )
        _widen_to_float64(dataset)
    loaded.timings["features"] += clock.seconds
    return _predict_test(loaded, dataset).loc[first:last]  # type: ignore[misc]


def _predict_test(loaded: LoadedModel, dataset: Any) -> pd.Series:
    """The model's scores on ``dataset``'s ``test`` segment as a sorted ``score`` Series (time added to
    ``loaded.timings["predict"]``)."""
    with timed() as clock:
        scores = loaded.model.predict(dataset, segment="test")
    loaded.timings["predict"] += clock.seconds
    if isinstance(scores, pd.DataFrame):
        scores = scores.iloc[:, 0]
    scores = pd.Series(scores, name="score").sort_index()
    scores.index = scores.index.set_names(["datetime", "instrument"])
    return scores


def score_on_shared_features(
    loaded: LoadedModel, dataset: Any, start: DateLike, end: DateLike, logger: Logger | None = None
) -> tuple[pd.Series, bool]:
    """Scores of ``loaded`` on [start, end] from the raw features ``dataset`` already holds; (scores, shared).

    The champion re-scoring's path: the candidate's dataset has just loaded the raw features of its whole
    window, and production reads the same expressions, so the raw frame is shared and only production's
    own processors (as fitted at its training, never re-fitted) run on it. The processed frame is never
    shared: two models of one name may normalise differently. When ``dataset`` holds no raw features, or
    they are not the ones production reads (other fields, instruments or frequency), or not every day of
    the range, production's features are loaded as :func:`score_loaded` does. Features computed inside a
    longer load can differ from a block-anchored load by one float32 step (see the module docstring), and
    the shared path predicts on the float32 frame as the candidate's evaluation does.
    """
    with QLIB_LOCK:
        days = trading_days(start, end)
    raw = _shareable_raw(loaded, dataset, days)
    if raw is None:
        return score_loaded(loaded, start, end, logger=logger), False
    log = logger or _log
    with qlib_step(logger):
        with timed() as clock:
            own = loaded.dataset
            own.handler._data = raw
            own.handler.process_data(with_fit=False)
            own.config(segments={"test": (days[0], days[-1])})
        # No float64 widening here: the candidate's own metrics come from Qlib's predict on its float32
        # frame in one batch, so production is predicted the same way; a model equal to the candidate
        # then scores exactly the candidate's metrics and a tie stays a tie.
        loaded.timings["features"] = clock.seconds
        loaded.timings["predict"] = 0.0
        scores = _predict_test(loaded, own)
    log.info("scored %s on %d day(s) %s..%s from the candidate's raw features: %d scores", loaded.info.model_id,
             len(days), days[0].date(), days[-1].date(), len(scores))
    return scores, True


def _shareable_raw(loaded: LoadedModel, dataset: Any, wanted: pd.DatetimeIndex) -> pd.DataFrame | None:
    """Production's raw frame for the ``wanted`` days built from ``dataset``'s, when both read the same features.

    Only the ``feature`` group must match (same expressions, instruments, frequency, loader): prediction
    never reads the label, so production's label columns are added empty, under production's own names.
    """
    from qlib.data.dataset import TSDatasetH

    from tasks.core.features.blocks import describe_loader

    if isinstance(dataset, TSDatasetH) or isinstance(loaded.dataset, TSDatasetH):
        return None  # samples span step_len days before the range: keep PredUpdater's own look-back rule
    theirs, ours = getattr(dataset, "handler", None), getattr(loaded.dataset, "handler", None)
    raw = getattr(theirs, "_data", None)
    if not isinstance(raw, pd.DataFrame) or raw.empty or ours is None:
        return None
    source, own_source = describe_loader(theirs, "feature"), describe_loader(ours, "feature")
    if source is None or source != own_source:
        return None
    loaded_days = raw.index.get_level_values("datetime")
    if loaded_days.min() > wanted[0] or loaded_days.max() < wanted[-1]:
        return None
    days = raw.loc[wanted[0]:wanted[-1]]  # type: ignore[misc]
    frame = days[["feature"]].copy()
    for group, (_, names) in ours.data_loader.fields.items():
        if group != "feature":
            for name in names:
                frame[(group, name)] = np.float32("nan")
    return frame


def _widen_to_float64(dataset: Any) -> None:
    """Give the model the prepared features as float64, so a day's score does not depend on the batch.

    Qlib stores features as float32, and a model such as Qlib's ``LinearModel`` (float32 coefficients)
    then predicts with a float32 BLAS product whose rounding depends on the number of rows and the memory
    layout: the same day scored alone or inside 20 days differed by up to 5e-7 here. In float64 the
    product's rounding is about 1e-16, and the widening itself is exact (every float32 is a float64), so
    tree models such as LightGBM score exactly as before.
    """
    handler = dataset.handler
    frame = getattr(handler, "_infer", None)  # the inference frame Qlib's DK_I fetches read
    if isinstance(frame, pd.DataFrame) and (frame.dtypes == "float32").any():
        handler._infer = frame.astype("float64")


def score_registered_model(
    model_id: str,
    start: DateLike,
    end: DateLike,
    *,
    settings: Settings,
    registry: ModelRegistry | None = None,
    provider_uri: str | Path | None = None,
    region: str = "cn",
    logger: Logger | None = None,
) -> pd.Series:
    """Score registered model ``model_id`` on the trading days in [``start``, ``end``] (both inclusive).

    Signature: ``score_registered_model(model_id, start, end, *, settings, registry=None,
    provider_uri=None, region="cn", logger=None) -> pd.Series``.

    - ``registry``: the registry to load from (default: the one QMP_REGISTRY_DIR / QMP_DATABASE_URL name);
      the artifact's checksum is verified (``CorruptedArtifactError`` otherwise).
    - ``provider_uri``: the Qlib data directory (default QMP_PROVIDER_URI); Qlib is initialised on it with the
      registry's MLflow tracking URI, where the model's recorder is read.
    - Returns the scores as a float Series named ``score`` indexed by (``datetime``, ``instrument``), sorted,
      covering only the trading days in the range; equal to ``model.predict(dataset)`` on the dataset Qlib's
      ``PredUpdater`` prepares for the same days from the same recorder.
    - Raises ``MissingDatasetStateError`` (no saved dataset in the recorder), ``OutsideCalendarError`` (no
      trading day in the range) and the registry's errors (model not found, corrupted artifact).
    """
    loaded = load_registered_model(
        model_id, registry=registry, settings=settings, provider_uri=provider_uri, region=region
    )
    return score_loaded(loaded, start, end, logger=logger)
