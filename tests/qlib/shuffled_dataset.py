"""A DatasetH whose training labels are permuted, for the "no real signal" control model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from qlib.data.dataset import DatasetH
from qlib.data.dataset.handler import DataHandlerLP


class ShuffledLabelDatasetH(DatasetH):
    """Labels of the learning data are shuffled across rows; features and evaluation labels are untouched."""

    def prepare(
        self, segments: Any, col_set: Any = "__all", data_key: str = DataHandlerLP.DK_I, **kwargs: Any
    ) -> Any:
        """Prepare like DatasetH, then permute the ``label`` columns of learning data."""
        data = super().prepare(segments, col_set=col_set, data_key=data_key, **kwargs)
        if data_key != DataHandlerLP.DK_L:
            return data
        if isinstance(data, list):
            return [_shuffle_labels(frame) for frame in data]
        return _shuffle_labels(data)


def _shuffle_labels(frame: pd.DataFrame) -> pd.DataFrame:
    if "label" not in frame.columns.get_level_values(0):
        return frame
    shuffled = frame.copy()
    order = np.random.default_rng(0).permutation(len(frame))
    shuffled["label"] = frame["label"].to_numpy()[order]
    return shuffled
