"""Qlib workflow configurations: the ``qlib_init`` / ``task: {model, dataset, record}`` YAML that ``qrun`` runs.

Files are read as ``qrun`` reads them: ``{{ VAR }}`` rendered from the environment, YAML anchors
and aliases resolved, ``BASE_CONFIG_PATH`` merged underneath, the ``sys`` section's paths added.
The ``<MODEL>``, ``<DATASET>`` and ``<PRED>`` placeholders stay in the configuration and are filled
by :func:`fill_placeholders` once the model, the dataset and the predictions exist (as ``qrun`` and
``PortAnaRecord`` fill them). The data directory comes from, in order: the explicit ``provider_uri``
argument, the ``QMP_PROVIDER_URI`` setting, the YAML's ``qlib_init.provider_uri``. Thread counts
above the machine's cores are capped, since oversubscription only slows training down.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import TemplateError
from pydantic import BaseModel, ConfigDict

# Imported here, when the flow module is, and not on first use: importing qlib.cli.run reconfigures logging
# (logging.config.dictConfig, which shuts the existing handlers down under logging's lock). Inside a Prefect
# run that flushes Prefect's API log handler while its worker thread may be waiting for the same lock, and
# the flush gives up only after Prefect's guard times out (how often and how long: benchmarks/README.md).
from qlib.cli.run import render_template, sys_config
from qlib.utils.data import update_config

from registry.settings import load_settings
from tasks.core.errors import PipelineInputError

THREAD_KEYS = frozenset({"num_threads", "nthread", "n_jobs", "n_threads", "thread_count", "kernels"})
DEFAULT_LABEL = "Ref($close, -2)/Ref($close, -1) - 1"  # Alpha158 / Alpha360 default
_log = logging.getLogger(__name__)


class WorkflowConfigError(PipelineInputError):
    """A workflow configuration is missing a required part or cannot be read."""


class DatasetInfo(BaseModel):
    """What the registry records about the dataset a model was trained on."""

    instruments: str | list[str] | None = None
    start_time: str | None = None
    end_time: str | None = None
    fit_start_time: str | None = None
    fit_end_time: str | None = None
    handler: str | None = None
    label: list[str] = []
    segments: dict[str, list[str]] = {}
    benchmark: str | None = None


class WorkflowConfig(BaseModel):
    """A parsed qrun workflow: the sections the pipeline uses plus the raw (resolved) YAML."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    qlib_init: dict[str, Any]
    model: dict[str, Any]
    dataset: dict[str, Any]
    records: list[dict[str, Any]]
    port_analysis: dict[str, Any] | None
    raw: dict[str, Any]
    source: str | None = None

    @property
    def task(self) -> dict[str, Any]:
        """The ``task`` section as ``qrun`` passes it to ``task_train``."""
        return {"model": self.model, "dataset": self.dataset, "record": self.records}

    @property
    def experiment_name(self) -> str | None:
        """The YAML's ``experiment_name`` (qrun's experiment), if it sets one."""
        name = self.raw.get("experiment_name")
        return str(name) if name else None

    @property
    def model_type(self) -> str:
        """The model class name, e.g. ``LGBModel``."""
        return str(self.model["class"]).rsplit(".", 1)[-1]

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The model's constructor kwargs."""
        return dict(self.model.get("kwargs") or {})

    def require_data_dir(self) -> WorkflowConfig:
        """This configuration, or WorkflowConfigError when its data directory does not exist."""
        path = Path(self.provider_uri).expanduser()
        if "://" not in self.provider_uri and not path.is_dir():
            raise WorkflowConfigError(
                f"{self.source}: Qlib data directory {path} does not exist "
                "(from --provider-uri, QMP_PROVIDER_URI or qlib_init.provider_uri)"
            )
        return self

    @property
    def provider_uri(self) -> str:
        """The Qlib data directory this configuration runs on."""
        return str(self.qlib_init["provider_uri"])

    @property
    def dataset_info(self) -> DatasetInfo:
        """Instruments, dates, handler, label and segments of the dataset section."""
        kwargs = self.dataset.get("kwargs") or {}
        handler = kwargs.get("handler") or {}
        handler_kwargs = (handler.get("kwargs") or {}) if isinstance(handler, Mapping) else {}
        labels = _label_expressions(handler_kwargs.get("label"))
        segments = {name: [_text(v) for v in span] for name, span in (kwargs.get("segments") or {}).items()}
        benchmark = ((self.port_analysis or {}).get("backtest") or {}).get("benchmark")
        return DatasetInfo(
            instruments=handler_kwargs.get("instruments"),
            start_time=_text(handler_kwargs.get("start_time")),
            end_time=_text(handler_kwargs.get("end_time")),
            fit_start_time=_text(handler_kwargs.get("fit_start_time")),
            fit_end_time=_text(handler_kwargs.get("fit_end_time")),
            handler=str(handler.get("class")) if isinstance(handler, Mapping) else type(handler).__name__,
            label=labels,
            segments=segments,
            benchmark=str(benchmark) if benchmark else None,
        )


def _label_expressions(label: Any) -> list[str]:
    """Label expressions from a handler's ``label`` kwarg: text, a list, or ``(expressions, names)``."""
    if not label:
        return [DEFAULT_LABEL]
    if isinstance(label, str):
        return [label]
    if len(label) == 2 and isinstance(label[0], list | tuple):
        return [str(x) for x in label[0]]
    return [str(x) for x in label]


def _text(value: Any) -> str | None:
    """Dates from YAML arrive as ``datetime.date``; keep them as ISO text."""
    return None if value is None else str(value)


def load_workflow_config(
    source: str | Path | Mapping[str, Any], provider_uri: Path | str | None = None
) -> WorkflowConfig:
    """Parse a qrun YAML file (or an already-loaded dict) and apply the data-directory override."""
    raw, origin = _read(source)
    for section in ("qlib_init", "task"):
        if not isinstance(raw.get(section), Mapping):
            raise WorkflowConfigError(f"{origin}: missing '{section}' section")
    task = raw["task"]
    for part in ("model", "dataset"):
        if not isinstance(task.get(part), Mapping) or "class" not in task[part]:
            raise WorkflowConfigError(f"{origin}: 'task.{part}' needs a {{class, module_path, kwargs}} spec")
    records = task.get("record") or []
    records = [records] if isinstance(records, Mapping) else list(records)

    qlib_init = dict(raw["qlib_init"])
    override = load_settings(provider_uri=provider_uri).provider_uri
    if override is not None:
        qlib_init["provider_uri"] = str(Path(override).expanduser())
    if "provider_uri" not in qlib_init:
        raise WorkflowConfigError(
            f"{origin}: no provider_uri (set qlib_init.provider_uri or QMP_PROVIDER_URI)"
        )
    cores = os.cpu_count() or 1
    qlib_init = cap_threads(qlib_init, cores)
    model = cap_threads(dict(task["model"]), cores)
    raw = {**raw, "qlib_init": qlib_init, "task": {**task, "model": model}}
    return WorkflowConfig(
        qlib_init=qlib_init,
        model=model,
        dataset=dict(task["dataset"]),
        records=[dict(r) for r in records],
        port_analysis=_port_analysis(raw, records),
        raw=raw,
        source=origin,
    )


def _read(source: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """Load a workflow as qrun does: render, parse, merge ``BASE_CONFIG_PATH``, apply ``sys`` paths."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    if isinstance(source, Mapping):
        raw, origin, path = copy.deepcopy(dict(source)), "<inline config>", None
    else:
        path = Path(source).expanduser()
        origin = str(path)
        if not path.is_file():
            raise WorkflowConfigError(f"{path}: cannot read workflow config (no such file)")
        try:
            raw = YAML(typ="safe", pure=True).load(render_template(str(path)))
        except (YAMLError, TemplateError) as exc:
            raise WorkflowConfigError(f"{path}: invalid YAML ({exc})") from exc
        if not isinstance(raw, dict):
            raise WorkflowConfigError(f"{path}: expected a mapping at the top level")
    base_name = raw.get("BASE_CONFIG_PATH") or raw.get("base_config_path")
    if base_name:
        raw = update_config(_read_base(Path(base_name), path, origin), raw)
    if path is not None:
        sys_config(raw, str(path))
    return raw, origin


def _read_base(base: Path, config_path: Path | None, origin: str) -> dict[str, Any]:
    """The base configuration, found like qrun: as given (absolute or from cwd), else beside the config."""
    from ruamel.yaml import YAML

    candidates = [base] + ([config_path.absolute().parent / base] if config_path is not None else [])
    for candidate in candidates:
        if candidate.is_file():
            loaded = YAML(typ="safe", pure=True).load(candidate.read_text())
            return dict(loaded or {})
    raise WorkflowConfigError(f"{origin}: BASE_CONFIG_PATH {base} not found")


def _port_analysis(raw: dict[str, Any], records: list[Any]) -> dict[str, Any] | None:
    """The backtest config of the PortAnaRecord entry, else the top-level ``port_analysis_config``."""
    for record in records:
        if isinstance(record, Mapping) and str(record.get("class", "")).endswith("PortAnaRecord"):
            config = (record.get("kwargs") or {}).get("config")
            if config:
                return copy.deepcopy(dict(config))
    config = raw.get("port_analysis_config")
    return copy.deepcopy(dict(config)) if isinstance(config, Mapping) else None


def cap_threads(spec: dict[str, Any], cores: int) -> dict[str, Any]:
    """Copy of ``spec`` with thread-count settings (at any depth) capped at ``cores``."""

    def visit(node: Any) -> Any:
        if isinstance(node, Mapping):
            out = {}
            for key, value in node.items():
                if (
                    key in THREAD_KEYS
                    and isinstance(value, int)
                    and not isinstance(value, bool)
                    and value > cores
                ):
                    _log.info("capping %s=%d at %d cores", key, value, cores)
                    value = cores
                out[key] = visit(value)
            return out
        if isinstance(node, list):
            return [visit(item) for item in node]
        return node

    return visit(spec)


def fill_placeholders(config: Any, **values: Any) -> Any:
    """Copy of ``config`` with ``<MODEL>``-style placeholders (passed as ``MODEL=...``) filled by Qlib."""
    from qlib.utils import fill_placeholder

    return fill_placeholder(copy.deepcopy(config), {f"<{name}>": value for name, value in values.items()})
