"""Pure unit tests of the status values and the transition table (no database)."""

from __future__ import annotations

import itertools

import pytest

from registry import InvalidStatusError, InvalidTransitionError, ModelStatus
from registry.statuses import ALLOWED_TRANSITIONS, check_transition, parse_status

S = ModelStatus
EXPECTED_ALLOWED = {
    (S.REGISTERED, S.CANDIDATE),
    (S.REGISTERED, S.ARCHIVED),
    (S.CANDIDATE, S.REGISTERED),
    (S.CANDIDATE, S.ARCHIVED),
    (S.ARCHIVED, S.REGISTERED),
}


def test_the_four_seed_statuses_exist() -> None:
    assert {s.value for s in ModelStatus} == {"registered", "candidate", "production", "archived"}


def test_parse_status_accepts_strings_and_members() -> None:
    assert parse_status("candidate") is S.CANDIDATE
    assert parse_status(S.ARCHIVED) is S.ARCHIVED


@pytest.mark.parametrize("bad", ["Production", "deployed", "", "archived "])
def test_unknown_status_raises_invalid_status_error(bad: str) -> None:
    with pytest.raises(InvalidStatusError, match="unknown status"):
        parse_status(bad)


def test_transition_table_is_exactly_the_documented_one() -> None:
    assert set(ALLOWED_TRANSITIONS) == EXPECTED_ALLOWED


@pytest.mark.parametrize("pair", sorted(itertools.permutations(ModelStatus, 2)))
def test_check_transition_follows_the_table(pair: tuple[ModelStatus, ModelStatus]) -> None:
    current, target = pair
    if pair in EXPECTED_ALLOWED:
        check_transition("m_v1.0.0", current, target)
    else:
        with pytest.raises(InvalidTransitionError):
            check_transition("m_v1.0.0", current, target)


@pytest.mark.parametrize("target", [S.CANDIDATE, S.REGISTERED, S.ARCHIVED])
def test_production_leaves_only_with_force(target: ModelStatus) -> None:
    with pytest.raises(InvalidTransitionError, match="in production"):
        check_transition("m_v1.0.0", S.PRODUCTION, target)
    check_transition("m_v1.0.0", S.PRODUCTION, target, force=True)


def test_invalid_transition_is_an_invalid_status_error() -> None:
    assert issubclass(InvalidTransitionError, InvalidStatusError)
