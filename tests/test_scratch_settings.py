"""The hand-written loop runs the trainer settings and callbacks it implements the way Lightning does, and refuses
the rest at start-up instead of ignoring them. (Composed here without the command line, which takes Trainer and
callback arguments without ``+``.)"""

import pytest

from src.errors import ConfigError
from tests.conftest import read_result
from train import train

HINT = "set it back, or run it with engine=lightning$"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["+trainer.max_time=00:00:01:00"],
            rf"^trainer.max_time=00:00:01:00 is not implemented by engine=scratch; {HINT}",
        ),
        (["+trainer.val_check_interval=0.5"], r"^trainer.val_check_interval=0.5 is not implemented by engine=scratch"),
        (["+callbacks.early_stopping.stopping_threshold=0.1"], r"^callbacks.early_stopping.stopping_threshold=0.1 is"),
        (["callbacks.model_checkpoint.filename=best"], rf"^callbacks.model_checkpoint.filename=best is not .*; {HINT}"),
        (["trainer.deterministic=maybe"], r"^trainer.deterministic='maybe' must be true, false or warn$"),
        # settings the loop would otherwise run silently as something else: float32, one process, plain DDP
        (
            ["trainer.precision=bf16-true"],
            r"^trainer.precision=bf16-true is not implemented by engine=scratch \(it runs 32-true, 16-mixed, bf16",
        ),
        (["trainer.precision=64-true"], r"^trainer.precision=64-true is not implemented by engine=scratch"),
        (
            ["trainer.devices=2"],
            r"^trainer.devices=2 trainer.num_nodes=1 does not match the 1 process\(es\) torchrun started",
        ),
        (  # a GPU named on a CPU run: not a sweep job's lease
            ["trainer.devices=[1]", "trainer.accelerator=cpu"],
            r"^trainer.devices=\[1\] trainer.num_nodes=1 does not match the 1 process\(es\) torchrun started",
        ),
        (
            ["trainer.strategy=deepspeed"],
            r"^trainer.strategy=deepspeed is not implemented by engine=scratch \(it runs DDP under torchrun\)",
        ),
        (["callbacks.lr_monitor.logging_interval=step"], r"^callbacks.lr_monitor.logging_interval=step is not"),
        (
            ["callbacks=speedrun"],
            r"^callbacks.lookahead \(src.callbacks.Lookahead\) is a Lightning callback engine=scratch does not run; "
            r"set callbacks.lookahead=null or run with engine=lightning \(the loop implements model_checkpoint, ",
        ),
        (
            [
                "+callbacks.swa._target_=lightning.pytorch.callbacks.StochasticWeightAveraging",
                "+callbacks.swa.swa_lrs=0.1",
            ],
            r"^callbacks.swa \(lightning.pytorch.callbacks.StochasticWeightAveraging\) is a Lightning callback",
        ),
    ],
)
def test_setting_the_scratch_loop_does_not_implement_is_refused_at_start_up(
    make_cfg, overrides: list[str], message: str
) -> None:
    cfg = make_cfg("engine=scratch", *overrides)
    with pytest.raises(ConfigError, match=message):
        train(cfg)
    assert read_result(cfg)["status"] == "failed"


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer.limit_val_batches=1", "trainer.limit_test_batches=0.5", "data.n=400"],
        ["trainer.deterministic=true", "+trainer.benchmark=false", "+trainer.num_sanity_val_steps=0"],
    ],
    ids=["batch-limits", "determinism"],
)
def test_trainer_settings_the_loop_implements_give_lightnings_metrics(make_cfg, overrides: list[str]) -> None:
    results = {}
    for engine in ("lightning", "scratch"):
        cfg = make_cfg(f"engine={engine}", "trainer.max_epochs=2", *overrides)
        train(cfg)
        results[engine] = read_result(cfg)
    for name in ("train/loss", "val/loss", "val/acc", "test/loss", "test/acc"):
        assert results["scratch"]["metrics"][name] == pytest.approx(results["lightning"]["metrics"][name], rel=1e-5)


@pytest.mark.parametrize(("min_epochs", "epochs"), [(1, 2), (4, 4)])
def test_early_stopping_waits_for_min_epochs_in_both_engines(make_cfg, min_epochs: int, epochs: int) -> None:
    # val/loss never improves by 0.1 at this learning rate: patience 1 stops after the second epoch, or at min_epochs
    stalled = ["optimizer.lr=0.000001", "callbacks.early_stopping.patience=1", "callbacks.early_stopping.min_delta=0.1"]
    for engine in ("lightning", "scratch"):
        cfg = make_cfg(f"engine={engine}", "trainer.max_epochs=6", f"trainer.min_epochs={min_epochs}", *stalled)
        train(cfg)
        assert read_result(cfg)["epochs"] == epochs, engine
