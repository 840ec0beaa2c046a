"""The approval form the Prefect UI shows on Resume (and `qmp approve` fills in)."""

from __future__ import annotations

from typing import Literal

from prefect.input import RunInput
from pydantic import Field


class ApprovalInput(RunInput):
    """An explicit decision: there is deliberately no default, so a form submitted without a choice is refused."""

    decision: Literal["approve", "reject"] = Field(
        title="Decision",
        description="approve: promote this candidate to production. reject: it stays a candidate. No default: choose one.",
    )
    approver: str = Field(min_length=1, max_length=256, description="Your name; recorded in the registry history.")
    comment: str = Field("", max_length=2000, description="Why; recorded in the registry history.")


def approval_form(description: str) -> type[ApprovalInput]:
    """The form with the comparison as its text; `with_initial_data` gets no field values, so none has a default."""
    return ApprovalInput.with_initial_data(description=description)
