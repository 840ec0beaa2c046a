"""Windows on the data calendar: Qlib's truncation rule, the scheduled window, and no look-ahead in a built dataset."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
from qlib.data import D
from qlib.data.dataset import DatasetH
from qlib.utils import init_instance_by_config
from qlib.workflow.task.gen import RollingGen

from tasks.core.qlib.workflow_config import load_workflow_config
from tasks.core.windows.placement import (
    CalendarAdjuster,
    Window,
    WindowError,
    apply_window,
    feature_lookback,
    handler_fields,
    label_horizon,
    scheduled_window,
    truncate_window,
)
from tests.qlib.conftest import LIGHTGBM_YAML, LINEAR_YAML

CALENDAR = pd.bdate_range("2020-01-01", periods=400)


def idx(day: pd.Timestamp, calendar: pd.DatetimeIndex = CALENDAR) -> int:
    return int(calendar.get_loc(day))


def test_truncation_ends_train_and_valid_days_before_the_test_start() -> None:
    segments = {
        "train": ("2020-01-02", "2020-06-30"),
        "valid": ("2020-07-01", "2020-08-31"),
        "test": ("2020-09-01", "2020-12-31"),
    }
    window = truncate_window(CALENDAR, segments, days=3)
    test_start = idx(window.test[0])
    assert idx(window.segments["valid"][1]) == test_start - 3
    assert window.segments["train"][1] == pd.Timestamp("2020-06-30")  # already far enough before the test
    assert (window.fit_start_time, window.fit_end_time) == window.segments["train"]
    assert (window.start_time, window.end_time) == (window.segments["train"][0], window.test[1])


def test_horizon_ends_the_test_segment_before_the_anchor() -> None:
    segments = {"train": ("2020-01-02", "2020-06-30"), "test": ("2020-09-01", "2030-01-01")}
    window = truncate_window(CALENDAR, segments, days=3, horizon=2)
    assert idx(window.test[1]) == len(CALENDAR) - 1 - 2
    anchored = truncate_window(CALENDAR, segments, days=3, horizon=2, anchor="2020-12-31")
    assert idx(anchored.test[1]) == idx(pd.Timestamp("2020-12-31")) - 2


def test_qlib_compatible_truncation_is_one_day_less() -> None:
    segments = {"train": ("2020-01-02", "2020-08-31"), "test": ("2020-09-01", "2020-12-31")}
    ours = truncate_window(CALENDAR, segments, days=2 + 1)
    qlib_rolling = truncate_window(CALENDAR, segments, days=2)
    assert idx(qlib_rolling.segments["train"][1]) == idx(ours.segments["train"][1]) + 1


def test_segments_reaching_the_calendar_start_are_refused_in_one_line() -> None:
    segments = {"train": ("2020-01-01", "2020-01-03"), "test": ("2020-01-06", "2020-02-28")}
    with pytest.raises(WindowError, match="calendar's first day 2020-01-01") as caught:
        truncate_window(CALENDAR, segments, days=3)
    assert "\n" not in str(caught.value)


def scheduled(calendar: pd.DatetimeIndex, **overrides: object) -> Window:
    settings: dict[str, object] = dict(train_days=120, valid_days=30, test_days=40, horizon=2, lookback=60)
    settings.update(overrides)
    return scheduled_window(CalendarAdjuster(calendar), **settings)  # type: ignore[arg-type]


def test_scheduled_window_has_the_asked_lengths_and_no_look_ahead() -> None:
    window = scheduled(CALENDAR)
    lengths = {name: idx(end) - idx(start) + 1 for name, (start, end) in window.segments.items()}
    assert lengths == {"train": 120, "valid": 30, "test": 40}
    assert idx(window.test[1]) + 2 == len(CALENDAR) - 1
    for name in ("train", "valid"):
        assert idx(window.segments[name][1]) + 2 < idx(window.test[0])
    assert idx(window.segments["valid"][0]) == idx(window.segments["train"][1]) + 1


def test_appended_days_move_every_segment_by_exactly_the_new_days() -> None:
    first = scheduled(CALENDAR[:-7])
    second = scheduled(CALENDAR)
    for name in ("train", "valid", "test"):
        for before, after in zip(first.segments[name], second.segments[name], strict=True):
            assert idx(after) - idx(before) == 7


def test_expanding_window_keeps_its_train_start() -> None:
    first = scheduled(CALENDAR[:-20], kind="expanding", train_start="2020-04-01")
    second = scheduled(CALENDAR, kind="expanding", train_start="2020-04-01")
    assert first.segments["train"][0] == second.segments["train"][0] == pd.Timestamp("2020-04-01")
    assert idx(second.segments["train"][1]) - idx(first.segments["train"][1]) == 20


def test_a_calendar_too_short_for_the_window_and_the_look_back_is_refused() -> None:
    with pytest.raises(WindowError) as caught:
        scheduled(CALENDAR[:250])
    message = str(caught.value)
    assert "\n" not in message
    assert "the calendar has 250 trading days" in message
    assert "look-back 60" in message and "missing" in message
    assert scheduled(CALENDAR[:254]).segments["train"][0] == CALENDAR[60]
    with pytest.raises(WindowError, match=r"needs 254 .*: 1 missing"):
        scheduled(CALENDAR[:253])


def test_apply_window_moves_handler_times_and_backtest_dates(tmp_path: Path) -> None:
    cfg = load_workflow_config(LIGHTGBM_YAML, provider_uri=tmp_path)
    window = scheduled(CALENDAR)
    moved = apply_window(cfg.raw, window)
    handler = moved["task"]["dataset"]["kwargs"]["handler"]["kwargs"]
    assert {k: handler[k] for k in window.handler_times()} == window.handler_times()
    assert moved["task"]["dataset"]["kwargs"]["segments"] == window.segments_text()
    port = load_workflow_config(moved, provider_uri=tmp_path).port_analysis
    assert port is not None
    assert [port["backtest"]["start_time"], port["backtest"]["end_time"]] == window.segments_text()["test"]
    assert cfg.raw["task"]["dataset"]["kwargs"]["segments"]["test"][0] != window.segments_text()["test"][0]


def test_a_cached_handler_file_cannot_be_moved(tmp_path: Path) -> None:
    raw = copy.deepcopy(load_workflow_config(LIGHTGBM_YAML, provider_uri=tmp_path).raw)
    raw["task"]["dataset"]["kwargs"]["handler"] = "file:///tmp/Alpha158.pkl"
    with pytest.raises(WindowError, match="cannot be moved"):
        apply_window(raw, scheduled(CALENDAR))


def test_label_horizon_and_feature_lookback_of_alpha158(qlib_on_data: Path) -> None:
    cfg = load_workflow_config(LIGHTGBM_YAML, provider_uri=qlib_on_data)
    features, labels = handler_fields(cfg.dataset["kwargs"]["handler"])
    assert label_horizon(labels) == 2
    assert label_horizon(["Ref($close, -21)/Ref($close, -1) - 1"]) == 21
    assert feature_lookback(features) == 60
    assert len(features) == 158


def test_windows_agree_with_qlib_rolling_gen(qlib_on_data: Path) -> None:
    cfg = load_workflow_config(LIGHTGBM_YAML, provider_uri=qlib_on_data)
    generator = RollingGen(step=40, rtype=RollingGen.ROLL_SD, trunc_days=3, ds_extra_mod_func=None)
    task = copy.deepcopy(cfg.task)
    task["dataset"]["kwargs"]["segments"]["train"][0] = "2021-03-01"  # Qlib's truncate needs data before it
    tasks = generator.generate(task)
    assert len(tasks) > 2
    for task in tasks:
        segments = task["dataset"]["kwargs"]["segments"]
        window = truncate_window(generator.ta, segments, days=3)
        # RollingGen leaves the last test segment open-ended (None): it runs to the calendar's end.
        expected = {
            k: (pd.Timestamp(a), pd.Timestamp(b or generator.ta.max())) for k, (a, b) in segments.items()
        }
        assert window.segments == expected
    last = truncate_window(generator.ta, tasks[-1]["dataset"]["kwargs"]["segments"], days=3, horizon=2)
    assert last.test[1] == generator.ta.get(len(generator.ta.cals) - 1 - 2)


@pytest.mark.parametrize("yaml_path", [LINEAR_YAML], ids=["linear"])
def test_rolled_dataset_has_no_look_ahead_and_fits_processors_on_the_train_span(
    qlib_on_data: Path, yaml_path: Path
) -> None:
    cfg = load_workflow_config(yaml_path, provider_uri=qlib_on_data)
    calendar = pd.DatetimeIndex(D.calendar(freq="day"))
    anchor = calendar[-30]
    features, labels = handler_fields(cfg.dataset["kwargs"]["handler"])
    h = label_horizon(labels)
    window = scheduled_window(
        None,
        train_days=150,
        valid_days=40,
        test_days=60,
        horizon=h,
        lookback=feature_lookback(features),
        anchor=anchor,
    )
    dataset = init_instance_by_config(apply_window(cfg.raw, window)["task"]["dataset"], accept_types=DatasetH)
    first_test = idx(window.test[0], calendar)
    for segment in ("train", "valid"):
        days = dataset.prepare(segment, col_set="label").index.get_level_values("datetime").unique()
        assert len(days) and all(idx(t, calendar) + h < first_test for t in days)
    test_days = dataset.prepare("test", col_set="label").index.get_level_values("datetime").unique()
    assert len(test_days) == 60
    assert all(idx(t, calendar) + h <= idx(anchor, calendar) for t in test_days)
    handler = dataset.handler
    processors = [*handler.infer_processors, *handler.learn_processors]
    fitted = [p for p in processors if hasattr(p, "fit_start_time")]
    assert fitted, "the Linear YAML's RobustZScoreNorm is fitted on a span"
    for processor in fitted:
        assert (
            pd.Timestamp(processor.fit_start_time),
            pd.Timestamp(processor.fit_end_time),
        ) == window.segments["train"]
