"""Score a registered model on a date segment: the one function predictions and champion re-scoring share.

The model comes from the registry (its artifact's checksum verified), the dataset from the model's own
Qlib recorder: the ``dataset`` object saved at training (``dataset.config(dump_all=False, recursive=True)``,
so the handler's processors keep the state fitted on the training span and no data is stored). It is
pointed at the requested days and set up with ``DataHandlerLP.IT_LS`` through Qlib's ``RMDLoader``, which
is how Qlib's ``PredUpdater`` prepares the days it predicts. The handler loads only the requested days
(plus ``step_len - 1`` days for a ``TSDatasetH``); Qlib's expression engine reads the extra history each
expression's rolling windows need by itself, so a day's features equal those of a full-history load.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from registry import ModelInfo, ModelRegistry
from registry.settings import Settings, load_settings
from tasks.core.qlib_env import QLIB_LOCK, init_qlib
from tasks.core.training import DATASET_OBJECT, Logger, qlib_step

DateLike = str | date | pd.Timestamp
_log = logging.getLogger(__name__)


class ScoringError(ValueError):
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


def resolve_provider_uri(provider_uri: str | Path | None, settings: Settings) -> Path:
    """The Qlib data directory to score on: the argument, else QMP_PROVIDER_URI."""
    chosen = provider_uri if provider_uri is not None else settings.provider_uri
    if chosen is None:
        raise ScoringError("no Qlib data directory: pass provider_uri or set QMP_PROVIDER_URI")
    return Path(chosen).expanduser().resolve()


def load_registered_model(
    model_id: str,
    *,
    registry: ModelRegistry | None = None,
    settings: Settings | None = None,
    provider_uri: str | Path | None = None,
    region: str = "cn",
) -> LoadedModel:
    """Load ``model_id`` (checksum verified) and its recorder's saved dataset, with Qlib initialised on the data."""
    from tasks.core.operations import open_registry

    settings = settings or load_settings()
    registry = registry or open_registry(settings)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    info = registry.get_model_info(model_id)
    model = registry.get_model(model_id)  # CorruptedArtifactError when the checksum differs
    timings["load_model"] = time.perf_counter() - started
    if not info.qlib_recorder_id or not info.experiment_name:
        raise MissingDatasetStateError(
            f"model {model_id!r} has no Qlib recorder: only models trained by qmp (or Qlib's trainer) can be scored"
        )
    with QLIB_LOCK:
        started = time.perf_counter()
        init_qlib(resolve_provider_uri(provider_uri, settings), region=region, settings=settings)
        timings["qlib_init"] = time.perf_counter() - started
        from qlib.workflow import R

        started = time.perf_counter()
        try:
            recorder = R.get_recorder(recorder_id=info.qlib_recorder_id, experiment_name=info.experiment_name)
            dataset = recorder.load_object(DATASET_OBJECT)
        except Exception as exc:  # MLflow and Qlib raise plain exceptions for missing runs and objects
            raise MissingDatasetStateError(
                f"model {model_id!r}: recorder {info.qlib_recorder_id} of experiment {info.experiment_name!r} has "
                f"no loadable {DATASET_OBJECT!r} object ({type(exc).__name__}); retrain the model to score it"
            ) from None
        timings["load_dataset_state"] = time.perf_counter() - started
    return LoadedModel(info=info, model=model, dataset=dataset, recorder=recorder, timings=timings)


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


def score_loaded(loaded: LoadedModel, start: DateLike, end: DateLike, logger: Logger | None = None) -> pd.Series:
    """Scores of an already loaded model on the trading days in [start, end] (see :func:`score_registered_model`)."""
    from qlib.data.dataset import TSDatasetH
    from qlib.utils import get_date_by_shift
    from qlib.workflow.online.update import RMDLoader

    log = logger or _log
    with qlib_step(logger):
        days = trading_days(start, end)
        first, last = days[0], days[-1]
        # PredUpdater's look-back rule: a TSDatasetH needs step_len - 1 earlier days to form its first sample.
        hist_ref = loaded.dataset.step_len - 1 if isinstance(loaded.dataset, TSDatasetH) else 0
        load_start = get_date_by_shift(first, -hist_ref, clip_shift=False, freq="day") if hist_ref else first
        started = time.perf_counter()
        dataset = RMDLoader(loaded.recorder).get_dataset(
            start_time=load_start, end_time=last, segments={"test": (first, last)}, unprepared_dataset=loaded.dataset
        )
        loaded.timings["features"] = time.perf_counter() - started
        started = time.perf_counter()
        scores = loaded.model.predict(dataset, segment="test")
        loaded.timings["predict"] = time.perf_counter() - started
    if isinstance(scores, pd.DataFrame):
        scores = scores.iloc[:, 0]
    scores = pd.Series(scores, name="score").sort_index()
    scores.index = scores.index.set_names(["datetime", "instrument"])
    scores = scores.loc[first:last]  # type: ignore[misc]
    log.info(
        "scored %s on %d day(s) %s..%s: %d scores", loaded.info.model_id, len(days), first.date(), last.date(),
        len(scores),
    )
    return scores


def score_registered_model(
    model_id: str,
    start: DateLike,
    end: DateLike,
    *,
    registry: ModelRegistry | None = None,
    settings: Settings | None = None,
    provider_uri: str | Path | None = None,
    region: str = "cn",
    logger: Logger | None = None,
) -> pd.Series:
    """Score registered model ``model_id`` on the trading days in [``start``, ``end``] (both inclusive).

    Signature: ``score_registered_model(model_id, start, end, *, registry=None, settings=None,
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
