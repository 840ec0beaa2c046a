"""Model statuses, the explicit table of allowed transitions, and the kinds of history events."""

from __future__ import annotations

from enum import StrEnum

from registry.errors import InvalidStatusError, InvalidTransitionError


class ModelStatus(StrEnum):
    """Lifecycle of a registered model version."""

    REGISTERED = "registered"
    CANDIDATE = "candidate"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class EventKind(StrEnum):
    """What a history event records (`ModelEvent.event`)."""

    REGISTERED = "registered"
    PROMOTED = "promoted"
    DEMOTED = "demoted"
    ROLLED_BACK = "rolled_back"
    RETIRED = "retired"
    ARCHIVED = "archived"
    RESTORED = "restored"
    STATUS_CHANGED = "status_changed"
    PURGED = "purged"
    DELETED = "deleted"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_REJECTED = "approval_rejected"
    APPROVAL_TIMED_OUT = "approval_timed_out"
    PREDICTIONS_RECOMPUTED = "predictions_recomputed"
    APPROVED = "approved"
    APPROVAL_REFUSED = "approval_refused"  # an answer that came too late, to a closed request, or failed the stale check
    APPROVAL_SUPERSEDED = "approval_superseded"
    COMPARED = "compared"  # the candidate against production re-scored on its window, before the decision
    DRIFT_DETECTED = "drift_detected"  # production's live IC fell below what its evaluation promised (a new episode)


S = ModelStatus

# (from, to) pairs that `set_model_status` accepts. Entering production only happens through
# `set_production_model` (which swaps under a lock); leaving it only through another model's
# promotion or a forced retire.
ALLOWED_TRANSITIONS: frozenset[tuple[ModelStatus, ModelStatus]] = frozenset(
    {
        (S.REGISTERED, S.CANDIDATE),
        (S.REGISTERED, S.ARCHIVED),
        (S.CANDIDATE, S.REGISTERED),
        (S.CANDIDATE, S.ARCHIVED),
        (S.ARCHIVED, S.REGISTERED),
    }
)
PROMOTABLE: frozenset[ModelStatus] = frozenset({S.REGISTERED, S.CANDIDATE})
FORCED_RETIRE_TARGETS: frozenset[ModelStatus] = frozenset({S.CANDIDATE, S.REGISTERED, S.ARCHIVED})


def parse_status(value: str | ModelStatus) -> ModelStatus:
    """The ModelStatus for `value`, or InvalidStatusError listing the known ones."""
    try:
        return ModelStatus(value)
    except ValueError:
        known = ", ".join(s.value for s in ModelStatus)
        raise InvalidStatusError(f"unknown status {value!r}: expected one of {known}") from None


def check_transition(model_id: str, current: ModelStatus, target: ModelStatus, *, force: bool = False) -> None:
    """Raise InvalidTransitionError unless `current -> target` is allowed for `set_model_status`."""
    if current == S.PRODUCTION:
        if force and target in FORCED_RETIRE_TARGETS:
            return
        raise InvalidTransitionError(
            f"model {model_id!r} is in production: it leaves production only when another model is promoted "
            f"or with an explicit forced retire (force=True) to {', '.join(sorted(FORCED_RETIRE_TARGETS))}"
        )
    if (current, target) not in ALLOWED_TRANSITIONS:
        raise InvalidTransitionError(f"model {model_id!r} cannot go from {current.value!r} to {target.value!r}")
