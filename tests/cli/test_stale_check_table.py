"""`qmp approve` draws the stale-approval check as a table: per metric the candidate against production (today's,
on the candidate's window, when it changed), the policy's primary metric first, the verdict in the caption."""

from __future__ import annotations

from datetime import timedelta

from rich.console import Console

from deployments.cli.approvals import stale_check_table
from registry import Approval, Approvals, ModelMetadata, ModelRegistry
from registry.settings import load_settings
from tasks.core.approvals.requests import StaleCheck, check_still_better

POLICY = {"primary_metric": "rank_ic", "guardrails": [{"metric": "max_drawdown", "min_value": -0.5}]}


def _drawn(check: StaleCheck, approval: Approval, mark: str) -> list[str]:
    console = Console(width=200, record=True)
    console.print(stale_check_table(check, approval, mark))
    return [line.rstrip() for line in console.export_text().splitlines()]


def _words(lines: list[str]) -> str:
    """The drawing as one line of words (the caption wraps to the table's width)."""
    return " ".join(" ".join(lines).split())


def _row(lines: list[str], metric: str) -> list[str]:
    [line] = [line for line in lines if line.split("│")[1:2] and line.split("│")[1].strip() == metric]
    return [cell.strip() for cell in line.split("│")[1:-1]]


def _request(registry: ModelRegistry, production: str | None) -> Approval:
    candidate = registry.register_model({"w": 2}, ModelMetadata(model_name="tbl", performance_metrics={"rank_ic": 0.05}))
    approval, _superseded = Approvals(registry).request(
        candidate, production_model_id=production,
        candidate_metrics={"ic_mean": 0.04, "rank_ic": 0.05, "max_drawdown": -0.2},
        production_metrics={"ic_mean": 0.01, "rank_ic": 0.02, "max_drawdown": -0.3},
        reasons=["better"], policy=POLICY, timeout=timedelta(hours=1))
    return approval


def test_an_unchanged_production_shows_the_requests_comparison_primary_metric_first(registry: ModelRegistry) -> None:
    production = registry.register_model({"w": 1}, ModelMetadata(model_name="tbl", performance_metrics={"rank_ic": 0.02}))
    registry.set_production_model(production, reason="baseline")
    approval = _request(registry, production)
    check = check_still_better(approval, registry, settings=load_settings())
    lines = _drawn(check, approval, "ok")
    assert lines[0].startswith("stale-approval check (ok)")
    metrics = [cells[0] for cells in (_row(lines, m) for m in ("rank_ic", "max_drawdown", "ic_mean"))]
    body = [line.split("│")[1].strip() for line in lines if line.count("│") == 5]
    assert body == metrics == ["rank_ic", "max_drawdown", "ic_mean"]  # primary, guardrail, the rest
    assert _row(lines, "rank_ic") == ["rank_ic", "0.0500", "0.0200", "+0.0300"]
    assert f"production {production} as requested" in lines[2]
    assert "production unchanged since the request; the request's comparison stands" in _words(lines)


def test_production_gone_since_the_request_shows_no_production_value(registry: ModelRegistry) -> None:
    former = registry.register_model({"w": 1}, ModelMetadata(model_name="tbl", performance_metrics={"rank_ic": 0.02}))
    approval = _request(registry, former)  # `former` is not production any more (here: never was)
    check = check_still_better(approval, registry, settings=load_settings())
    assert check.production_changed and check.ok
    lines = _drawn(check, approval, "ok")
    assert _row(lines, "rank_ic") == ["rank_ic", "0.0500", "-", "-"]
    assert f"production changed: {former} -> none; the candidate still beats production" in _words(lines)


def test_a_failing_check_shows_both_models_on_the_window_and_the_verdict(registry: ModelRegistry) -> None:
    approval = _request(registry, None)
    check = StaleCheck(
        production_changed=True, still_better=False, current_production_id="tbl_v9.0.0", window="2022-07-01..2022-12-30",
        reasons=["production changed since the request: none -> tbl_v9.0.0", "not better: rank_ic ..."],
        production_metrics_on_window={"rank_ic": 0.07, "max_drawdown": -0.1},
        candidate_metrics_on_window={"rank_ic": 0.03, "max_drawdown": -0.2},
    )
    for mark, verdict in (("fails", "no longer beats production"),
                          ("forced", "no longer beats production; approved anyway (--force)")):
        lines = _drawn(check, approval, mark)
        assert lines[0].startswith(f"stale-approval check ({mark})")
        assert "production tbl_v9.0.0" in lines[2]
        assert "production changed: none -> tbl_v9.0.0; both scored on 2022-07-01..2022-12-30;" in _words(lines)
        assert _row(lines, "rank_ic") == ["rank_ic", "0.0300", "0.0700", "-0.0400"]  # the window's, not the request's
        assert _row(lines, "max_drawdown") == ["max_drawdown", "-0.2000", "-0.1000", "-0.1000"]
        assert f"the candidate {verdict}" in _words(lines)
