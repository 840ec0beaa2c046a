"""The Qlib Model Pipeline's model registry: a plain library (it never imports Prefect)."""

from registry.approvals import Approval, ApprovalClosedError, Approvals, ApprovalState, Claim
from registry.compat.repository import IModelRepository, QlibModelRepository
from registry.compat.repository_metadata import RepositoryModelMetadata
from registry.errors import (
    AmbiguousProductionError,
    ArtifactStorageError,
    CorruptedArtifactError,
    DuplicateVersionError,
    InvalidArgumentError,
    InvalidMetadataError,
    InvalidMetricError,
    InvalidModelError,
    InvalidNameError,
    InvalidStatusError,
    InvalidTransitionError,
    ModelNotFoundError,
    ModelPathNotAllowedError,
    ModelRegistryError,
    NoRollbackTargetError,
    ProductionModelDeletionError,
    RegistryNotFoundError,
    RegistryUnavailableError,
    RepositoryModelNotFoundError,
)
from registry.models import DatasetConfig, ModelEvent, ModelFilter, ModelInfo, ModelMetadata
from registry.predictions import Prediction, PredictionWrite, ScoredDay
from registry.series import EvaluationSeries
from registry.service import ModelRegistry
from registry.settings import Settings, load_settings
from registry.statuses import ModelStatus

__all__ = [
    "AmbiguousProductionError",
    "Approval",
    "ApprovalClosedError",
    "ApprovalState",
    "Approvals",
    "ArtifactStorageError",
    "Claim",
    "CorruptedArtifactError",
    "DatasetConfig",
    "DuplicateVersionError",
    "EvaluationSeries",
    "IModelRepository",
    "InvalidArgumentError",
    "InvalidMetadataError",
    "InvalidMetricError",
    "InvalidModelError",
    "InvalidNameError",
    "InvalidStatusError",
    "InvalidTransitionError",
    "ModelEvent",
    "ModelFilter",
    "ModelInfo",
    "ModelMetadata",
    "ModelNotFoundError",
    "ModelPathNotAllowedError",
    "ModelRegistry",
    "ModelRegistryError",
    "ModelStatus",
    "NoRollbackTargetError",
    "Prediction",
    "PredictionWrite",
    "ProductionModelDeletionError",
    "QlibModelRepository",
    "RegistryNotFoundError",
    "RegistryUnavailableError",
    "RepositoryModelMetadata",
    "RepositoryModelNotFoundError",
    "ScoredDay",
    "Settings",
    "load_settings",
]
