"""The retrain flow's parameter models, importable without Prefect or Qlib (the CLI validates with them).

`RetrainOptions` is the one place the retrain options live: the flow's parameters besides the model name and
the workflow are its fields, `qmp retrain` builds one from its flags, and the retrain deployment's
`parameters` in prefect.yaml validate against it. A new option is a new field here and a flow parameter of
the same name (a test checks that the two agree).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from registry.policy import Guardrail, PromotionPolicy
from tasks.core.windows.settings import WindowSettings

if TYPE_CHECKING:
    from tasks.core.qlib.workflow_config import WorkflowConfig

# The shipped example workflows (package data, so they exist in a non-editable install too).
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "deployments" / "examples"


def resolve_config_path(path: str | Path) -> Path:
    """A workflow YAML path as given; a relative `examples/NAME` not found there names a shipped example."""
    given = Path(path).expanduser()
    if given.is_absolute() or given.exists():
        return given
    if given.parent == Path("examples") and (EXAMPLES_DIR / given.name).is_file():
        return EXAMPLES_DIR / given.name
    return given


class WorkflowSource(BaseModel):
    """Which Qlib workflow to train: a qrun-style YAML path or the same configuration inline."""

    config_path: str | None = Field(
        None, title="Workflow YAML",
        description="Path to a qrun workflow_config_*.yaml, relative to the run's working directory; "
                    "examples/NAME.yaml also finds the shipped examples.",
    )
    config: dict[str, Any] | None = Field(None, title="Inline workflow", description="The YAML's content as a mapping.")
    provider_uri: str | None = Field(
        None, title="Qlib data directory", description="Overrides qlib_init.provider_uri (default: QMP_PROVIDER_URI)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> WorkflowSource:
        if (self.config_path is None) == (self.config is None):
            raise ValueError("give exactly one of config_path or config")
        return self

    def load(self) -> WorkflowConfig:
        from tasks.core.qlib.workflow_config import load_workflow_config

        source: Any = self.config if self.config is not None else resolve_config_path(self.config_path or "")
        return load_workflow_config(source, provider_uri=self.provider_uri).require_data_dir()


class ApprovalSettings(BaseModel):
    """How long a manual approval may take."""

    timeout_seconds: int = Field(86_400, ge=5, le=30 * 86_400, title="Approval timeout (s)",
                                 description="Without an answer by then the model stays a candidate.")
    poll_interval_seconds: int = Field(10, ge=1, le=600, title="Poll interval (s)",
                                       description="Only for a run outside a deployment, which waits in its process.")


EvaluationSegment = Annotated[
    str, Field(title="Evaluation segment", description="Dataset segment the metrics are computed on.")
]


class DataFreshness(BaseModel):
    """The stale-data alarm of deployment runs (``qmp retrain`` and the demo never raise it)."""

    max_data_age_days: int | None = Field(
        5, ge=0, le=366, title="Max data age (trading days)",
        description="Fail when the calendar ends more trading days ago than this (empty: no alarm).",
    )
    timezone: str | None = Field(
        None, title="Time zone", description="Where 'today' is counted (default: the deployment schedule's time zone)."
    )


class RetrainOptions(BaseModel):
    """Everything about a retrain run besides which model and which workflow: the flow's other parameters."""

    model_config = ConfigDict(extra="forbid")

    policy: PromotionPolicy = PromotionPolicy()
    approval: ApprovalSettings = ApprovalSettings()
    evaluation_segment: EvaluationSegment = "test"
    windows: WindowSettings = WindowSettings()
    force: Annotated[
        bool, Field(title="Force", description="Train even when the data has not changed since the last version.")
    ] = False
    freshness: DataFreshness = DataFreshness()

    def flow_parameters(self) -> dict[str, Any]:
        """Keyword arguments for the retrain flow (pydantic models, as the flow takes them)."""
        return {name: getattr(self, name) for name in type(self).model_fields}


_GUARDRAIL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=)\s*([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*$")


def parse_guardrail(text: str) -> Guardrail:
    """`max_drawdown>=-0.15` (a floor) or `ic_std<=0.1` (a ceiling) as a Guardrail."""
    match = _GUARDRAIL.match(text)
    if match is None:
        raise ValueError(f"guardrail {text!r} must look like METRIC>=NUMBER or METRIC<=NUMBER, e.g. max_drawdown>=-0.15")
    metric, op, number = match.groups()
    value = float(number)
    return Guardrail(metric=metric, min_value=value) if op == ">=" else Guardrail(metric=metric, max_value=value)


def load_policy_file(path: Path) -> dict[str, Any]:
    """A YAML file of PromotionPolicy fields (the `policy:` block of prefect.yaml), as a mapping."""
    try:
        content = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read policy file {path}: {exc}") from exc
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ValueError(f"policy file {path} must hold a mapping of policy fields, got {type(content).__name__}")
    return content
