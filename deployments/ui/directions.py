"""Which way each metric is better, for colouring differences: green when a change is an improvement, red
when it is a deterioration, neutral when the metric has no direction or is unknown.

The primary metric takes the registry's (the promotion policy's) `higher_is_better`. The others follow what
they measure (see `tasks/core/qlib/evaluation.py`): `max_drawdown` is reported as a value <= 0, so higher
(closer to 0) is better; the dispersion of the IC (`ic_std`, `rank_ic_std`) and the portfolio's `turnover`
are better lower; `test_days` and the benchmark's own return are facts, not merits.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry import ModelRegistry

HIGHER_IS_BETTER = frozenset({
    "ic", "ic_mean", "icir", "rank_ic", "rank_icir", "annualized_return", "information_ratio", "sharpe_ratio",
    "max_drawdown", "annualized_return_without_cost", "information_ratio_without_cost",
    "max_drawdown_without_cost", "win_rate",
})
LOWER_IS_BETTER = frozenset({"ic_std", "rank_ic_std", "turnover"})


@dataclass(frozen=True)
class Directions:
    """The registry's primary metric and its direction, plus the table above for the other metrics."""

    primary_metric: str
    primary_higher_is_better: bool = True

    def higher_is_better(self, metric: str) -> bool | None:
        """True or False for a metric with a direction; None for one without (or unknown)."""
        if metric == self.primary_metric:
            return self.primary_higher_is_better
        if metric in HIGHER_IS_BETTER:
            return True
        if metric in LOWER_IS_BETTER:
            return False
        return None

    def verdict(self, metric: str, difference: float | None) -> str:
        """"better", "worse" or "" (no change, no difference, or no direction) for `difference` = new - old."""
        direction = self.higher_is_better(metric)
        if difference is None or direction is None or difference == 0 or difference != difference:
            return ""
        return "better" if (difference > 0) == direction else "worse"


def directions_of(registry: ModelRegistry) -> Directions:
    """The directions for `registry`'s primary metric."""
    return Directions(registry.primary_metric, registry.higher_is_better)
