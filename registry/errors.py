"""The registry's typed errors: one subclass per way a call can fail, each naming the ids involved.

None of them derives from ValueError on purpose: Pydantic would wrap a ValueError raised in a
validator into its own ValidationError, and callers should catch the registry's type.
"""

from __future__ import annotations


class ModelRegistryError(Exception):
    """Base class of every error the registry raises on purpose."""


class ModelNotFoundError(ModelRegistryError, LookupError):
    """No model with that id (or no model of that name) in the registry."""


class RegistryNotFoundError(ModelRegistryError, LookupError):
    """No registry where the settings point: a read command does not create one (`qmp db upgrade` does)."""


class UnknownName(ModelNotFoundError):
    """A page asked for a model name the registry does not know (its only argument is the name)."""

    def __init__(self, model_name: str) -> None:
        super().__init__(model_name)
        self.model_name = model_name


class UnknownReplay(ModelNotFoundError):
    """A page asked for a replay id the model name has no replay by."""

    def __init__(self, model_name: str, replay_id: str) -> None:
        super().__init__(model_name, replay_id)
        self.model_name, self.replay_id = model_name, replay_id


class UnknownVersion(ModelNotFoundError):
    """A page asked for a version its (known) model name does not have (its only argument is the version)."""

    def __init__(self, version: str) -> None:
        super().__init__(version)
        self.version = version


class CorruptedArtifactError(ModelRegistryError):
    """A model's artifact is missing or its bytes do not match the recorded checksum."""


class InvalidStatusError(ModelRegistryError):
    """A status value that the registry does not know."""


class InvalidTransitionError(InvalidStatusError):
    """A status change that the transition table does not allow."""


class ProductionModelDeletionError(ModelRegistryError):
    """Deleting (or archiving) the production model was asked for."""


class DuplicateVersionError(ModelRegistryError):
    """The caller's version already exists for that model name."""


class InvalidNameError(ModelRegistryError):
    """A model name, version, metric name or tag that breaks the documented rules."""


class InvalidMetricError(InvalidNameError):
    """A metric value that is not a finite number."""


class InvalidMetadataError(InvalidNameError):
    """A hyperparameter or dataset value that JSON cannot hold (NaN, an infinity, an arbitrary object)."""


class InvalidModelError(ModelRegistryError):
    """The model object cannot be serialized, or the model file cannot be used."""


class ModelPathNotAllowedError(InvalidModelError):
    """A `model_path` outside every directory the registry may import from."""


class AmbiguousProductionError(ModelRegistryError):
    """`get_production_model()` without a name, while several names have a production model."""


class NoRollbackTargetError(ModelRegistryError):
    """A rollback was asked for but the name never had an earlier production model that still exists."""


class InvalidArgumentError(ModelRegistryError):
    """An argument outside what the call accepts (a naive datetime, an unknown source name)."""


class InvalidCleanupPolicyError(InvalidArgumentError):
    """A cleanup parameter out of range (negative ages or counts)."""


class UnknownCompressionError(InvalidModelError):
    """A compression name the registry does not support."""


class MigrationError(ModelRegistryError):
    """A schema migration would leave the database inconsistent; it was rolled back."""


class RegistryUnavailableError(ModelRegistryError):
    """The database stayed unreachable (or kept conflicting) for longer than the retry budget."""


class ArtifactStorageError(RegistryUnavailableError):
    """The artifact storage failed (full disk, permission denied, unreachable bucket): not a fault of the model."""


class RepositoryModelNotFoundError(ModelNotFoundError, FileNotFoundError):
    """The async repository port's not-found: also a FileNotFoundError, as the original registry API raised."""


class RecorderUnavailableError(ModelRegistryError):
    """A Qlib recorder copy was asked for but no recorder store can be used (not installed, Qlib not initialised)."""


class QlibNotInitialisedError(RecorderUnavailableError):
    """A recorder copy was asked for before `qlib.init` (call `tasks.core.qlib.session.init_qlib` first)."""


class RecorderMismatchError(CorruptedArtifactError):
    """The Qlib recorder copy of a model is missing or differs from the registry's artifact."""
