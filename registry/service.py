"""ModelRegistry: the original registry API over a SQL database and an artifact directory, safe for concurrent writers."""

from __future__ import annotations

import getpass
import pickle
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from registry import monitoring, retention, store
from registry import predictions as predictions_store
from registry.artifacts.codec import check_compression, decode
from registry.artifacts.local import LocalArtifactStore
from registry.artifacts.object_store import ObjectArtifactStore
from registry.artifacts.store import ArtifactStore, StagedArtifact
from registry.data_versions import DataVersionRecord
from registry.drift import DriftRule
from registry.errors import (
    AmbiguousProductionError,
    CorruptedArtifactError,
    InvalidArgumentError,
    InvalidModelError,
    InvalidTransitionError,
    ModelNotFoundError,
    ModelPathNotAllowedError,
    NoRollbackTargetError,
    ProductionModelDeletionError,
    RegistryUnavailableError,
)
from registry.live import LiveDay, LiveScore, LiveWrite
from registry.models import (
    ModelEvent,
    ModelFilter,
    ModelInfo,
    ModelMetadata,
    validate_metric_name,
    validate_model_name,
)
from registry.predictions import Prediction, PredictionWrite, ScoredDay
from registry.registration import Registration, StatusRule
from registry.series import EvaluationSeries, validate_series
from registry.settings import Settings, load_settings
from registry.statuses import PROMOTABLE, EventKind, ModelStatus, check_transition, parse_status
from registry.store import data_versions as data_versions_table
from registry.store.db import Database, describe_url, sqlite_url_for
from registry.versions import parse_version


@lru_cache(maxsize=1)
def _default_actor() -> str:
    """The OS user running the process (looked up once: without USER set it reads the password database)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _now() -> datetime:
    return datetime.now(UTC)


class ModelRegistry:
    """Registers, versions, loads and promotes models; metadata in SQL, artifacts under `registry_dir`."""

    def __init__(
        self,
        registry_dir: str | Path = "./model_registry",
        database_url: str | None = None,
        *,
        primary_metric: str = "ic_mean",
        higher_is_better: bool = True,
        allowed_source_dirs: Iterable[str | Path] | None = None,
        retry_budget_s: float = 30.0,
        artifact_uri: str | None = None,
        storage_options: dict[str, Any] | None = None,
        compression: str | None = None,
        **engine_options: Any,
    ) -> None:
        """Artifacts go to `artifact_uri` (`s3://bucket/prefix`, fsspec `storage_options`) when given, compressed if asked."""
        self.registry_dir = Path(registry_dir).expanduser().resolve()
        embedded = database_url is None
        if embedded:  # the SQLite file lives in the directory; otherwise nothing is written before the database answers
            self.registry_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url or sqlite_url_for(self.registry_dir)
        self.primary_metric = validate_metric_name(primary_metric)
        self.higher_is_better = higher_is_better
        sources: Iterable[str | Path] = allowed_source_dirs if allowed_source_dirs is not None else [Path.cwd(), tempfile.gettempdir(), self.registry_dir]
        self.allowed_source_dirs = [Path(p).expanduser().resolve() for p in sources]
        self._codec = check_compression(compression)
        self._storage_options = storage_options
        self.artifacts: ArtifactStore
        if artifact_uri is None:
            self.artifacts = LocalArtifactStore(self.registry_dir, self._codec)
        else:
            self.artifacts = ObjectArtifactStore(artifact_uri, storage_options, self._codec)
        self._stores: dict[str, ArtifactStore] = {self.artifacts.location: self.artifacts}
        self.db = Database(self.database_url, retry_budget_s=retry_budget_s, **engine_options)
        self.db.ensure_schema(self.artifacts.location)
        self.registry_dir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **options: Any) -> ModelRegistry:
        """The registry the QMP_* settings (or `settings`) name, artifact location and compression included:
        every entry point (flows, tasks, CLI, demo, the async port) opens the registry through this."""
        settings = settings or load_settings()
        options.setdefault("artifact_uri", settings.artifact_uri)
        options.setdefault("storage_options", settings.artifact_storage_options or None)
        options.setdefault("compression", settings.artifact_compression)
        options.setdefault("timeout_s", settings.database_timeout)
        return cls(settings.registry_dir, settings.database_url, **options)

    def __repr__(self) -> str:
        artifacts = "" if isinstance(self.artifacts, LocalArtifactStore) else f", artifact_uri={self.artifacts.location!r}"
        return (f"ModelRegistry(registry_dir={str(self.registry_dir)!r}, "
                f"database_url={describe_url(self.database_url)!r}{artifacts})")

    def close(self) -> None:
        """Release the database connections."""
        self.db.dispose()

    def __enter__(self) -> ModelRegistry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- registration -----------------------------------------------------------------------------

    def register_model(
        self,
        model: Any,
        metadata: ModelMetadata,
        model_path: str | Path | None = None,
        *,
        actor: str | None = None,
        reason: str | None = None,
        flow_run_id: str | None = None,
        evaluation_series: Mapping[str, EvaluationSeries] | None = None,
        initial_status: ModelStatus | None = None,
    ) -> str:
        """Store the model and its metadata; returns the model id `{model_name}_v{version}`.

        `evaluation_series` (daily IC, cumulative excess return, ...) are stored with the version's row.
        Without `initial_status` the original registry API's rule sets it: `candidate` when the primary
        metric (`ic_mean`, higher is better, by default) beats production's, else `registered`. A caller with
        a promotion policy (the retrain flow) passes `registered` and decides the candidate itself.
        """
        if initial_status is not None and initial_status not in (ModelStatus.REGISTERED, ModelStatus.CANDIDATE):
            raise InvalidTransitionError(f"a new model starts as registered or candidate, not {initial_status.value}")
        metadata = ModelMetadata.model_validate(metadata.model_dump())  # re-run validators on mutated input
        series = validate_series(dict(evaluation_series or {}))
        if metadata.version is not None:
            parse_version(metadata.version)
        spec = store.EventSpec(actor or _default_actor(), reason, flow_run_id)
        staged = self._stage(model, model_path)
        work = Registration(staged, metadata, spec, initial_status, series)
        rule = StatusRule(self.primary_metric, self.higher_is_better)
        try:
            model_id = self.db.run(lambda session: work.run(session, self.artifacts, rule),
                                   undo=lambda: self._undo_registration(work))
        except BaseException:
            if not (work.committed or work.unsettled):  # a commit whose reply was lost owns the published files
                self.artifacts.discard(work.staged)
            raise
        if work.reused is not None:
            self.artifacts.discard(work.staged)
        return model_id

    def _stage(self, model: Any, model_path: str | Path | None) -> StagedArtifact:
        if model_path is None:
            if model is None:
                raise InvalidModelError("register_model needs a model object or a model_path")
            return self.artifacts.stage_object(model)
        try:
            source = Path(model_path).expanduser().resolve()
            is_file = source.is_file()
        except (OSError, ValueError) as exc:  # embedded NUL, name too long, symlink loop
            raise InvalidModelError(f"model_path {str(model_path)[:200]!r} cannot be used: {str(exc)[:200]}") from None
        if not any(source.is_relative_to(root) for root in self.allowed_source_dirs):
            allowed = ", ".join(str(p) for p in self.allowed_source_dirs)
            raise ModelPathNotAllowedError(f"model_path {str(model_path)!r} is outside the allowed directories ({allowed})")
        if not is_file:
            raise InvalidModelError(f"model_path {str(model_path)!r} is not a readable file")
        return self.artifacts.stage_file(source)

    def _undo_registration(self, work: Registration) -> None:
        """After a failed attempt: keep files a lost-reply commit owns, take back the others (see Registration)."""
        try:
            info = self._find(work.model_id) if work.published and work.model_id is not None else None
        except (RegistryUnavailableError, DBAPIError):
            # Keep the files: an orphan is swept later, a committed row without its artifact is lost for good.
            # The next attempt (or the orphan sweep) settles it once the database answers.
            work.unsettled = True
            return
        work.settle_after_failure(info.checksum if info is not None else None, self.artifacts)

    def _find(self, model_id: str) -> ModelInfo | None:
        try:
            return self.get_model_info(model_id)
        except ModelNotFoundError:
            return None

    # -- reading ----------------------------------------------------------------------------------

    def get_model_info(self, model_id: str) -> ModelInfo:
        """The ModelInfo of `model_id`, or ModelNotFoundError."""
        infos = self._read_infos(*store.info_by_model_id(model_id))
        if not infos:
            raise ModelNotFoundError(f"model {model_id!r} not found in registry")
        return infos[0]

    def _read_infos(self, query: Executable, params: dict[str, Any] | None) -> list[ModelInfo]:
        """The ModelInfo objects one SELECT of `store` returns (a single-statement read, retried)."""
        return self.db.read(lambda connection: store.read_infos(connection, query, params, self.artifacts.location))

    def get_evaluation_series(self, model_id: str) -> dict[str, EvaluationSeries]:
        """The evaluation series stored with `model_id` (empty when none were recorded, as for versions
        registered before the registry kept them); ModelNotFoundError for an unknown id."""
        self.get_model_info(model_id)
        points = self.db.read(lambda connection: store.read_series(connection, [model_id]))[model_id]
        return {name: EvaluationSeries.model_validate(value) for name, value in points.items()}

    def artifacts_at(self, location: str | None, model_id: str) -> ArtifactStore:
        """The artifact store a version was written to, from its recorded `location` (`{root}/{model_id}`);
        an object store other than today's is opened with today's storage options."""
        if location is None or not location.endswith(f"/{model_id}"):
            return self.artifacts
        root = location[: -len(model_id) - 1]
        known = self._stores.get(root)
        if known is not None:
            return known
        found: ArtifactStore = (ObjectArtifactStore(root, self._storage_options, self._codec) if "://" in root
                                else LocalArtifactStore(Path(root), self._codec))
        self._stores[root] = found
        return found

    def get_model(self, model_id: str) -> Any:
        """Load the model object after verifying its artifact's checksum."""
        info = self.get_model_info(model_id)
        if info.purged_at is not None:
            raise CorruptedArtifactError(f"artifact of model {model_id!r} was purged on {info.purged_at:%Y-%m-%d}")
        artifacts = self.artifacts_at(info.artifact_location, model_id)
        data = artifacts.read_verified(model_id, info.checksum, info.size_bytes)
        return pickle.loads(decode(data, info.compression, model_id))

    def get_model_metadata(self, model_id: str) -> dict[str, Any]:
        """The model's metadata and registry fields as a JSON-ready dict."""
        return self.get_model_info(model_id).model_dump(mode="json")

    def list_models(self, filter: ModelFilter | None = None) -> list[ModelInfo]:  # `filter`: the original API's name
        """Models matching `filter` (all models, newest first, without one)."""
        return self._read_infos(*store.filter_query(filter or ModelFilter()))

    def get_production_model(self, model_name: str | None = None) -> ModelInfo | None:
        """The production model of `model_name`; without a name, the only production model there is."""
        if model_name is not None:
            infos = self._read_infos(store.PRODUCTION_INFO, {"name": validate_model_name(model_name)})
            return infos[0] if infos else None
        infos = self._read_infos(store.PRODUCTION_INFOS, None)
        if len(infos) > 1:
            names = ", ".join(repr(info.model_name) for info in infos)
            raise AmbiguousProductionError(f"several model names have a production model ({names}, ...): pass model_name")
        return infos[0] if infos else None

    def history(
        self, model_name: str | None = None, model_id: str | None = None, *, limit: int | None = None
    ) -> list[ModelEvent]:
        """The append-only history, oldest first, for a name, a model, or the whole registry."""
        return self.db.run(
            lambda s: store.events(s, model_name=model_name, model_id=model_id, limit=limit), read_only=True
        )

    def production_at(self, model_name: str, when: datetime) -> str | None:
        """The id of the model that was production for `model_name` at `when` (None if none was)."""
        if when.tzinfo is None:
            raise InvalidArgumentError("production_at needs a timezone-aware datetime")
        return self.db.run(lambda s: store.production_at(s, model_name, when), read_only=True)

    def verify_artifact(self, model_id: str) -> ModelInfo:
        """Check the model file against its recorded checksum; CorruptedArtifactError if it differs."""
        info = self.get_model_info(model_id)
        self.artifacts_at(info.artifact_location, model_id).verify(model_id, info.checksum, info.size_bytes)
        return info

    # -- status changes ---------------------------------------------------------------------------

    def set_model_status(
        self,
        model_id: str,
        status: str | ModelStatus,
        *,
        actor: str | None = None,
        reason: str | None = None,
        flow_run_id: str | None = None,
        force: bool = False,
    ) -> None:
        """Move a model to `status` along the transition table (`production` promotes it)."""
        target = parse_status(status)
        if target == ModelStatus.PRODUCTION:
            self.set_production_model(model_id, actor=actor, reason=reason, flow_run_id=flow_run_id)
            return
        spec = store.EventSpec(actor or _default_actor(), reason, flow_run_id)

        def unit(session: Session) -> None:
            name, _ = store.name_and_status(session, model_id)
            store.lock_name(session, name, _now(), create=False)
            row = store.get_state(session, model_id)
            current = ModelStatus(row.status)
            if current == target:
                return
            check_transition(model_id, current, target, force=force)
            now = _now()
            store.set_status(session, row.pk, target, now)
            event = EventKind.ARCHIVED if target == ModelStatus.ARCHIVED else EventKind.STATUS_CHANGED
            if current == ModelStatus.ARCHIVED:
                event = EventKind.RESTORED
            elif current == ModelStatus.PRODUCTION:
                event = EventKind.RETIRED
                store.set_previous_production(session, name, model_id)
            store.add_event(session, model_id=model_id, model_name=name, event=event,
                            from_status=current.value, to_status=target.value, spec=spec, now=now)

        self.db.run(unit)

    def set_production_model(
        self,
        model_id: str,
        *,
        actor: str | None = None,
        reason: str | None = None,
        flow_run_id: str | None = None,
        verify: bool = True,
        event: EventKind = EventKind.PROMOTED,
    ) -> ModelInfo:
        """Promote `model_id`; the old production model becomes a candidate, in the same transaction."""
        if verify:
            self.verify_artifact(model_id)
        spec = store.EventSpec(actor or _default_actor(), reason, flow_run_id)

        def unit(session: Session) -> ModelInfo:
            name = store.lock_name_of(session, model_id)
            rows = store.promotion_rows(session, name, model_id)
            current = ModelStatus(rows.target.status)
            if current != ModelStatus.PRODUCTION:
                if current not in PROMOTABLE:
                    raise InvalidTransitionError(
                        f"model {model_id!r} is {current.value}: only registered or candidate models can be promoted"
                        + (" (restore it first)" if current == ModelStatus.ARCHIVED else "")
                    )
                if rows.target.purged_at is not None:
                    raise CorruptedArtifactError(f"artifact of model {model_id!r} was purged; it cannot serve production")
                store.swap_production(session, name, rows, event=event, spec=spec, now=_now())
            return store.read_infos(session, store.INFO_BY_PK, {"pk": rows.target.pk}, self.artifacts.location)[0]

        return self.db.run(unit)

    def rollback(self, model_name: str, *, actor: str | None = None, reason: str | None = None,
                 flow_run_id: str | None = None) -> ModelInfo:
        """Restore the most recent earlier production model of `model_name`, after checking its artifact."""
        validate_model_name(model_name)
        current = self.get_production_model(model_name)
        exclude = current.model_id if current else None
        candidates = self.db.run(lambda s: store.previous_production_ids(s, model_name, exclude), read_only=True)
        for model_id in candidates:
            info = self._find(model_id)
            if info is None or info.purged_at is not None or info.status == ModelStatus.ARCHIVED:
                continue
            return self.set_production_model(model_id, actor=actor, reason=reason or "rollback",
                                             flow_run_id=flow_run_id, event=EventKind.ROLLED_BACK)
        raise NoRollbackTargetError(f"model {model_name!r} has no earlier production model that can be restored")

    def record_event(self, model_id: str, event: str, *, actor: str | None = None, reason: str | None = None,
                     flow_run_id: str | None = None, awaiting_approval: bool | None = None) -> None:
        """Append a decision to the history without a status change (approval requested, rejected, ...)."""
        spec = store.EventSpec(actor or _default_actor(), reason, flow_run_id)

        def unit(session: Session) -> None:
            row = store.get_state(session, model_id, for_update=True)
            now = _now()
            if awaiting_approval is not None:
                store.set_awaiting_approval(session, row.pk, awaiting_approval, now)
            store.add_event(session, model_id=model_id, model_name=row.model_name, event=event,
                            from_status=row.status, to_status=row.status, spec=spec, now=now)

        self.db.run(unit)

    # -- predictions ------------------------------------------------------------------------------

    def write_predictions(
        self,
        model_name: str,
        days: Sequence[ScoredDay],
        *,
        data_version: str,
        recompute: tuple[date, date] | None = None,
        actor: str | None = None,
        reason: str | None = None,
        flow_run_id: str | None = None,
        live: Sequence[LiveScore] = (),
    ) -> PredictionWrite:
        """Store a run's scores in one transaction: new days only, or `recompute`'s range replaced (recorded,
        with the range's live metrics replaced by `live`)."""
        name = validate_model_name(model_name)
        spec = store.EventSpec(actor or _default_actor(), reason, flow_run_id)
        return self.db.run(lambda session: predictions_store.write(
            session, name, days, data_version=data_version, spec=spec, now=_now(), recompute=recompute, live=live,
        ))

    def predictions(self, model_name: str, on: date | tuple[date, date] | None = None) -> list[Prediction]:
        """Stored scores of `model_name` on a day or an inclusive (first, last) range; the last stored day by default."""
        name = validate_model_name(model_name)
        first, last = on if isinstance(on, tuple) else (on, on)
        return self.db.run(lambda session: predictions_store.read(session, name, first, last), read_only=True)

    def prediction_days(self, model_name: str, first: date, last: date) -> list[date]:
        """The trading days in [first, last] that have stored scores for `model_name`, in order."""
        name = validate_model_name(model_name)
        return self.db.run(lambda session: predictions_store.days_between(session, name, first, last), read_only=True)

    def last_prediction_date(self, model_name: str) -> date | None:
        """The last trading day with stored scores for `model_name` (None before the first predict run)."""
        name = validate_model_name(model_name)
        return self.db.run(lambda session: predictions_store.last_day(session, name), read_only=True)

    # -- data versions ----------------------------------------------------------------------------

    def record_data_version(self, record: DataVersionRecord) -> DataVersionRecord:
        """Store one ingest's data version record; returns it with its id and time."""
        row = record.row(_now())
        new_id = self.db.run(lambda session: data_versions_table.insert_version(session, row))
        return record.model_copy(update={"id": new_id, "created_at": row["created_at"]})

    def data_versions(self, data_dir: str, limit: int | None = None) -> list[DataVersionRecord]:
        """The data version records of `data_dir`, newest first."""
        rows = self.db.run(lambda session: data_versions_table.versions_of(session, data_dir, limit), read_only=True)
        return [DataVersionRecord.model_validate(row) for row in rows]

    def newest_data_versions(self) -> list[DataVersionRecord]:
        """The newest data version record of every data directory."""
        rows = self.db.run(data_versions_table.newest_per_directory, read_only=True)
        return [DataVersionRecord.model_validate(row) for row in rows]

    # -- live metrics and drift --------------------------------------------------------------------

    def write_live_metrics(
        self, model_name: str, scores: Sequence[LiveScore], *, data_version: str, flow_run_id: str | None = None,
    ) -> LiveWrite:
        """Store the days of `scores` that have no live metrics yet (a re-run adds only new days)."""
        name = validate_model_name(model_name)
        spec = store.EventSpec(_default_actor(), None, flow_run_id)
        return self.db.run(lambda session: monitoring.write(
            session, name, scores, data_version=data_version, spec=spec, now=_now()))

    def live_metrics(self, model_name: str, first: date | None = None, last: date | None = None) -> list[LiveDay]:
        """The stored live metrics of `model_name` in [first, last] (open ends when None), oldest first."""
        name = validate_model_name(model_name)
        return self.db.run(lambda session: monitoring.read(session, name, first, last), read_only=True)

    def drift_rule(self, model_name: str) -> DriftRule:
        """The drift rule of `model_name` (the default until one is set)."""
        name = validate_model_name(model_name)
        return self.db.run(lambda session: monitoring.rule(session, name), read_only=True)

    def set_drift_rule(self, model_name: str, rule: DriftRule, *, actor: str | None = None) -> None:
        """Store the drift rule of `model_name`."""
        name = validate_model_name(model_name)
        who = actor or _default_actor()
        self.db.run(lambda session: monitoring.set_rule(session, name, rule, actor=who, now=_now()))

    # -- deletion ---------------------------------------------------------------------------------

    def delete_model(self, model_id: str, *, actor: str | None = None, reason: str | None = None) -> None:
        """Remove a non-production model's row and files; its history stays."""
        artifacts = self.artifacts_at(self.get_model_info(model_id).artifact_location, model_id)
        spec = store.EventSpec(actor or _default_actor(), reason, None)

        def unit(session: Session) -> str:
            name, _ = store.name_and_status(session, model_id)
            store.lock_name(session, name, _now(), create=False)
            row = store.get_state(session, model_id)
            if row.status == ModelStatus.PRODUCTION.value:
                raise ProductionModelDeletionError(
                    f"model {model_id!r} is the production model of {name!r}: promote another model first"
                )
            store.add_event(session, model_id=model_id, model_name=name, event=EventKind.DELETED,
                            from_status=row.status, to_status=None, spec=spec, now=_now())
            store.delete_row(session, row.pk)
            return name

        def remove_unowned_files(session: Session, name: str) -> None:
            # Under the name lock and only while no row owns the id: a re-registration of the same
            # version may have published its own directory since the delete committed.
            store.lock_name(session, name, _now(), create=False)
            if not store.existing_ids(session, [model_id]):
                artifacts.delete(model_id)

        name = self.db.run(unit)
        # Files go only after the commit: a crash in between leaves an orphan, never a row without files.
        self.db.run(lambda session: remove_unowned_files(session, name))


    # -- cleanup (rules in registry/retention.py, SQL in registry/store/cleanup.py) ------------------

    def archive_stale(
        self,
        *,
        max_age_days: int = 30,
        keep_last: int = 3,
        keep_best: int | None = None,
        purge_archived_after_days: int | None = None,
        dry_run: bool = False,
        now: datetime | None = None,
        actor: str | None = None,
        reason: str | None = None,
        flow_run_id: str | None = None,
    ) -> retention.CleanupResult:
        """Archive stale non-production models and purge long-archived artifacts; see `registry.retention`."""
        policy = retention.make_policy(
            max_age_days=max_age_days, keep_last=keep_last, keep_best=keep_best,
            purge_archived_after_days=purge_archived_after_days, dry_run=dry_run,
        )
        spec = store.EventSpec(actor or _default_actor(), reason, flow_run_id)
        return retention.archive_stale(self.db, self.artifacts_at, policy, metric=self.primary_metric,
                                     higher_is_better=self.higher_is_better, spec=spec, now=now or _now())

    def sweep_orphans(
        self,
        *,
        grace_period: timedelta = retention.DEFAULT_ORPHAN_GRACE,
        dry_run: bool = False,
        now: datetime | None = None,
    ) -> retention.OrphanSweepResult:
        """Remove artifact directories that no row owns, after a grace period; see `registry.retention`."""
        return retention.sweep_orphans(self.db, self.artifacts, grace_period=grace_period, dry_run=dry_run,
                                     now=now or _now())
