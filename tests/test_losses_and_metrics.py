"""A loss and extra metrics chosen in config, with no code change: both engines train on them and log them."""

from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig
from torchmetrics.functional.classification import binary_f1_score

from src.checks.metrics import logged_metric_names
from src.runs.rebuild import load_run_config, rebuild
from src.utils.predict import predictions_and_targets
from tests.conftest import compose_train_config, read_result
from train import train

F1 = "+module.metrics.f1._target_=torchmetrics.classification.BinaryF1Score"
HUBER = "module.loss={_target_:torch.nn.HuberLoss,delta:0.5}"


def test_split_of_the_tested_checkpoint(cfg: DictConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """What the tested checkpoint predicts for the test split, recomputed outside the run."""
    best = read_result(cfg)["best_checkpoint"]
    datamodule, net = rebuild(load_run_config(best), best)
    return predictions_and_targets(net, datamodule.test_dataloader())


test_split_of_the_tested_checkpoint.__test__ = False  # a helper, not a test


def test_metric_added_in_config_is_logged_in_every_stage_by_both_engines(make_cfg) -> None:
    results = {}
    for engine in ("lightning", "scratch"):
        cfg = make_cfg("data=xor", F1, f"engine={engine}", "trainer.max_epochs=3")
        train(cfg)
        results[engine] = read_result(cfg)["metrics"]
        outputs, targets = test_split_of_the_tested_checkpoint(cfg)
        expected = binary_f1_score(torch.sigmoid(outputs), targets.long())
        assert results[engine]["test/f1"] == pytest.approx(expected.item(), abs=1e-6), engine
    for name in ("train/f1", "val/f1", "test/f1", "test/acc"):
        assert results["lightning"][name] == pytest.approx(results["scratch"][name], rel=1e-6), name


def test_loss_node_replaces_the_task_loss_in_both_engines(make_cfg) -> None:
    losses = {}
    for engine in ("lightning", "scratch"):
        cfg = make_cfg("data=linear", HUBER, f"engine={engine}", "trainer.max_epochs=3")
        train(cfg)
        metrics = read_result(cfg)["metrics"]
        outputs, targets = test_split_of_the_tested_checkpoint(cfg)
        huber = torch.nn.HuberLoss(delta=0.5)(outputs, targets)
        assert metrics["test/loss"] == pytest.approx(huber.item(), rel=1e-5), engine
        assert metrics["test/loss"] != pytest.approx(metrics["test/mse"], rel=1e-3)  # not the default mse
        losses[engine] = metrics["val/loss"]
    assert losses["lightning"] == pytest.approx(losses["scratch"], rel=1e-6)


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        (["data=mnist"], ["loss", "acc", "top5"]),
        (["data=mnist", "+module.metrics.top5=null"], ["loss", "acc"]),
        (["data=xor", F1, "+module.metrics.acc=null"], ["loss", "f1"]),
        (["data=linear", "+module.metrics.r2._target_=torchmetrics.regression.R2Score"], ["loss", "mse", "mae", "r2"]),
    ],
)
def test_metrics_mapping_adds_to_and_removes_from_the_task_defaults(
    tmp_path: Path, overrides: list[str], names: list[str]
) -> None:
    assert sorted(logged_metric_names(compose_train_config(overrides, tmp_path))) == sorted(names)
