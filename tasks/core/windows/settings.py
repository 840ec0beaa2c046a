"""The retrain's window settings as a plain pydantic model (no Qlib import: the CLI and the flow's
parameter models validate with it before anything heavy is loaded)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field


class WindowSettings(BaseModel):
    """Which segments a retrain uses: the YAML's as written, or windows rolled to the data calendar."""

    mode: Literal["fixed", "rolling"] = Field(
        "fixed", title="Mode", description="fixed: the YAML's segments; rolling: counted back from the anchor."
    )
    train_days: int = Field(200, ge=1, le=10_000, title="Train days", description="Trading days of training data.")
    valid_days: int = Field(60, ge=1, le=5_000, title="Valid days", description="Trading days of validation data.")
    test_days: int = Field(120, ge=1, le=5_000, title="Test days", description="Trading days evaluated (and compared).")
    kind: Literal["sliding", "expanding"] = Field(
        "sliding", title="Kind", description="sliding: fixed train length; expanding: train starts at the YAML's start."
    )
    anchor: Literal["latest"] | date = Field(
        "latest", title="Anchor", description="Last trading day the windows end at (latest: the data calendar's last day)."
    )

    def describe(self) -> str:
        """One line for logs and the registry."""
        if self.mode == "fixed":
            return "fixed (the YAML's segments)"
        anchor = self.anchor if self.anchor == "latest" else self.anchor.isoformat()
        return (
            f"rolling {self.kind}: train {self.train_days}, valid {self.valid_days}, test {self.test_days} "
            f"trading days, anchor {anchor}"
        )
