"""Read-only views of the registry for browsing (the web page and its JSON twin): a constant number of
statements per view, whatever the number of names and versions.

Each view runs its statements on one connection (`Database.read`); none issues a statement per name or
per version. Versions of a rolling replay carry the tag `REPLAY_TAG` and are listed per replay, apart from
the live model's versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    Connection,
    Executable,
    Integer,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
)

from registry import store
from registry.db import fetch_all, json_loads
from registry.models import ModelEvent, ModelInfo
from registry.series import EvaluationSeries
from registry.statuses import ModelStatus
from registry.store import queries
from registry.tables import EVENTS, NAMES, STATES, TAGS, VERSIONS, VERSIONS_WITH_STATE, as_utc

if TYPE_CHECKING:
    from registry.registry import ModelRegistry

REPLAY_TAG = "replay_id"  # the tag a rolling replay gives each of its window's versions
CHART_LIMIT = 1000  # newest versions drawn on a name's metric chart
HISTORY_LIMIT = 200  # newest events shown on a name's timeline


class NameSummary(BaseModel):
    """One model name on the overview."""

    model_config = ConfigDict(protected_namespaces=(), frozen=True)

    model_name: str
    versions: int  # live versions (not of a replay)
    replays: int  # distinct rolling replays
    production: ModelInfo | None
    production_since: datetime | None
    newest: ModelInfo | None
    newest_data: date | None  # the latest dataset end among the live versions
    pending_approvals: int


class PendingApproval(BaseModel):
    """A candidate waiting for a person's decision, and who asked for it."""

    model_config = ConfigDict(protected_namespaces=(), frozen=True)

    candidate: ModelInfo
    requested_at: datetime
    requested_by: str
    reason: str | None
    flow_run_id: str | None


class ChartPoint(BaseModel):
    """One version on a name's metric chart."""

    model_config = ConfigDict(frozen=True)

    version: str
    created_at: datetime
    status: ModelStatus
    metrics: dict[str, float]


class ReplaySummary(BaseModel):
    """A rolling replay of a name: its versions are listed on their own."""

    model_config = ConfigDict(frozen=True)

    replay_id: str
    versions: int
    first_registered: datetime
    last_registered: datetime


class NamePage(BaseModel):
    """A model name: a page of its versions, the chart's points, the history and the production periods."""

    model_config = ConfigDict(protected_namespaces=(), frozen=True)

    model_name: str
    replay_id: str | None
    total: int  # versions matching the filter
    versions: list[ModelInfo]
    chart: list[ChartPoint]  # oldest first, at most CHART_LIMIT
    history: list[ModelEvent]  # oldest first, the newest HISTORY_LIMIT
    production_events: list[ModelEvent]  # every event into or out of production, oldest first
    replays: list[ReplaySummary]
    pending: list[PendingApproval]


class VersionPage(BaseModel):
    """One version with its evaluation series, history and the name's production model id."""

    model_config = ConfigDict(protected_namespaces=(), frozen=True)

    info: ModelInfo
    series: dict[str, EvaluationSeries]
    history: list[ModelEvent]
    production_id: str | None


class UnknownName(LookupError):
    """No model name by that name."""


# -- shared pieces ---------------------------------------------------------------------------------------------

_replay = select(TAGS.c.model_pk).where(TAGS.c.key == literal_column(f"'{REPLAY_TAG}'"))


def _not_replay(pk: Any) -> Any:
    return ~exists(_replay.where(TAGS.c.model_pk == pk))


def _in_replay(pk: Any) -> Any:
    return exists(_replay.where(TAGS.c.model_pk == pk, TAGS.c.value == bindparam("replay_id")))


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


def _info_columns() -> list[Any]:
    """The columns `store._info` builds a ModelInfo from, in its order."""
    return [VERSIONS.c[name] if name in VERSIONS.c else STATES.c[name] for name in queries._INFO_COLUMNS]


def _infos(connection: Connection, query: Executable, params: dict[str, Any], registry: ModelRegistry) -> list[ModelInfo]:
    return store.read_infos(connection, query, params, registry.artifacts.location)


def _infos_in(connection: Connection, query: Executable, params: dict[str, Any], registry: ModelRegistry) -> list[ModelInfo]:
    """`_infos` for a statement with an expanding IN list (which only SQLAlchemy's execution renders)."""
    base = str(registry.artifacts.location).rstrip("/")
    return [queries._info(row, base) for row in connection.execute(query, params).all()]


# -- pending approvals -----------------------------------------------------------------------------------------
# The approval_requested events that are still the latest event of their model: any later event (a decision,
# a time-out, a promotion, an archive) answers the request.

def _pending_statement(by_name: bool) -> Executable:
    e = EVENTS.c
    requested = select(e.model_id).where(e.event == literal_column("'approval_requested'"))
    if by_name:
        requested = requested.where(e.model_name == bindparam("name"))
    latest = (select(e.model_id, func.max(e.id).label("last_id")).where(e.model_id.in_(requested))
              .group_by(e.model_id).subquery("latest"))
    request = EVENTS.alias("request")
    joined = (VERSIONS_WITH_STATE.join(latest, latest.c.model_id == VERSIONS.c.model_id)
              .join(request, request.c.id == latest.c.last_id))
    return (
        select(*_info_columns(), request.c.created_at.label("requested_at"), request.c.actor.label("requested_by"),
               request.c.reason.label("request_reason"), request.c.flow_run_id.label("request_flow_run"))
        .select_from(joined)
        .where(request.c.event == literal_column("'approval_requested'"),
               STATES.c.status.not_in([store.status_literal(ModelStatus.PRODUCTION),
                                       store.status_literal(ModelStatus.ARCHIVED)]))
        .order_by(request.c.id)
    )


PENDING_ALL = _pending_statement(by_name=False)
PENDING_BY_NAME = _pending_statement(by_name=True)
_INFO_WIDTH = len(queries._INFO_COLUMNS)


def _pending(connection: Connection, registry: ModelRegistry, name: str | None) -> list[PendingApproval]:
    query, params = (PENDING_ALL, {}) if name is None else (PENDING_BY_NAME, {"name": name})
    rows = _rows(connection, query, params)
    base = str(registry.artifacts.location).rstrip("/")
    return [
        PendingApproval(candidate=queries._info(row[:_INFO_WIDTH], base), requested_at=_when(row[_INFO_WIDTH]),
                        requested_by=row[_INFO_WIDTH + 1], reason=row[_INFO_WIDTH + 2],
                        flow_run_id=row[_INFO_WIDTH + 3])
        for row in rows
    ]


def pending_approvals(registry: ModelRegistry, model_name: str | None = None) -> list[PendingApproval]:
    """Candidates waiting for a person's decision (of one name, or of all), oldest request first."""
    return registry.db.read(lambda connection: _pending(connection, registry, model_name))


def _rows(connection: Connection, query: Executable, params: dict[str, Any]) -> Sequence[Any]:
    """Rows of a statement whose columns need no SQLAlchemy type processing (psycopg directly on PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        return fetch_all(connection, query, params)  # type: ignore[arg-type]
    return connection.execute(query, params).all()


# -- overview --------------------------------------------------------------------------------------------------

def _overview_statements() -> tuple[Executable, Executable]:
    v, t = VERSIONS.c, TAGS.c
    live = (select(v.model_name, func.count().label("versions"), func.max(v.id).label("newest_pk"),
                   func.max(v.dataset_end).label("newest_data"))
            .where(_not_replay(v.id)).group_by(v.model_name).subquery("live"))
    replays = (select(VERSIONS.c.model_name, func.count(func.distinct(t.value)).label("replays"))
               .join_from(TAGS, VERSIONS, VERSIONS.c.id == t.model_pk)
               .where(t.key == literal_column(f"'{REPLAY_TAG}'")).group_by(VERSIONS.c.model_name).subquery("replays"))
    names = (select(NAMES.c.name, func.coalesce(live.c.versions, 0), func.coalesce(replays.c.replays, 0),
                    live.c.newest_data)
             .outerjoin(live, live.c.model_name == NAMES.c.name)
             .outerjoin(replays, replays.c.model_name == NAMES.c.name)
             .order_by(NAMES.c.name))
    newest_pks = select(func.max(v.id)).where(_not_replay(v.id)).group_by(v.model_name)
    infos = queries._info_select().where(or_(STATES.c.status == store.PRODUCTION, VERSIONS.c.id.in_(newest_pks)))
    return names, infos


OVERVIEW_NAMES, OVERVIEW_INFOS = _overview_statements()


def overview(registry: ModelRegistry) -> list[NameSummary]:
    """One summary per model name, sorted by name (four statements whatever the registry's size)."""

    def read(connection: Connection) -> list[NameSummary]:
        names = _rows(connection, OVERVIEW_NAMES, {})
        infos = _infos(connection, OVERVIEW_INFOS, {}, registry)
        pending = _pending(connection, registry, None)
        return _summaries(names, infos, pending)

    return registry.db.read(read)


def _summaries(names: Sequence[Any], infos: list[ModelInfo], pending: list[PendingApproval]) -> list[NameSummary]:
    production = {i.model_name: i for i in infos if i.status == ModelStatus.PRODUCTION}
    newest: dict[str, ModelInfo] = {}
    for info in infos:  # production may be the newest too, or an older version
        later = info.model_name not in newest or info.created_at > newest[info.model_name].created_at
        if later and info.tags.get(REPLAY_TAG) is None:
            newest[info.model_name] = info
    waiting: dict[str, int] = {}
    for item in pending:
        waiting[item.candidate.model_name] = waiting.get(item.candidate.model_name, 0) + 1
    summaries = []
    for name, versions, replays, newest_data in names:
        prod = production.get(name)
        summaries.append(NameSummary(
            model_name=name, versions=versions, replays=replays, production=prod,
            production_since=prod.updated_at if prod else None, newest=newest.get(name),
            newest_data=date.fromisoformat(newest_data) if isinstance(newest_data, str) else newest_data,
            pending_approvals=waiting.get(name, 0),
        ))
    return summaries


# -- a model name ----------------------------------------------------------------------------------------------

def _name_filter(statuses: tuple[str, ...], n_metrics: int, replay: bool) -> list[Any]:
    where = [STATES.c.model_name == bindparam("name"),
             *queries._state_filters(STATES.c.status, VERSIONS.c.id, statuses, n_metrics, 0)]
    where.append(_in_replay(VERSIONS.c.id) if replay else _not_replay(VERSIONS.c.id))
    return where


@lru_cache(maxsize=128)
def _page_statements(statuses: tuple[str, ...], n_metrics: int, replay: bool, limit: int) -> tuple[Executable, Executable]:
    where = _name_filter(statuses, n_metrics, replay)
    known = select(NAMES.c.name).where(NAMES.c.name == bindparam("name")).scalar_subquery()
    count = select(known, select(func.count()).select_from(VERSIONS_WITH_STATE).where(*where).scalar_subquery())
    page = (queries._info_select().where(*where).order_by(VERSIONS.c.id.desc())
            .limit(store.row_limit(limit)).offset(bindparam("offset", type_=Integer)))
    return count, page


@lru_cache(maxsize=4)
def _chart_statement(replay: bool) -> Executable:
    where = [STATES.c.model_name == bindparam("name"),
             _in_replay(VERSIONS.c.id) if replay else _not_replay(VERSIONS.c.id)]
    newest = (select(VERSIONS.c.id, VERSIONS.c.version, VERSIONS.c.created_at, STATES.c.status, VERSIONS.c.metrics)
              .select_from(VERSIONS_WITH_STATE).where(*where).order_by(VERSIONS.c.id.desc())
              .limit(store.row_limit(CHART_LIMIT)).subquery("newest"))
    return select(newest.c.version, newest.c.created_at, newest.c.status, newest.c.metrics).order_by(newest.c.id)


_EVENT_COLUMNS = (EVENTS.c.id, EVENTS.c.model_id, EVENTS.c.model_name, EVENTS.c.event, EVENTS.c.from_status,
                  EVENTS.c.to_status, EVENTS.c.actor, EVENTS.c.reason, EVENTS.c.flow_run_id, EVENTS.c.created_at)
NAME_HISTORY = (select(*_EVENT_COLUMNS).where(EVENTS.c.model_name == bindparam("name"))
                .order_by(EVENTS.c.id.desc()).limit(store.row_limit(HISTORY_LIMIT)))
PRODUCTION_EVENTS = (select(*_EVENT_COLUMNS).where(
    EVENTS.c.model_name == bindparam("name"),
    or_(EVENTS.c.to_status == store.PRODUCTION, EVENTS.c.from_status == store.PRODUCTION),
    EVENTS.c.to_status.is_distinct_from(EVENTS.c.from_status),
).order_by(EVENTS.c.id))
NAME_REPLAYS = (select(TAGS.c.value, func.count(), func.min(VERSIONS.c.created_at), func.max(VERSIONS.c.created_at))
                .join_from(TAGS, VERSIONS, VERSIONS.c.id == TAGS.c.model_pk)
                .where(VERSIONS.c.model_name == bindparam("name"), TAGS.c.key == literal_column(f"'{REPLAY_TAG}'"))
                .group_by(TAGS.c.value).order_by(func.min(VERSIONS.c.id)))


def name_page(
    registry: ModelRegistry, name: str, *, statuses: Sequence[ModelStatus] = (),
    min_metrics: dict[str, float] | None = None, replay_id: str | None = None, limit: int = 50, offset: int = 0,
) -> NamePage:
    """A page of `name`'s versions (newest first, filtered like `qmp models list`) with the chart's points, the
    history and the replays; UnknownName when no version of that name was ever registered."""
    minimum = list((min_metrics or {}).items())
    count, page = _page_statements(tuple(sorted(s.value for s in statuses)), len(minimum), replay_id is not None, limit)
    params: dict[str, Any] = {"name": name, "offset": offset}
    if replay_id is not None:
        params["replay_id"] = replay_id
    for i, (metric, value) in enumerate(minimum):
        params[f"metric_{i}"], params[f"metric_min_{i}"] = metric, value
    if "\x00" in name or "\x00" in (replay_id or ""):
        raise UnknownName(name)

    def read(connection: Connection) -> NamePage:
        known, total = _rows(connection, count, params)[0]
        if known is None:
            raise UnknownName(name)
        versions = _infos(connection, page, params, registry)
        chart_params = {"name": name, **({"replay_id": replay_id} if replay_id is not None else {})}
        chart = [ChartPoint(version=r[0], created_at=_when(r[1]), status=r[2], metrics=_json(r[3]) or {})
                 for r in _rows(connection, _chart_statement(replay_id is not None), chart_params)]
        history = _events(list(reversed(connection.execute(NAME_HISTORY, {"name": name}).all())))
        production = _events(connection.execute(PRODUCTION_EVENTS, {"name": name}).all())
        replays = [ReplaySummary(replay_id=r[0], versions=r[1], first_registered=_when(r[2]),
                                 last_registered=_when(r[3]))
                   for r in connection.execute(NAME_REPLAYS, {"name": name}).all()]
        pending = _pending(connection, registry, name)
        return NamePage(model_name=name, replay_id=replay_id, total=total, versions=versions, chart=chart,
                        history=history, production_events=production, replays=replays, pending=pending)

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
    """Version `version` of `name` with its series and history; UnknownName when the name is unknown,
    LookupError (with the version) when only the version is."""
    if "\x00" in name + version:
        raise UnknownName(name)

    def read(connection: Connection) -> VersionPage:
        infos = _infos(connection, INFO_BY_NAME_VERSION, {"name": name, "version": version}, registry)
        if not infos:
            if connection.execute(NAME_EXISTS, {"name": name}).first() is None:
                raise UnknownName(name)
            raise LookupError(version)
        info = infos[0]
        series = store.read_series(connection, [info.model_id])[info.model_id]
        history = _events(connection.execute(MODEL_HISTORY, {"model_id": info.model_id}).all())
        production = connection.execute(PRODUCTION_ID, {"name": name}).scalar()
        return VersionPage(info=info, history=history, production_id=production,
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


def production_infos(registry: ModelRegistry, names: list[str]) -> dict[str, ModelInfo]:
    """The production model of each of `names` that has one (one statement)."""
    if not names:
        return {}
    query = queries._info_select().where(STATES.c.status == store.PRODUCTION,
                                       STATES.c.model_name.in_(bindparam("names", expanding=True)))
    infos = registry.db.read(lambda connection: _infos_in(connection, query, {"names": names}, registry))
    return {i.model_name: i for i in infos}


__all__ = [
    "CHART_LIMIT", "HISTORY_LIMIT", "REPLAY_TAG", "ChartPoint", "NamePage", "NameSummary", "PendingApproval",
    "ReplaySummary", "UnknownName", "VersionPage", "name_page", "overview", "pending_approvals",
    "production_infos", "version_page", "versions_with_series",
]
