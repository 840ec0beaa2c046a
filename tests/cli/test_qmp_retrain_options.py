"""`qmp retrain`'s policy options: checked before anything runs, one error line, one options model."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from deployments.cli import app
from deployments.cli.retrain import build_options
from deployments.serve import PREFECT_YAML
from flows.options import EXAMPLES_DIR, RetrainOptions, parse_guardrail, resolve_config_path
from registry.policy import Guardrail
from tests.cli.test_qmp_models import qmp

CONFIG = EXAMPLES_DIR / "workflow_config_linear_Alpha158.yaml"
runner = CliRunner()


def test_flags_override_the_policy_file_and_guardrails_add_up(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump({
        "primary_metric": "icir", "min_improvement": 0.1, "approval": "manual",
        "guardrails": [{"metric": "ic_std", "max_value": 0.2}],
    }))
    options = build_options(policy_file=policy_file, min_improvement=0.02, min_relative_improvement=0.05,
                            guardrails=["max_drawdown>=-0.15"], approval_timeout=600)
    policy = options.policy
    assert (policy.primary_metric, policy.min_improvement, policy.min_relative_improvement) == ("icir", 0.02, 0.05)
    assert policy.approval == "manual"
    assert policy.guardrails == [Guardrail(metric="ic_std", max_value=0.2), Guardrail(metric="max_drawdown", min_value=-0.15)]
    assert options.approval.timeout_seconds == 600
    assert build_options(approval="always").policy.approval == "always"


def test_guardrail_text_is_a_floor_or_a_ceiling() -> None:
    assert parse_guardrail("max_drawdown>=-0.15") == Guardrail(metric="max_drawdown", min_value=-0.15)
    assert parse_guardrail(" ic_std <= 1e-1 ") == Guardrail(metric="ic_std", max_value=0.1)
    for bad in ("max_drawdown>-0.15", "max_drawdown", ">=0.1", "ic=0.1", "ic>=abc"):
        with pytest.raises(ValueError, match="METRIC>=NUMBER"):
            parse_guardrail(bad)


@pytest.mark.parametrize(("args", "message"), [
    (["--guardrail", "max_drawdown>-0.15"], "max_drawdown>-0.15"),
    (["--min-improvement", "-0.1"], "policy.min_improvement"),
    (["--approval", "sometimes"], "sometimes"),
    (["--approval-timeout", "1"], "approval.timeout_seconds"),
])
def test_bad_options_stop_before_anything_runs_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], message: str,
) -> None:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "registry"))
    code, out, err = qmp("retrain", "--config", str(CONFIG), "--model-name", "m", *args, capsys=capsys,
                         monkeypatch=monkeypatch)
    if args[0] == "--approval":  # Typer's own usage error for a value that is not a choice
        assert code == 2 and message in err
    else:
        assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in out + err
    assert not (tmp_path / "registry").exists()


def test_a_policy_file_with_an_unknown_field_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QMP_REGISTRY_DIR", str(tmp_path / "registry"))
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("primary_metric: ic_mean\nmin_improvment: 0.1\n")
    code, _, err = qmp("retrain", "--config", str(CONFIG), "--model-name", "m", "--policy", str(policy_file),
                       capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1
    assert "policy.min_improvment" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "registry").exists()


def test_help_documents_the_approval_modes_and_the_policy_options() -> None:
    result = runner.invoke(app, ["retrain", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
    for option in ("--primary-metric", "--min-improvement", "--min-relative-improvement", "--guardrail", "--policy",
                   "--approval-timeout"):
        assert option in text
    assert "only when it beats production" in text and "always: pause for every candidate" in text


def test_the_flow_parameters_are_the_options_model_plus_model_and_workflow() -> None:
    from flows.retrain import retrain

    parameters = set(inspect.signature(retrain.fn).parameters)
    assert parameters == {"model_name", "workflow", *RetrainOptions.model_fields}
    for name, field in RetrainOptions.model_fields.items():
        assert inspect.signature(retrain.fn).parameters[name].default == field.get_default(call_default_factory=True)


def test_the_retrain_deployment_parameters_are_retrain_options() -> None:
    retrain = next(d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"] if d["name"].startswith("retrain"))
    params = dict(retrain["parameters"])
    params.pop("model_name"), params.pop("workflow")
    options = RetrainOptions.model_validate(params)
    # The shipped deployment rolls its windows and raises the stale-data alarm in Shanghai time; the rest
    # are the options' defaults.
    assert options.windows.mode == "rolling"
    assert options.freshness.timezone == "Asia/Shanghai"
    assert options.model_copy(update={"windows": RetrainOptions().windows,
                                      "freshness": RetrainOptions().freshness}) == RetrainOptions()


def test_shipped_example_paths_resolve_from_the_package_in_any_directory(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shipped = resolve_config_path("examples/workflow_config_lightgbm_Alpha158.yaml")
    assert shipped == EXAMPLES_DIR / "workflow_config_lightgbm_Alpha158.yaml" and shipped.is_file()
    (tmp_path / "examples").mkdir()
    own = tmp_path / "examples" / "workflow_config_lightgbm_Alpha158.yaml"
    own.write_text("x: 1\n")
    assert resolve_config_path("examples/workflow_config_lightgbm_Alpha158.yaml").resolve() == own
    assert resolve_config_path("other/x.yaml") == Path("other/x.yaml")
    assert sys.modules.get("deployments.cli") is not None
