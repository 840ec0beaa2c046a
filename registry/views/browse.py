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
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Executable, Integer, bindparam, func, or_, select

from registry import store
from registry.errors import InvalidNameError
from registry.models import ModelEvent, ModelInfo, validate_model_name
from registry.replays import (
    REPLAY_MARKER,
    REPLAY_NAME_LIKE,
    is_replay_name,
    replay_model_name,
    split_replay_name,
)
from registry.series import EvaluationSeries
from registry.statuses import ModelStatus
from registry.store import queries
from registry.store.db import fetch_all, json_loads
from registry.store.tables import EVENTS, NAMES, STATES, VERSIONS, VERSIONS_WITH_STATE, as_utc

if TYPE_CHECKING:
    from registry.service import ModelRegistry

CHART_LIMIT = 1000  # newest versions drawn on a name's metric chart
HISTORY_LIMIT = 200  # newest events shown on a name's timeline
LIKE_ESCAPE = "/"  # not a character of a model name


class NameSummary(BaseModel):
    """One live model name on the overview."""

    model_config = ConfigDict(protected_namespaces=(), frozen=True)

    model_name: str
    versions: int  # of the live name (a replay's versions are its own name's)
    replays: int  # rolling replays of the name that have versions
    production: ModelInfo | None
    production_since: datetime | None
    newest: ModelInfo | None
    newest_data: date | None  # the latest dataset end among the live versions


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
    """One version with its evaluation series, history and the live name's production model id."""

    model_config = ConfigDict(protected_namespaces=(), frozen=True)

    info: ModelInfo
    series: dict[str, EvaluationSeries]
    history: list[ModelEvent]
    production_id: str | None
    replay_of: str | None  # the live name when the version is a replay's window
    replay_id: str | None


class UnknownName(LookupError):
    """No model name by that name."""


class UnknownReplay(LookupError):
    """The name has no replay by that id."""

    def __init__(self, model_name: str, replay_id: str) -> None:
        super().__init__(model_name, replay_id)
        self.model_name, self.replay_id = model_name, replay_id


# -- shared pieces ---------------------------------------------------------------------------------------------

def _when(value: datetime) -> datetime:
    """A stored (non-null) timestamp as an aware UTC datetime."""
    return cast(datetime, as_utc(value))


def _events(rows: Sequence[Any]) -> list[ModelEvent]:
    return [
        ModelEvent(event_id=r.id, model_id=r.model_id, model_name=r.model_name, event=r.event,
                   from_status=r.from_status, to_status=r.to_status, actor=r.actor, reason=r.reason,
                   flow_run_id=r.flow_run_id, created_at=_when(r.created_at))
        for r in rows
    ]


def _infos(connection: Connection, query: Executable, params: dict[str, Any], registry: ModelRegistry) -> list[ModelInfo]:
    return store.read_infos(connection, query, params, registry.artifacts.location)


def _infos_in(connection: Connection, query: Executable, params: dict[str, Any], registry: ModelRegistry) -> list[ModelInfo]:
    """`_infos` for a statement with an expanding IN list (which only SQLAlchemy's execution renders)."""
    base = str(registry.artifacts.location).rstrip("/")
    return [queries._info(row, base) for row in connection.execute(query, params).all()]


def _rows(connection: Connection, query: Executable, params: dict[str, Any]) -> Sequence[Any]:
    """Rows of a statement whose columns need no SQLAlchemy type processing (psycopg directly on PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        return fetch_all(connection, query, params)  # type: ignore[arg-type]
    return connection.execute(query, params).all()


def _is_name(name: str) -> bool:
    try:
        validate_model_name(name)
    except InvalidNameError:
        return False
    return True


def _replays_like(name: str) -> str:
    """The LIKE pattern (escaped with LIKE_ESCAPE) of every replay name of `name`."""
    prefix = name + REPLAY_MARKER
    for special in (LIKE_ESCAPE, "%", "_"):
        prefix = prefix.replace(special, LIKE_ESCAPE + special)
    return prefix + "%"


# -- overview --------------------------------------------------------------------------------------------------

# Every name with its number of versions and newest data, replay names included: they are folded into their
# live name's row in Python (a count of names, not of versions).
OVERVIEW_NAMES = (select(NAMES.c.name, func.count(VERSIONS.c.id), func.max(VERSIONS.c.dataset_end))
                  .select_from(NAMES.outerjoin(VERSIONS, VERSIONS.c.model_name == NAMES.c.name))
                  .group_by(NAMES.c.name))
# The newest version of each live name and every production version, found on the narrow state rows; only
# those versions' wide rows are then read (by primary key), not every version's.
_NEWEST_LIVE_PKS = (select(func.max(STATES.c.model_pk)).where(STATES.c.model_name.not_like(REPLAY_NAME_LIKE))
                    .group_by(STATES.c.model_name))
_PRODUCTION_PKS = select(STATES.c.model_pk).where(STATES.c.status == store.PRODUCTION)
OVERVIEW_INFOS = queries._info_select().where(VERSIONS.c.id.in_(_NEWEST_LIVE_PKS.union_all(_PRODUCTION_PKS)))


def overview(registry: ModelRegistry) -> list[NameSummary]:
    """One summary per live model name, sorted by name (two statements whatever the registry's size)."""

    def read(connection: Connection) -> list[NameSummary]:
        names = _rows(connection, OVERVIEW_NAMES, {})
        infos = _infos(connection, OVERVIEW_INFOS, {}, registry)
        return _summaries(names, infos)

    return registry.db.read(read)


def _summaries(names: Sequence[Any], infos: list[ModelInfo]) -> list[NameSummary]:
    live: dict[str, tuple[int, Any]] = {}
    replays: dict[str, int] = {}
    for name, versions, newest_data in names:
        if not is_replay_name(name):
            live[name] = (versions, newest_data)
        elif versions and (split := split_replay_name(name)) is not None:
            replays[split[0]] = replays.get(split[0], 0) + 1
    production = {i.model_name: i for i in infos if i.status == ModelStatus.PRODUCTION}
    newest: dict[str, ModelInfo] = {}
    for info in infos:  # production may be the newest too, or an older version
        if info.model_name not in newest or info.created_at > newest[info.model_name].created_at:
            newest[info.model_name] = info
    summaries = []
    for name in sorted(live.keys() | replays.keys()):  # a name may have replays and no live version yet
        versions, newest_data = live.get(name, (0, None))
        prod = production.get(name)
        summaries.append(NameSummary(
            model_name=name, versions=versions, replays=replays.get(name, 0), production=prod,
            production_since=prod.updated_at if prod else None, newest=newest.get(name),
            newest_data=date.fromisoformat(newest_data) if isinstance(newest_data, str) else newest_data,
        ))
    return summaries


# -- a model name ----------------------------------------------------------------------------------------------
# `name` is the live name, `target` the name whose versions are shown: the live name, or a replay's name.

@lru_cache(maxsize=128)
def _page_statements(statuses: tuple[str, ...], n_metrics: int, limit: int) -> tuple[Executable, Executable]:
    where = [STATES.c.model_name == bindparam("target"),
             *queries._state_filters(STATES.c.status, VERSIONS.c.id, statuses, n_metrics, 0)]
    known_name = select(NAMES.c.name).where(NAMES.c.name == bindparam("name")).scalar_subquery()
    known_target = select(NAMES.c.name).where(NAMES.c.name == bindparam("target")).scalar_subquery()
    total = select(func.count()).select_from(VERSIONS_WITH_STATE).where(*where).scalar_subquery()
    count = select(known_name, known_target, total)
    page = (queries._info_select().where(*where).order_by(VERSIONS.c.id.desc())
            .limit(store.row_limit(limit)).offset(bindparam("offset", type_=Integer)))
    return count, page


_newest = (select(VERSIONS.c.id, VERSIONS.c.version, VERSIONS.c.created_at, STATES.c.status, VERSIONS.c.metrics)
           .select_from(VERSIONS_WITH_STATE).where(STATES.c.model_name == bindparam("target"))
           .order_by(VERSIONS.c.id.desc()).limit(store.row_limit(CHART_LIMIT)).subquery("newest"))
CHART = select(_newest.c.version, _newest.c.created_at, _newest.c.status, _newest.c.metrics).order_by(_newest.c.id)

_EVENT_COLUMNS = (EVENTS.c.id, EVENTS.c.model_id, EVENTS.c.model_name, EVENTS.c.event, EVENTS.c.from_status,
                  EVENTS.c.to_status, EVENTS.c.actor, EVENTS.c.reason, EVENTS.c.flow_run_id, EVENTS.c.created_at)
NAME_HISTORY = (select(*_EVENT_COLUMNS).where(EVENTS.c.model_name == bindparam("target"))
                .order_by(EVENTS.c.id.desc()).limit(store.row_limit(HISTORY_LIMIT)))
PRODUCTION_EVENTS = (select(*_EVENT_COLUMNS).where(
    EVENTS.c.model_name == bindparam("name"),
    or_(EVENTS.c.to_status == store.PRODUCTION, EVENTS.c.from_status == store.PRODUCTION),
    EVENTS.c.to_status.is_distinct_from(EVENTS.c.from_status),
).order_by(EVENTS.c.id))
# The replay names come from the small names table; their versions through the versions' name index.
_replay_names = select(NAMES.c.name).where(NAMES.c.name.like(bindparam("replays_like"), escape=LIKE_ESCAPE))
NAME_REPLAYS = (select(VERSIONS.c.model_name, func.count(), func.min(VERSIONS.c.created_at),
                       func.max(VERSIONS.c.created_at))
                .where(VERSIONS.c.model_name.in_(_replay_names))
                .group_by(VERSIONS.c.model_name).order_by(func.min(VERSIONS.c.id)))


def _replays(rows: Sequence[Any], name: str) -> list[ReplaySummary]:
    found = []
    for replay_name, versions, first, last in rows:
        split = split_replay_name(replay_name)
        if split is not None and split[0] == name:
            found.append(ReplaySummary(replay_id=split[1], replay_name=replay_name, versions=versions,
                                       first_registered=_when(first), last_registered=_when(last)))
    return found


def name_page(
    registry: ModelRegistry, name: str, *, statuses: Sequence[ModelStatus] = (),
    min_metrics: dict[str, float] | None = None, replay_id: str | None = None, limit: int = 50, offset: int = 0,
) -> NamePage:
    """A page of `name`'s live versions, or of its replay `replay_id`'s (newest first, filtered like
    `qmp models list`), with the chart's points, the history and the name's replays.

    A replay's own name stands for its live name and replay id. UnknownName when `name` has neither a version
    nor a replay; UnknownReplay when `replay_id` is not one of its replays.
    """
    if replay_id is None and (split := split_replay_name(name)) is not None:
        name, replay_id = split
    if not _is_name(name) or is_replay_name(name):
        raise UnknownName(name)
    target = name
    if replay_id is not None:
        try:
            target = replay_model_name(name, replay_id)
        except InvalidNameError:
            raise UnknownReplay(name, replay_id) from None
    minimum = list((min_metrics or {}).items())
    count, page = _page_statements(tuple(sorted(s.value for s in statuses)), len(minimum), limit)
    params: dict[str, Any] = {"name": name, "target": target, "offset": offset}
    for i, (metric, value) in enumerate(minimum):
        params[f"metric_{i}"], params[f"metric_min_{i}"] = metric, value

    def read(connection: Connection) -> NamePage:
        known_name, known_target, total = _rows(connection, count, params)[0]
        replays = _replays(_rows(connection, NAME_REPLAYS, {"replays_like": _replays_like(name)}), name)
        if known_name is None and not replays:
            raise UnknownName(name)
        if replay_id is not None and known_target is None:
            raise UnknownReplay(name, replay_id)
        versions = _infos(connection, page, params, registry)
        chart = [ChartPoint(version=r[0], created_at=_when(r[1]), status=r[2], metrics=_json(r[3]) or {})
                 for r in _rows(connection, CHART, {"target": target})]
        history = _events(list(reversed(connection.execute(NAME_HISTORY, {"target": target}).all())))
        production = [] if replay_id is not None else _events(connection.execute(PRODUCTION_EVENTS, {"name": name}).all())
        return NamePage(model_name=name, replay_id=replay_id, total=total, versions=versions, chart=chart,
                        history=history, production_events=production, replays=replays)

    return registry.db.read(read)


def _json(value: Any) -> Any:
    return json_loads(value) if isinstance(value, (str, bytes)) else value


# -- one version, two versions ---------------------------------------------------------------------------------

INFO_BY_NAME_VERSION = queries._info_select().where(VERSIONS.c.model_name == bindparam("name"),
                                                  VERSIONS.c.version == bindparam("version"))
INFOS_BY_IDS = queries._info_select().where(VERSIONS.c.model_id.in_(bindparam("model_ids", expanding=True)))
MODEL_HISTORY = select(*_EVENT_COLUMNS).where(EVENTS.c.model_id == bindparam("model_id")).order_by(EVENTS.c.id)
PRODUCTION_ID = select(VERSIONS.c.model_id).select_from(VERSIONS_WITH_STATE).where(
    STATES.c.model_name == bindparam("name"), STATES.c.status == store.PRODUCTION)
NAME_EXISTS = select(NAMES.c.name).where(NAMES.c.name == bindparam("name"))


def version_page(registry: ModelRegistry, name: str, version: str) -> VersionPage:
    """Version `version` of `name` (a live name or a replay's) with its series, its history and the live
    name's production model; UnknownName when the name is unknown, LookupError (with the version) when only
    the version is."""
    if "\x00" in version or not _is_name(name):
        raise UnknownName(name)
    replay = split_replay_name(name)
    live_name = replay[0] if replay else name

    def read(connection: Connection) -> VersionPage:
        infos = _infos(connection, INFO_BY_NAME_VERSION, {"name": name, "version": version}, registry)
        if not infos:
            if connection.execute(NAME_EXISTS, {"name": name}).first() is None:
                raise UnknownName(name)
            raise LookupError(version)
        info = infos[0]
        series = store.read_series(connection, [info.model_id])[info.model_id]
        history = _events(connection.execute(MODEL_HISTORY, {"model_id": info.model_id}).all())
        production = connection.execute(PRODUCTION_ID, {"name": live_name}).scalar()
        return VersionPage(info=info, history=history, production_id=production,
                           replay_of=replay[0] if replay else None, replay_id=replay[1] if replay else None,
                           series={k: EvaluationSeries.model_validate(v) for k, v in series.items()})

    return registry.db.read(read)


def versions_with_series(
    registry: ModelRegistry, model_ids: list[str]
) -> tuple[dict[str, ModelInfo], dict[str, dict[str, EvaluationSeries]]]:
    """The infos and series of `model_ids` (missing ids are absent from the first dict), two statements."""
    ids = [m for m in model_ids if "\x00" not in m]

    def read(connection: Connection) -> tuple[dict[str, ModelInfo], dict[str, dict[str, EvaluationSeries]]]:
        if not ids:
            return {}, {}
        infos = {i.model_id: i for i in _infos_in(connection, INFOS_BY_IDS, {"model_ids": ids}, registry)}
        series = store.read_series(connection, ids)
        return infos, {m: {k: EvaluationSeries.model_validate(v) for k, v in s.items()} for m, s in series.items()}

    return registry.db.read(read)


PRODUCTION_BY_NAMES = queries._info_select().where(STATES.c.status == store.PRODUCTION,
                                                 STATES.c.model_name.in_(bindparam("names", expanding=True)))


def production_infos(registry: ModelRegistry, names: list[str]) -> dict[str, ModelInfo]:
    """The production model of each of `names` that has one (one statement)."""
    if not names:
        return {}
    infos = registry.db.read(lambda connection: _infos_in(connection, PRODUCTION_BY_NAMES, {"names": names}, registry))
    return {i.model_name: i for i in infos}


__all__ = [
    "CHART_LIMIT", "HISTORY_LIMIT", "ChartPoint", "NamePage", "NameSummary", "ReplaySummary", "UnknownName",
    "UnknownReplay", "VersionPage", "name_page", "overview", "production_infos", "version_page",
    "versions_with_series",
]
