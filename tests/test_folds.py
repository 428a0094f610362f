"""k-fold cross-validation in every data module: fold i of the training data validates, the other folds train, the
test split stays, and a sweep over the folds validates on every training sample exactly once."""

import re
from pathlib import Path

import pytest
import torch

from src.config import builders
from tests.conftest import PROJECT_ROOT

DATA_CONFIGS = sorted(path.stem for path in (PROJECT_ROOT / "configs" / "data").glob("*.yaml"))
ON_FAKE_FILES = ["data.verify_checksums=false", "data.download=false", "data.val_size=10"]


def splits(make_cfg, data: str, fake_data: Path, *overrides: str) -> list[torch.Tensor]:
    files = [f"paths.data_dir={fake_data}", *ON_FAKE_FILES] if data in ("mnist", "cifar10") else []
    datamodule = builders.build_datamodule(make_cfg(f"data={data}", *files, *overrides))
    datamodule.setup()
    return [split.tensors[0].flatten(1) for split in datamodule.splits]


def rows(x: torch.Tensor) -> set[tuple[float, ...]]:
    return {tuple(row.tolist()) for row in x.float()}


@pytest.mark.parametrize("data", DATA_CONFIGS)
def test_each_fold_validates_once_on_the_training_data_and_leaves_the_test_split(make_cfg, fake_data, data) -> None:
    train, val, test = splits(make_cfg, data, fake_data)
    pool = torch.cat([train, val])
    held_out = []
    for fold in range(3):
        fold_train, fold_val, fold_test = splits(make_cfg, data, fake_data, "data.folds=3", f"data.fold={fold}")
        assert torch.equal(fold_test, test)
        assert len(fold_train) + len(fold_val) == len(pool) and abs(len(fold_val) - len(pool) / 3) < 1
        assert sorted(rows(torch.cat([fold_train, fold_val]))) == sorted(rows(pool))
        held_out.append(fold_val)
    every = torch.cat(held_out)
    assert len(every) == len(pool) and sorted(rows(every)) == sorted(rows(pool))  # each training sample once


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.folds=1"], "data.folds must be 0 (no cross-validation) or a number of folds >= 2, got 1"),
        (["data.fold=2"], "data.fold=2 needs data.folds: the number of folds to cut, e.g. data.folds=5"),
        (["data.folds=3", "data.fold=3"], "data.fold=3 is not one of data.folds=3: choose 0 to 2"),
        (["data.folds=3", "data.fold=-1"], "data.fold=-1 is not one of data.folds=3: choose 0 to 2"),
    ],
)
def test_a_fold_that_does_not_exist_is_refused_naming_the_ones_that_do(make_cfg, overrides, message) -> None:
    with pytest.raises(ValueError, match=f"^data: {re.escape(message)}$"):
        builders.build_datamodule(make_cfg("data=xor_clouds", *overrides))
