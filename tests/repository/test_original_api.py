"""The original registry API's own four tests, run against our port: changed only in their imports and, in the
fourth, `.params` instead of `get_params()` (which Qlib 0.9.7's LGBModel lacks) and a real fit on small data."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from qlib.contrib.model.gbdt import LGBModel
from qlib.data.dataset import DatasetH
from qlib.data.dataset.handler import DataHandlerLP
from qlib.data.dataset.loader import StaticDataLoader

from registry import QlibModelRepository
from registry import RepositoryModelMetadata as ModelMetadata


@pytest.fixture
def temp_repo(tmp_path):
    """创建临时仓库"""
    return QlibModelRepository(
        models_dir=tmp_path / "models",
        db_path=tmp_path / "models.db"
    )


@pytest.mark.asyncio
async def test_save_and_load_model(temp_repo):
    """测试保存和加载模型"""
    # 创建模拟模型
    mock_model = {"type": "LGBM", "params": {"n_estimators": 100}}

    # 创建元数据
    metadata = ModelMetadata(
        model_id="test_001",
        experiment_name="test_exp",
        model_type="LGBM",
        hyperparameters={"n_estimators": 100},
        metrics={"IC": 0.05},
        created_at=datetime.now()
    )

    # 保存
    model_id = await temp_repo.save_model(mock_model, metadata)
    assert model_id == "test_001"

    # 加载
    loaded_model, loaded_metadata = await temp_repo.load_model(model_id)
    assert loaded_model == mock_model
    assert loaded_metadata.model_type == "LGBM"


@pytest.mark.asyncio
async def test_list_models(temp_repo):
    """测试列出模型"""
    # 保存多个模型
    for i in range(3):
        metadata = ModelMetadata(
            model_id=f"model_{i}",
            experiment_name="test_exp",
            model_type="LGBM",
            hyperparameters={},
            metrics={},
            created_at=datetime.now()
        )
        await temp_repo.save_model({}, metadata)

    # 列出所有模型
    models = await temp_repo.list_models()
    assert len(models) == 3


@pytest.mark.asyncio
async def test_delete_model(temp_repo):
    """测试删除模型"""
    metadata = ModelMetadata(
        model_id="to_delete",
        experiment_name="test_exp",
        model_type="LGBM",
        hyperparameters={},
        metrics={},
        created_at=datetime.now()
    )

    # 保存并删除
    await temp_repo.save_model({}, metadata)
    await temp_repo.delete_model("to_delete")

    # 验证已删除
    with pytest.raises(FileNotFoundError):
        await temp_repo.load_model("to_delete")


def _small_dataset() -> DatasetH:
    """Two features and a label for 20 instruments x 60 days, in Qlib's own handler and dataset classes."""
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2020-01-01", periods=60)
    index = pd.MultiIndex.from_product([dates, [f"SH{600000 + i}" for i in range(20)]], names=["datetime", "instrument"])
    features = rng.normal(size=(len(index), 2))
    label = features[:, 0] * 0.5 + rng.normal(scale=0.1, size=len(index))
    columns = pd.MultiIndex.from_tuples([("feature", "f0"), ("feature", "f1"), ("label", "y")])
    frame = pd.DataFrame(np.column_stack([features, label]), index=index, columns=columns)
    handler = DataHandlerLP(data_loader=StaticDataLoader(config=frame))
    return DatasetH(handler, segments={"train": (dates[0], dates[39]), "valid": (dates[40], dates[59])})


@pytest.fixture
def qlib_ready(tmp_path, monkeypatch):
    """LGBModel.fit logs to Qlib's recorder: Qlib initialised on an empty data directory, MLflow in tmp_path."""
    from qlib.workflow import R

    from registry.settings import load_settings
    from tasks.core.qlib.session import init_qlib

    monkeypatch.chdir(tmp_path)
    (tmp_path / "qlib_data").mkdir()
    init_qlib(tmp_path / "qlib_data", settings=load_settings(registry_dir=tmp_path / "mlflow"))
    yield
    R.end_exp()  # fit's metric logging started a default recorder; a later qlib.init needs none active


@pytest.mark.slow  # trains a LightGBM model
@pytest.mark.asyncio
@pytest.mark.usefixtures("qlib_ready")
async def test_save_real_qlib_model(tmp_path):
    """测试保存真实 Qlib 模型"""
    # 创建真实 Qlib 模型
    model = LGBModel(num_boost_round=20, num_leaves=4, min_data_in_leaf=5, verbosity=-1)

    # ... 训练模型 ...
    model.fit(_small_dataset(), num_boost_round=20, early_stopping_rounds=5, verbose_eval=0)

    # 保存
    repo = QlibModelRepository(models_dir=tmp_path / "models")
    metadata = ModelMetadata(
        model_id="lgbm_real",
        experiment_name="real_test",
        model_type="LGBM",
        hyperparameters=model.params,
        metrics={},
        created_at=datetime.now()
    )

    await repo.save_model(model, metadata)

    # 加载并验证
    loaded_model, _ = await repo.load_model("lgbm_real")
    assert isinstance(loaded_model, LGBModel)
