"""Read-only views of the registry for browsing (the web page and its JSON twin): a constant number of
statements per view, whatever the number of names and versions.

Each view runs its statements on one connection (`Database.read`); none issues a statement per name or
per version. A rolling replay's versions are versions of its derived name (`registry.replays`): the overview
has a row per live name, counting its replays, and a name's page lists its replays and shows one replay's
versions on request, never mixed with the live versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection

from registry import store
from registry.data_versions import DataVersionRecord
from registry.errors import InvalidNameError, UnknownName, UnknownReplay, UnknownVersion
from registry.models import ModelEvent, ModelInfo, validate_model_name
from registry.replays import is_replay_name, replay_model_name, split_replay_name
from registry.series import EvaluationSeries
from registry.statuses import ModelStatus
from registry.store import pages
from registry.store.pages import CHART_LIMIT, HISTORY_LIMIT
from registry.views.data import find_data_version
from registry.views.live_summary import LiveSummary, live_summaries

if TYPE_CHECKING:
    from registry.service import ModelRegistry


class NameSummary(BaseModel):
    """One live model name on the overview."""

    model_config = ConfigDict(protected_namespaces=(), frozen=True)

    model_name: str
    versions: int  # of the live name (a replay's versions are its own name's)
    replays: int  # rolling replays of the name that have versions
    production: ModelInfo | None
    production_since: datetime | None
    newest: ModelInfo | None
    newest_data: date | None  # the calendar end of the data the newest or production version was trained on
    live: LiveSummary | None  # the production model's live IC and drift verdict; None before its first live day


class ChartPoint(BaseModel):
    """One version on a name's metric chart."""

    model_config = ConfigDict(frozen=True)

    version: str
    created_at: datetime
    status: ModelStatus
    metrics: dict[str, float]


class ReplaySummary(BaseModel):
    """A rolling replay of a name: its versions are those of `replay_name`, listed on their own."""

    model_config = ConfigDict(frozen=True)

    replay_id: str
    replay_name: str
    versions: int
    first_registered: datetime
    last_registered: datetime


class NamePage(BaseModel):
    """A model name (or one of its replays): a page of versions, the chart's points, the history, the
    production periods, and the name's replays."""

    model_config = ConfigDict(protected_namespaces=(), frozen=True)

    model_name: str  # the live name
    replay_id: str | None  # the replay shown, None for the live versions
    total: int  # versions matching the filter
    versions: list[ModelInfo]
    chart: list[ChartPoint]  # oldest first, at most CHART_LIMIT
    history: list[ModelEvent]  # oldest first, the newest HISTORY_LIMIT (of the replay's name on a replay)
    production_events: list[ModelEvent]  # every event into or out of production, oldest first (none on a replay)
    replays: list[ReplaySummary]  # of the live name, oldest first


class VersionPage(BaseModel):
    """One version with its evaluation series, history, the live name's production model id and the ingest record
    of its data version."""

    model_config = ConfigDict(protected_namespaces=(), frozen=True)

    info: ModelInfo
    series: dict[str, EvaluationSeries]
    history: list[ModelEvent]
    production_id: str | None
    replay_of: str | None  # the live name when the version is a replay's window
    replay_id: str | None
    data_version: str | None  # as recorded with the version (`recorded_data_version`)
    data_version_record: DataVersionRecord | None  # the ingest's record of that data version, when there is one


def _is_name(name: str) -> bool:
    try:
        validate_model_name(name)
    except InvalidNameError:
        return False
    return True


# -- overview --------------------------------------------------------------------------------------------------

def overview(registry: ModelRegistry) -> list[NameSummary]:
    """One summary per live model name with its live column (`live_summary`), sorted by name (at most six
    statements whatever the registry's size)."""
    root = registry.artifacts.location

    def read(connection: Connection) -> list[NameSummary]:
        names = pages.name_counts(connection)
        infos = pages.newest_and_production_infos(connection, root)
        production = {i.model_name: i for i in infos if i.status == ModelStatus.PRODUCTION}
        return _summaries(names, infos, live_summaries(connection, production))

    return registry.db.read(read)


def _summaries(names: Sequence[tuple[str, int]], infos: list[ModelInfo], live_records: dict[str, LiveSummary]
               ) -> list[NameSummary]:
    """Replay names folded into their live name's row (a count of names, not of versions)."""
    live: dict[str, int] = {}
    replays: dict[str, int] = {}
    for name, versions in names:
        if not is_replay_name(name):
            live[name] = versions
        elif versions and (split := split_replay_name(name)) is not None:
            replays[split[0]] = replays.get(split[0], 0) + 1
    production = {i.model_name: i for i in infos if i.status == ModelStatus.PRODUCTION}
    newest: dict[str, ModelInfo] = {}
    for info in infos:  # production may be the newest too, or an older version
        if info.model_name not in newest or info.created_at > newest[info.model_name].created_at:
            newest[info.model_name] = info
    summaries = []
    for name in sorted(live.keys() | replays.keys()):  # a name may have replays and no live version yet
        versions = live.get(name, 0)
        prod = production.get(name)
        ends = [end for info in (newest.get(name), prod) if info and (end := recorded_data_end(info))]
        summaries.append(NameSummary(
            model_name=name, versions=versions, replays=replays.get(name, 0), production=prod,
            production_since=prod.updated_at if prod else None, newest=newest.get(name),
            newest_data=max(ends, default=None), live=live_records.get(name),
        ))
    return summaries


def recorded_data_end(info: ModelInfo) -> date | None:
    """The last trading day of the data `info` was trained on: the calendar end of its recorded data version
    (`YYYY-MM-DD/<fingerprint>`, in the dataset record or the `data_version` tag); None when not recorded.
    Never the workflow's configured end time, which may lie years past the data."""
    for recorded in _recorded_data_versions(info):
        try:
            return date.fromisoformat(recorded.partition("/")[0])
        except ValueError:
            continue
    return None


def recorded_data_version(info: ModelInfo) -> str | None:
    """The data version `info` was trained on as recorded (the dataset record's, else the `data_version` tag)."""
    return next(iter(_recorded_data_versions(info)), None)


def _recorded_data_versions(info: ModelInfo) -> list[str]:
    extra = (info.dataset_info.model_extra or {}) if info.dataset_info else {}
    return [str(recorded) for recorded in (extra.get("data_version"), info.tags.get("data_version")) if recorded]


# -- a model name ----------------------------------------------------------------------------------------------
# `name` is the live name, `target` the name whose versions are shown: the live name, or a replay's name.

def _replays(rows: Sequence[pages.ReplayRow], name: str) -> list[ReplaySummary]:
    found = []
    for replay_name, versions, first, last in rows:
        split = split_replay_name(replay_name)
        if split is not None and split[0] == name:
            found.append(ReplaySummary(replay_id=split[1], replay_name=replay_name, versions=versions,
                                       first_registered=first, last_registered=last))
    return found


def _page_target(name: str, replay_id: str | None) -> tuple[str, str | None, str]:
    """The live name, the replay id and the name whose versions are shown, or UnknownName / UnknownReplay."""
    if replay_id is None and (split := split_replay_name(name)) is not None:
        name, replay_id = split
    if not _is_name(name) or is_replay_name(name):
        raise UnknownName(name)
    if replay_id is None:
        return name, None, name
    try:
        return name, replay_id, replay_model_name(name, replay_id)
    except InvalidNameError:
        raise UnknownReplay(name, replay_id) from None


def name_page(
    registry: ModelRegistry, name: str, *, statuses: Sequence[ModelStatus] = (),
    min_metrics: dict[str, float] | None = None, replay_id: str | None = None, limit: int = 50, offset: int = 0,
) -> NamePage:
    """A page of `name`'s live versions, or of its replay `replay_id`'s (newest first, filtered like
    `qmp models list`), with the chart's points, the history and the name's replays.

    A replay's own name stands for its live name and replay id. UnknownName when `name` has neither a version
    nor a replay; UnknownReplay when `replay_id` is not one of its replays.
    """
    name, replay_id, target = _page_target(name, replay_id)
    query = pages.VersionsQuery(name, target, tuple(sorted(s.value for s in statuses)), min_metrics or {},
                                limit, offset)
    root = registry.artifacts.location

    def read(connection: Connection) -> NamePage:
        known_name, known_target, total = pages.page_counts(connection, query)
        replays = _replays(pages.replay_rows(connection, name), name)
        if not known_name and not replays:
            raise UnknownName(name)
        if replay_id is not None and not known_target:
            raise UnknownReplay(name, replay_id)
        versions = pages.page_versions(connection, query, root)
        chart = [ChartPoint(version=version, created_at=created_at, status=ModelStatus(status), metrics=metrics)
                 for version, created_at, status, metrics in pages.chart_rows(connection, target)]
        history = pages.name_history(connection, target)
        production = [] if replay_id is not None else pages.production_events(connection, name)
        return NamePage(model_name=name, replay_id=replay_id, total=total, versions=versions, chart=chart,
                        history=history, production_events=production, replays=replays)

    return registry.db.read(read)


# -- one version, two versions ---------------------------------------------------------------------------------

def version_page(registry: ModelRegistry, name: str, version: str) -> VersionPage:
    """Version `version` of `name` (a live name or a replay's) with its series, its history, the live name's
    production model and its data version's ingest record; UnknownName when the name is unknown, UnknownVersion
    (a LookupError naming the version) when only the version is."""
    if "\x00" in version or not _is_name(name):
        raise UnknownName(name)
    replay = split_replay_name(name)
    live_name = replay[0] if replay else name
    root = registry.artifacts.location

    def read(connection: Connection) -> VersionPage:
        info = pages.version_info(connection, name, version, root)
        if info is None:
            if not pages.name_exists(connection, name):
                raise UnknownName(name)
            raise UnknownVersion(version)
        series = store.read_series(connection, [info.model_id])[info.model_id]
        history = pages.model_history(connection, info.model_id)
        production = pages.production_id(connection, live_name)
        data_version = recorded_data_version(info)
        record = find_data_version(connection, data_version) if data_version else None
        return VersionPage(info=info, history=history, production_id=production,
                           replay_of=replay[0] if replay else None, replay_id=replay[1] if replay else None,
                           data_version=data_version, data_version_record=record,
                           series={k: EvaluationSeries.model_validate(v) for k, v in series.items()})

    return registry.db.read(read)


def versions_with_series(
    registry: ModelRegistry, model_ids: list[str]
) -> tuple[dict[str, ModelInfo], dict[str, dict[str, EvaluationSeries]]]:
    """The infos and series of `model_ids` (missing ids are absent from the first dict), two statements."""
    ids = [m for m in model_ids if "\x00" not in m]
    root = registry.artifacts.location

    def read(connection: Connection) -> tuple[dict[str, ModelInfo], dict[str, dict[str, EvaluationSeries]]]:
        if not ids:
            return {}, {}
        infos = {i.model_id: i for i in pages.infos_by_ids(connection, ids, root)}
        series = store.read_series(connection, ids)
        return infos, {m: {k: EvaluationSeries.model_validate(v) for k, v in s.items()} for m, s in series.items()}

    return registry.db.read(read)


def production_infos(registry: ModelRegistry, names: list[str]) -> dict[str, ModelInfo]:
    """The production model of each of `names` that has one (one statement)."""
    if not names:
        return {}
    root = registry.artifacts.location
    infos = registry.db.read(lambda connection: pages.production_infos(connection, names, root))
    return {i.model_name: i for i in infos}


__all__ = [
    "CHART_LIMIT", "HISTORY_LIMIT", "ChartPoint", "NamePage", "NameSummary", "ReplaySummary", "UnknownName",
    "UnknownReplay", "UnknownVersion", "VersionPage", "name_page", "overview", "production_infos", "version_page",
    "versions_with_series",
]
