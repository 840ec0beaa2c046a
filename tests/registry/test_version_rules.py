"""Pure unit tests of version parsing, ordering and allocation (no database)."""

from __future__ import annotations

import pytest

from registry import InvalidNameError
from registry.versions import Version, next_version, parse_version


def test_short_and_full_versions_parse_to_the_same_semantic_version() -> None:
    assert parse_version("1.0") == parse_version("1.0.0") == parse_version("1") == Version(1, 0, 0, "")


def test_prerelease_label_is_kept() -> None:
    assert parse_version("2.0.0-rc1") == Version(2, 0, 0, "rc1")


def test_semantic_order_puts_1_10_after_1_9_and_release_after_prerelease() -> None:
    texts = ["1.10.0", "1.9.0", "2.0.0", "2.0.0-rc1", "1.2.3"]
    ordered = sorted(texts, key=lambda t: parse_version(t).sort_key)
    assert ordered == ["1.2.3", "1.9.0", "1.10.0", "2.0.0-rc1", "2.0.0"]


def test_first_automatic_version_is_1_0_0_then_minor_bumps() -> None:
    assert next_version(None) == "1.0.0"
    assert next_version(parse_version("1.0.0")) == "1.1.0"
    assert next_version(parse_version("1.9.3")) == "1.10.0"
    assert next_version(parse_version("2.0.0-rc1")) == "2.1.0"


@pytest.mark.parametrize(
    "bad",
    ["", "v1.0", "1.0/2", "1.0\\2", "../1.0", "1.0.0.0", "1.0-", "1.0-..", "1.0-a..b", "1.0\n", "1.0.0-rc1\n",
     "1 .0", "1234567890.0", "1.0-" + "a" * 40, "١.٠"],
)
def test_malformed_version_raises_invalid_name_error(bad: str) -> None:
    with pytest.raises(InvalidNameError):
        parse_version(bad)


def test_non_string_version_raises_invalid_name_error() -> None:
    with pytest.raises(InvalidNameError):
        parse_version(1.0)  # type: ignore[arg-type]
