"""One registration as an explicit sequence, run inside the unit of work (and again on a retry):

1. settle an earlier attempt whose commit reply was lost (its row may exist);
2. lock and count the name, reading the latest version, production's metric and this flow run's
   earlier registration under the lock (a retried flow run gets that one back);
3. choose the version (the caller's, or the next one) and the initial status;
4. start publishing the staged files under the model id, write the rows, wait for the files' fsyncs.

What happened outside the database is kept on the `Registration`, so a failed attempt can be undone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry import store
from registry.artifacts.store import ArtifactStore, StagedArtifact
from registry.errors import DuplicateVersionError
from registry.models import ModelMetadata
from registry.policy import beats
from registry.replays import is_replay_name
from registry.series import EvaluationSeries
from registry.statuses import ModelStatus
from registry.store.constraints import violated_constraint
from registry.versions import Version, next_version, parse_version

# A registration that breaks one of these lost a race for its version (or model id) to another writer.
VERSION_CONSTRAINTS = frozenset({"uq_model_versions_name_semver", "uq_model_versions_model_id"})


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StatusRule:
    """The original registry API's rule for a new model without an explicit status: `candidate` when its
    `metric` beats production's (or there is no production), else `registered`."""

    metric: str
    higher_is_better: bool

    def initial_status(self, context: store.RegistrationContext, metrics: dict[str, float]) -> ModelStatus:
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return ModelStatus.REGISTERED
        current = context.production_metric
        if not context.has_production or current is None or not math.isfinite(current):
            return ModelStatus.CANDIDATE
        better = beats(value, current, higher_is_better=self.higher_is_better)  # a tie within noise is not
        return ModelStatus.CANDIDATE if better else ModelStatus.REGISTERED


@dataclass
class Registration:
    """One registration's inputs and what it has done outside the database."""

    staged: StagedArtifact
    metadata: ModelMetadata
    spec: store.EventSpec
    initial_status: ModelStatus | None = None
    series: dict[str, EvaluationSeries] = field(default_factory=dict)  # stored with the version's row
    model_id: str | None = None
    published: bool = False
    committed: bool = False
    reused: str | None = None  # the flow run's earlier registration, returned instead of a new one
    # Published, but the database could not say whether the commit landed: the files stay until it can.
    unsettled: bool = False

    def run(self, session: Session, artifacts: ArtifactStore, rule: StatusRule) -> str:
        """The sequence of the module docstring; returns the model id."""
        settled = self._settle_earlier_attempt(session, artifacts)
        if settled is not None:
            return settled
        name = self.metadata.model_name
        locked = store.lock_for_registration(session, name, _now(), rule.metric, self.spec.flow_run_id)
        now = _now()  # after the lock: registration times then follow the order rows are written in
        if locked.existing is not None:
            store.uncount_registration(session, name)
            self.reused = locked.existing
            return locked.existing
        version = self._choose_version(session, locked.highest, locked.context.latest)
        status = self.initial_status or rule.initial_status(locked.context, self.metadata.performance_metrics)
        if is_replay_name(name):
            status = ModelStatus.REGISTERED  # a replay's window never proposes a model (see registry.replays)
        self._write(session, artifacts, version, status, locked.highest, now)
        return f"{name}_v{version}"

    def _settle_earlier_attempt(self, session: Session, artifacts: ArtifactStore) -> str | None:
        if self.committed and self.model_id is not None:
            return self.model_id  # an earlier attempt's commit succeeded though its reply was lost
        if self.unsettled and self.model_id is not None:
            self.unsettled = False
            if store.artifact_checksum(session, self.model_id) == self.staged.sha256:
                self.committed = True
                return self.model_id
            artifacts.unpublish(self.staged)
            self.published = False
        return None

    def _choose_version(self, session: Session, highest: Version | None, latest: Version | None) -> str:
        name, version = self.metadata.model_name, self.metadata.version
        if version is None:
            newest = max((v for v in (latest, highest) if v is not None), key=lambda v: v.sort_key, default=None)
            return next_version(newest)
        if store.version_taken(session, name, parse_version(version)):
            raise DuplicateVersionError(f"model {name!r} already has version {version!r}")
        return version

    def _write(self, session: Session, artifacts: ArtifactStore, version: str, status: ModelStatus,
               highest: Version | None, now: datetime) -> None:
        metadata, staged = self.metadata, self.staged
        parsed = parse_version(version)
        model_id = f"{metadata.model_name}_v{version}"
        snapshot = {
            "model_id": model_id, **metadata.model_dump(mode="json"), "version": version,
            "registered_at": now.isoformat(), "sha256": staged.sha256, "size_bytes": staged.size,
            "compression": staged.compression, "original_size": staged.original_size,
        }
        try:
            # The files' fsyncs run on background threads while the row is written; publish waits for them.
            artifacts.start_publishing(staged, model_id, snapshot)
            try:
                pk = store.insert_model(
                    session, model_id=model_id, metadata=metadata, version=version, parsed=parsed, status=status,
                    sha256=staged.sha256, size=staged.size, spec=self.spec,
                    highest_version=version if highest is None or parsed.sort_key > highest.sort_key else None,
                    now=now, location=f"{artifacts.location}/{model_id}", compression=staged.compression,
                    original_size=staged.original_size,
                )
                store.insert_series(session, pk, self.series)
            except IntegrityError as exc:
                if violated_constraint(exc) not in VERSION_CONSTRAINTS:
                    raise
                raise DuplicateVersionError(
                    f"model {metadata.model_name!r} already has version {version!r} (model id {model_id!r})"
                ) from exc
            session.flush()
            artifacts.publish(staged, model_id)
        except BaseException:
            # Still under the name lock: take the directory back before the rollback lets the next
            # registration of this name in (it may get the same model id).
            artifacts.unpublish(staged)
            raise
        self.model_id = model_id
        self.published = True

    def settle_after_failure(self, committed_checksum: str | None, artifacts: ArtifactStore) -> None:
        """After a failed attempt, given the checksum the database holds for the model id (None: no row):
        keep the files when the commit landed, else take them back."""
        if not self.published or self.model_id is None:
            return
        if committed_checksum == self.staged.sha256:
            self.committed = True  # the commit reached the database; keep the files
            return
        artifacts.unpublish(self.staged)
        self.published = False
