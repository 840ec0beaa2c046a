"""The registry web page's reads (`registry.views.browse`): cached statements, and functions that run one of
them on the view's connection and return plain values (ModelInfo, ModelEvent, tuples).

None issues a statement per name or per version. Timestamps come back as aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Connection, Executable, Integer, bindparam, func, literal, or_, select, true

from registry.models import ModelEvent, ModelInfo
from registry.replays import REPLAY_MARKER, REPLAY_NAME_LIKE
from registry.series import DAILY_IC
from registry.store.common import PRODUCTION, row_limit
from registry.store.db import fetch_all, json_loads
from registry.store.queries import info_from_row, info_select, read_infos, state_filters
from registry.store.tables import (
    DATA_VERSIONS,
    EVENTS,
    LIVE_METRICS,
    MONITOR_SETTINGS,
    NAMES,
    SERIES,
    STATES,
    VERSIONS,
    VERSIONS_WITH_STATE,
    as_utc,
)

CHART_LIMIT = 1000  # newest versions drawn on a name's metric chart
HISTORY_LIMIT = 200  # newest events shown on a name's timeline
LIKE_ESCAPE = "/"  # not a character of a model name

# (version, created_at, status, metrics) of one version on a name's chart.
ChartRow = tuple[str, datetime, str, dict[str, float]]
# (replay name, versions, first registered, last registered) of one replay name.
ReplayRow = tuple[str, int, datetime, datetime]


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


def _infos_in(connection: Connection, query: Executable, params: dict[str, Any], root: str) -> list[ModelInfo]:
    """`read_infos` for a statement with an expanding IN list (which only SQLAlchemy's execution renders)."""
    base = str(root).rstrip("/")
    return [info_from_row(row, base) for row in connection.execute(query, params).all()]


def _rows(connection: Connection, query: Executable, params: dict[str, Any]) -> Sequence[Any]:
    """Rows of a statement whose columns need no SQLAlchemy type processing (psycopg directly on PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        return fetch_all(connection, query, params)  # type: ignore[arg-type]
    return connection.execute(query, params).all()


def _json(value: Any) -> Any:
    return json_loads(value) if isinstance(value, (str, bytes)) else value


# -- overview --------------------------------------------------------------------------------------------------

# Every name with its number of versions, replay names included: the view folds them into their live name's
# row (a count of names, not of versions).
OVERVIEW_NAMES = (select(NAMES.c.name, func.count(VERSIONS.c.id))
                  .select_from(NAMES.outerjoin(VERSIONS, VERSIONS.c.model_name == NAMES.c.name))
                  .group_by(NAMES.c.name))
# The newest version of each live name and every production version, found on the narrow state rows; only
# those versions' wide rows are then read (by primary key), not every version's.
_NEWEST_LIVE_PKS = (select(func.max(STATES.c.model_pk)).where(STATES.c.model_name.not_like(REPLAY_NAME_LIKE))
                    .group_by(STATES.c.model_name))
_PRODUCTION_PKS = select(STATES.c.model_pk).where(STATES.c.status == PRODUCTION)
OVERVIEW_INFOS = info_select().where(VERSIONS.c.id.in_(_NEWEST_LIVE_PKS.union_all(_PRODUCTION_PKS)))


def name_counts(connection: Connection) -> list[tuple[str, int]]:
    """Every name (replay names included) with its number of versions."""
    return [(str(name), int(versions)) for name, versions in _rows(connection, OVERVIEW_NAMES, {})]


def newest_and_production_infos(connection: Connection, root: str) -> list[ModelInfo]:
    """The newest version of each live name and every production version."""
    return read_infos(connection, OVERVIEW_INFOS, {}, root)


# The live column and the drift badge (`registry.views.live_summary`). Stored drift rules are few (most names
# use the default). A name's newest live days are read on the live table's primary key (model_name,
# trading_date), per name with a production model: on PostgreSQL a LATERAL subquery (a join would have it hash
# every live day), on SQLite the day `days` places back from the newest, then the days since. Filtering on the
# production model's id there would make PostgreSQL read all of the name's days.
DRIFT_RULES = select(MONITOR_SETTINGS.c.model_name, MONITOR_SETTINGS.c.rule)
_LIVE = LIVE_METRICS.c
_PRODUCTION_NAMES = select(STATES.c.model_name).where(STATES.c.status == PRODUCTION).subquery("production")


@lru_cache(maxsize=16)
def _newest_live_days(dialect: str, days: int) -> Executable:
    production = _PRODUCTION_NAMES.c.model_name
    if dialect == "postgresql":
        newest = (select(_LIVE.model_id, _LIVE.ic, _LIVE.trading_date).where(_LIVE.model_name == production)
                  .order_by(_LIVE.trading_date.desc()).limit(row_limit(days)).lateral("newest"))
        return (select(production, newest.c.trading_date, newest.c.model_id, newest.c.ic)
                .select_from(_PRODUCTION_NAMES.join(newest, true())))
    earlier = LIVE_METRICS.alias("earlier")
    first_day = (select(earlier.c.trading_date).where(earlier.c.model_name == production)
                 .order_by(earlier.c.trading_date.desc()).limit(1).offset(row_limit(days - 1)).scalar_subquery())
    return (select(_LIVE.model_name, _LIVE.trading_date, _LIVE.model_id, _LIVE.ic)
            .join_from(LIVE_METRICS, _PRODUCTION_NAMES, _LIVE.model_name == production)
            .where(_LIVE.trading_date >= func.coalesce(first_day, literal(date(1900, 1, 1)))))


# Every live day of some models (a production model whose days are not all among its name's newest).
LIVE_DAYS_OF_MODELS = (select(_LIVE.model_name, _LIVE.trading_date, _LIVE.model_id, _LIVE.ic)
                       .where(_LIVE.model_name.in_(bindparam("names", expanding=True)),
                              _LIVE.model_id.in_(bindparam("model_ids", expanding=True))))
DAILY_ICS = (select(VERSIONS.c.model_id, SERIES.c.points)
             .join_from(SERIES, VERSIONS, SERIES.c.model_pk == VERSIONS.c.id)
             .where(SERIES.c.name == DAILY_IC, VERSIONS.c.model_id.in_(bindparam("model_ids", expanding=True))))

# (model id, IC or None) of one live day, oldest first per name.
LiveRow = tuple[str, float | None]


def drift_rules(connection: Connection) -> dict[str, dict[str, Any]]:
    """The stored drift rule settings of every name that has them."""
    return {str(name): dict(_json(rule) or {}) for name, rule in connection.execute(DRIFT_RULES).all()}


def _live_rows(rows: Sequence[Any]) -> dict[str, list[LiveRow]]:
    """(name, trading date, model id, IC) rows in any order, by name and oldest first."""
    by_name: dict[str, list[tuple[Any, str, float | None]]] = {}
    for name, day, model_id, ic in rows:
        by_name.setdefault(str(name), []).append((day, str(model_id), None if ic is None else float(ic)))
    return {name: [(model_id, ic) for _, model_id, ic in sorted(days)] for name, days in by_name.items()}


def newest_live_days(connection: Connection, days: int) -> dict[str, list[LiveRow]]:
    """The newest `days` live days of every name that has a production model (whichever model made them)."""
    return _live_rows(_rows(connection, _newest_live_days(connection.dialect.name, max(1, days)), {}))


def live_days_of_models(connection: Connection, models: dict[str, str]) -> dict[str, list[LiveRow]]:
    """Every live day of each name in `models` made by its model there (name -> model id)."""
    if not models:
        return {}
    rows = connection.execute(LIVE_DAYS_OF_MODELS, {"names": list(models), "model_ids": list(models.values())})
    return _live_rows([row for row in rows.all() if models.get(row[0]) == row[2]])


def daily_ics(connection: Connection, model_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The `daily_ic` series points ({"dates", "values"}) of `model_ids` that have one, by model id."""
    if not model_ids:
        return {}
    return {str(model_id): _json(points)
            for model_id, points in connection.execute(DAILY_ICS, {"model_ids": model_ids}).all()}


# -- a model name ----------------------------------------------------------------------------------------------
# `name` is the live name, `target` the name whose versions are shown: the live name, or a replay's name.

@lru_cache(maxsize=128)
def _page_statements(statuses: tuple[str, ...], n_metrics: int, limit: int) -> tuple[Executable, Executable]:
    where = [STATES.c.model_name == bindparam("target"),
             *state_filters(STATES.c.status, VERSIONS.c.id, statuses, n_metrics, 0)]
    known_name = select(NAMES.c.name).where(NAMES.c.name == bindparam("name")).scalar_subquery()
    known_target = select(NAMES.c.name).where(NAMES.c.name == bindparam("target")).scalar_subquery()
    total = select(func.count()).select_from(VERSIONS_WITH_STATE).where(*where).scalar_subquery()
    count = select(known_name, known_target, total)
    page = (info_select().where(*where).order_by(VERSIONS.c.id.desc())
            .limit(row_limit(limit)).offset(bindparam("offset", type_=Integer)))
    return count, page


class VersionsQuery:
    """A page of the versions of `target` (a live name, or a replay's name of the live name `name`), filtered
    on statuses (values, sorted) and metric minimums."""

    def __init__(self, name: str, target: str, statuses: tuple[str, ...], min_metrics: dict[str, float],
                 limit: int, offset: int) -> None:
        minimum = list(min_metrics.items())
        self.count, self.page = _page_statements(statuses, len(minimum), limit)
        self.params: dict[str, Any] = {"name": name, "target": target, "offset": offset}
        for i, (metric, value) in enumerate(minimum):
            self.params[f"metric_{i}"], self.params[f"metric_min_{i}"] = metric, value


def page_counts(connection: Connection, query: VersionsQuery) -> tuple[bool, bool, int]:
    """Whether the live name and the target name are known, and how many versions match the filter."""
    known_name, known_target, total = _rows(connection, query.count, query.params)[0]
    return known_name is not None, known_target is not None, int(total)


def page_versions(connection: Connection, query: VersionsQuery, root: str) -> list[ModelInfo]:
    """The page's versions, newest first."""
    return read_infos(connection, query.page, query.params, root)


_newest = (select(VERSIONS.c.id, VERSIONS.c.version, VERSIONS.c.created_at, STATES.c.status, VERSIONS.c.metrics)
           .select_from(VERSIONS_WITH_STATE).where(STATES.c.model_name == bindparam("target"))
           .order_by(VERSIONS.c.id.desc()).limit(row_limit(CHART_LIMIT)).subquery("newest"))
CHART = select(_newest.c.version, _newest.c.created_at, _newest.c.status, _newest.c.metrics).order_by(_newest.c.id)

_EVENT_COLUMNS = (EVENTS.c.id, EVENTS.c.model_id, EVENTS.c.model_name, EVENTS.c.event, EVENTS.c.from_status,
                  EVENTS.c.to_status, EVENTS.c.actor, EVENTS.c.reason, EVENTS.c.flow_run_id, EVENTS.c.created_at)
NAME_HISTORY = (select(*_EVENT_COLUMNS).where(EVENTS.c.model_name == bindparam("target"))
                .order_by(EVENTS.c.id.desc()).limit(row_limit(HISTORY_LIMIT)))
PRODUCTION_EVENTS = (select(*_EVENT_COLUMNS).where(
    EVENTS.c.model_name == bindparam("name"),
    or_(EVENTS.c.to_status == PRODUCTION, EVENTS.c.from_status == PRODUCTION),
    EVENTS.c.to_status.is_distinct_from(EVENTS.c.from_status),
).order_by(EVENTS.c.id))
# The replay names come from the small names table; their versions through the versions' name index.
_replay_names = select(NAMES.c.name).where(NAMES.c.name.like(bindparam("replays_like"), escape=LIKE_ESCAPE))
NAME_REPLAYS = (select(VERSIONS.c.model_name, func.count(), func.min(VERSIONS.c.created_at),
                       func.max(VERSIONS.c.created_at))
                .where(VERSIONS.c.model_name.in_(_replay_names))
                .group_by(VERSIONS.c.model_name).order_by(func.min(VERSIONS.c.id)))


def _replays_like(name: str) -> str:
    """The LIKE pattern (escaped with LIKE_ESCAPE) of every replay name of `name`."""
    prefix = name + REPLAY_MARKER
    for special in (LIKE_ESCAPE, "%", "_"):
        prefix = prefix.replace(special, LIKE_ESCAPE + special)
    return prefix + "%"


def chart_rows(connection: Connection, target: str) -> list[ChartRow]:
    """The newest CHART_LIMIT versions of `target`, oldest first."""
    return [(r[0], _when(r[1]), r[2], _json(r[3]) or {}) for r in _rows(connection, CHART, {"target": target})]


def name_history(connection: Connection, target: str) -> list[ModelEvent]:
    """The newest HISTORY_LIMIT events of `target`, oldest first."""
    return _events(list(reversed(connection.execute(NAME_HISTORY, {"target": target}).all())))


def production_events(connection: Connection, name: str) -> list[ModelEvent]:
    """Every event of `name` into or out of production, oldest first."""
    return _events(connection.execute(PRODUCTION_EVENTS, {"name": name}).all())


def replay_rows(connection: Connection, name: str) -> list[ReplayRow]:
    """Every name that looks like a replay name of `name` and has versions, in the order of their first version
    (a name that only starts like one is the caller's to drop)."""
    rows = _rows(connection, NAME_REPLAYS, {"replays_like": _replays_like(name)})
    return [(str(replay_name), int(versions), _when(first), _when(last)) for replay_name, versions, first, last in rows]


# -- one version, two versions ---------------------------------------------------------------------------------

INFO_BY_NAME_VERSION = info_select().where(VERSIONS.c.model_name == bindparam("name"),
                                            VERSIONS.c.version == bindparam("version"))
INFOS_BY_IDS = info_select().where(VERSIONS.c.model_id.in_(bindparam("model_ids", expanding=True)))
MODEL_HISTORY = select(*_EVENT_COLUMNS).where(EVENTS.c.model_id == bindparam("model_id")).order_by(EVENTS.c.id)
PRODUCTION_ID = select(VERSIONS.c.model_id).select_from(VERSIONS_WITH_STATE).where(
    STATES.c.model_name == bindparam("name"), STATES.c.status == PRODUCTION)
NAME_EXISTS = select(NAMES.c.name).where(NAMES.c.name == bindparam("name"))
PRODUCTION_BY_NAMES = info_select().where(STATES.c.status == PRODUCTION,
                                           STATES.c.model_name.in_(bindparam("names", expanding=True)))


def version_info(connection: Connection, name: str, version: str, root: str) -> ModelInfo | None:
    """Version `version` of `name`, or None."""
    infos = read_infos(connection, INFO_BY_NAME_VERSION, {"name": name, "version": version}, root)
    return infos[0] if infos else None


def name_exists(connection: Connection, name: str) -> bool:
    """Whether the registry knows the name `name`."""
    return connection.execute(NAME_EXISTS, {"name": name}).first() is not None


def model_history(connection: Connection, model_id: str) -> list[ModelEvent]:
    """Every event of `model_id`, oldest first."""
    return _events(connection.execute(MODEL_HISTORY, {"model_id": model_id}).all())


def production_id(connection: Connection, name: str) -> str | None:
    """The model id of `name`'s production version, if it has one."""
    found = connection.execute(PRODUCTION_ID, {"name": name}).scalar()
    return str(found) if found is not None else None


def infos_by_ids(connection: Connection, model_ids: list[str], root: str) -> list[ModelInfo]:
    """The versions among `model_ids` (in no particular order; unknown ids are absent)."""
    return _infos_in(connection, INFOS_BY_IDS, {"model_ids": model_ids}, root)


def production_infos(connection: Connection, names: list[str], root: str) -> list[ModelInfo]:
    """The production versions of `names` (in no particular order)."""
    return _infos_in(connection, PRODUCTION_BY_NAMES, {"names": names}, root)


# -- data versions ---------------------------------------------------------------------------------------------

DATA_VERSIONS_SHOWN = 500  # newest data versions listed on a data directory's page
DATA_VERSIONS_BY_FINGERPRINT = (select(DATA_VERSIONS).where(DATA_VERSIONS.c.fingerprint == bindparam("fingerprint"))
                                .order_by(DATA_VERSIONS.c.id.desc()))
DATA_VERSIONS_OF_DIR = (select(DATA_VERSIONS).where(DATA_VERSIONS.c.data_dir == bindparam("data_dir"))
                        .order_by(DATA_VERSIONS.c.id.desc()).limit(row_limit(DATA_VERSIONS_SHOWN)))


def data_versions_with_fingerprint(connection: Connection, fingerprint: str) -> list[dict[str, Any]]:
    """The data version rows with `fingerprint`, newest first (one per ingest that left that data)."""
    return [dict(row) for row in connection.execute(DATA_VERSIONS_BY_FINGERPRINT, {"fingerprint": fingerprint})
            .mappings()]


def data_versions_of_dir(connection: Connection, data_dir: str) -> list[dict[str, Any]]:
    """The newest DATA_VERSIONS_SHOWN data version rows of `data_dir`, newest first."""
    return [dict(row) for row in connection.execute(DATA_VERSIONS_OF_DIR, {"data_dir": data_dir}).mappings()]
