"""No value, name or text the registry accepts makes a page fail: every page and JSON twin, rendered over
generated registries (Hypothesis), answers 200 with finite JSON."""

from __future__ import annotations

import itertools
import json
import sys
from datetime import date, timedelta
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from deployments.ui.app import create_app
from registry import EvaluationSeries, ModelMetadata, ModelRegistry
from registry.series import CUMULATIVE_EXCESS_RETURN, DAILY_IC
from tests.ui.conftest import request_approval, ui_settings

COUNTER = itertools.count()
finite = st.floats(allow_nan=False, allow_infinity=False)
extreme = st.one_of(finite, st.sampled_from([sys.float_info.max, -sys.float_info.max, 5e-324, -0.0, 1e-15, 162.0]))
text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=120)
hostile = st.one_of(text, st.sampled_from(["<missing>", "\u202eevil\u202c", "\u2066x\u2069", "x" * 256, "<b>&amp;"]))
metric_names = st.sampled_from(["ic_mean", "rank_ic", "icir", "annualized_return", "max_drawdown", "ic_std",
                                "test_days", "turnover", "custom metric %"])
metric_sets = st.dictionaries(metric_names, extreme, max_size=9)
json_values = st.recursive(st.one_of(st.none(), st.booleans(), finite, hostile), lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
series_values = st.lists(st.one_of(st.none(), extreme), min_size=1, max_size=40)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    registry = ModelRegistry(tmp_path_factory.mktemp("property") / "registry")
    with TestClient(create_app(ui_settings(), registry=registry), raise_server_exceptions=False) as client:
        yield registry, client
    registry.close()


def _series(values: list[float | None]) -> dict[str, EvaluationSeries]:
    dates = [date(2020, 1, 1) + timedelta(days=i) for i in range(len(values))]
    return {DAILY_IC: EvaluationSeries(dates=dates, values=values),
            CUMULATIVE_EXCESS_RETURN: EvaluationSeries(dates=dates, values=values)}


def _refuse(constant: str) -> None:
    raise ValueError(f"not JSON: {constant}")


def _paths(name: str, ids: list[str]) -> list[str]:
    q = quote(name, safe="")
    paths = ["/", "/api/overview", "/approvals", "/api/approvals", f"/models/{q}", f"/api/models/{q}"]
    for model_id in ids:
        version = quote(model_id.removeprefix(f"{name}_v"), safe="")
        paths += [f"/models/{q}/versions/{version}", f"/api/models/{q}/versions/{version}"]
    a, b = quote(ids[0], safe=""), quote(ids[-1], safe="")
    return [*paths, f"/compare?a={a}&b={b}", f"/api/compare?a={a}&b={b}"]


@example(name_tail="x" * 60, versions=[({"ic_mean": -1.7e308, "test_days": 162.0}, {"k": "<missing>"}, "\u202e", [1.7e308]),
                                        ({"ic_mean": 1.7e308, "test_days": 5e-324}, {"k": "\u03a9<"}, "d", [-1.7e308, None])],
         reason="r" * 256, flow_run_id="../../evil")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(name_tail=st.from_regex(r"[A-Za-z0-9_-]{0,60}", fullmatch=True), versions=st.lists(
    st.tuples(metric_sets, st.dictionaries(st.text(min_size=1, max_size=12), json_values, max_size=4), hostile,
              series_values), min_size=1, max_size=3),
       reason=hostile, flow_run_id=st.one_of(st.none(), hostile.filter(lambda s: 0 < len(s) <= 200)))
def test_every_page_renders_any_accepted_registry(world, name_tail: str, versions: list, reason: str,  # type: ignore[no-untyped-def]
                                                  flow_run_id: str | None) -> None:
    registry, client = world
    name = f"p{next(COUNTER)}{name_tail}"[:100]
    ids = []
    for metrics, hyper, description, values in versions:
        meta = ModelMetadata(model_name=name, performance_metrics=metrics, hyperparameters=hyper,
                             description=description, tags={"note": description}, model_type="LGBModel")
        ids.append(registry.register_model({"v": len(ids)}, meta, actor="prop", reason=reason, flow_run_id=flow_run_id,
                                           evaluation_series=_series(values)))
    registry.set_production_model(ids[0], actor="prop", reason=reason)
    if len(ids) > 1:
        request_approval(registry, registry.get_model_info(ids[-1]), registry.get_model_info(ids[0]), [reason],
                         flow_run_id=flow_run_id)
    for path in _paths(name, ids):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        if path.startswith("/api"):
            json.loads(response.text, parse_constant=_refuse)  # strict JSON: no NaN or Infinity
