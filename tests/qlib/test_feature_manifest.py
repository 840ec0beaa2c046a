"""The data manifest decides whether a change of the data only appended days (extend the cache) or not (rebuild)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.core.data.qlib_binary import read_calendar
from tasks.core.data.synthetic import synthesize
from tasks.core.features.cache import DataManifest, build_manifest
from tests.qlib.feature_data import append_days, rewrite_value, write_prefix


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("full") / "data", instruments=6, start="2021-01-01",
                      end="2021-04-30", seed=2).out


@pytest.fixture
def before(full: Path, tmp_path: Path) -> tuple[Path, DataManifest]:
    out = tmp_path / "data"
    write_prefix(full, out, drop_days=5)
    manifest, appended = build_manifest(out)
    assert not appended  # nothing to compare with
    return out, manifest


def test_appended_days_are_an_append(full: Path, before: tuple[Path, DataManifest]) -> None:
    data, old = before
    append_days(full, data)
    new, appended = build_manifest(data, DataManifest.read_text(old.to_json()))
    assert appended and new.version != old.version


def test_unchanged_data_is_the_same_version(before: tuple[Path, DataManifest]) -> None:
    data, old = before
    new, _ = build_manifest(data, old)
    assert new.version == old.version


def test_rewritten_past_value_is_not_an_append(full: Path, before: tuple[Path, DataManifest]) -> None:
    data, old = before
    append_days(full, data)
    symbol = next(iter(old.instruments["all"]))[0]
    rewrite_value(data, symbol, "close", 10, 1.01)
    assert not build_manifest(data, old)[1]


def test_moved_listing_date_is_not_an_append(full: Path, before: tuple[Path, DataManifest]) -> None:
    data, old = before
    universe = data / "instruments" / "all.txt"
    lines = universe.read_text().splitlines()
    symbol, _, end = lines[0].split("\t")
    universe.write_text("\n".join([f"{symbol}\t2021-01-05\t{end}", *lines[1:]]) + "\n")
    assert not build_manifest(data, old)[1]


def test_instrument_listed_after_the_old_end_is_an_append(full: Path, before: tuple[Path, DataManifest]) -> None:
    data, old = before
    append_days(full, data)
    last = f"{read_calendar(data)[-1]:%Y-%m-%d}"
    source = next((data / "features").iterdir())
    (data / "features" / "sz999999").mkdir()
    for path in source.iterdir():
        (data / "features" / "sz999999" / path.name).write_bytes(path.read_bytes())
    with (data / "instruments" / "all.txt").open("a") as handle:
        handle.write(f"SZ999999\t{last}\t{last}\n")
    assert build_manifest(data, old)[1]


def test_removed_data_file_is_not_an_append(full: Path, before: tuple[Path, DataManifest]) -> None:
    data, old = before
    append_days(full, data)
    next((data / "features").iterdir()).joinpath("vwap.day.bin").unlink()
    assert not build_manifest(data, old)[1]
