"""train.py's own code path: every fitting pair runs, the classic lessons are learned, runs resume and record."""

import csv
import re
from pathlib import Path

import pytest
import torch

from src.errors import ConfigError
from tests.conftest import read_result
from train import train

FAST = ["debug=fast_dev_run", "logger=none"]


@pytest.mark.parametrize("data", ["linear", "xor", "xor_clouds"])
@pytest.mark.parametrize("model", ["perceptron", "two_layer", "mlp"])
def test_every_fitting_model_data_pair_runs(make_cfg, model: str, data: str) -> None:
    cfg = make_cfg(f"model={model}", f"data={data}", *FAST)
    value, metrics = train(cfg)
    assert torch.isfinite(torch.tensor(value)) and "test/loss" in metrics
    assert read_result(cfg)["status"] == "completed"


@pytest.mark.parametrize("model", ["cnn", "resnet"])
def test_image_model_on_vector_data_fails_before_training_naming_the_pair(make_cfg, model: str) -> None:
    cfg = make_cfg(f"model={model}", "data=linear")
    with pytest.raises(ConfigError, match=rf"model={model} does not fit data=linear: .*data=mnist or data=cifar10"):
        train(cfg)
    result = read_result(cfg)
    assert result["status"] == "failed" and "does not fit" in result["error"]
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


def test_perceptron_recovers_w_2_and_b_3(make_cfg) -> None:
    cfg = make_cfg("experiment=linear_perceptron", "logger=none")
    _, metrics = train(cfg)
    state = torch.load(read_result(cfg)["best_checkpoint"], weights_only=True)["state_dict"]
    assert state["net.linear.weight"].item() == pytest.approx(2.0, abs=0.05)
    assert state["net.linear.bias"].item() == pytest.approx(3.0, abs=0.05)
    assert metrics["test/mse"] < 0.02  # the noise variance is 0.01
    assert (Path(cfg.paths.output_dir) / "predicted_vs_true.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("overrides", "solves_xor"),
    [
        (["experiment=xor_two_layer"], True),
        (["experiment=xor_mlp"], True),
        (["experiment=xor_two_layer", "model.activation=identity"], False),
        (["experiment=xor_two_layer", "model=perceptron"], False),
    ],
    ids=["two_layer_relu", "mlp", "two_layer_identity", "perceptron"],
)
def test_only_nonlinear_models_solve_xor(make_cfg, overrides: list[str], solves_xor: bool) -> None:
    # Hundreds of epochs of four samples: the hand-written loop (equal to Lightning's, tests/test_engine_parity.py)
    # has a fraction of Lightning's per-epoch overhead.
    cfg = make_cfg(*overrides, "engine=scratch", "logger=none", "callbacks.progress_bar=null")
    _, metrics = train(cfg)
    if solves_xor:
        assert metrics["test/acc"] == 1.0
    else:
        assert metrics["test/acc"] <= 0.75  # a linear boundary gets at most three of the four points


def read_csv_metrics(cfg) -> list[dict[str, str]]:
    with open(Path(cfg.paths.output_dir) / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_returned_metric_is_the_best_logged_validation_loss(make_cfg) -> None:
    cfg = make_cfg("experiment=linear_perceptron", "logger=csv", "trainer.max_epochs=5")
    value, _ = train(cfg)
    logged = [float(row["val/loss"]) for row in read_csv_metrics(cfg) if row["val/loss"]]
    assert len(logged) == 5
    assert value == pytest.approx(min(logged), rel=1e-6)
    assert read_result(cfg)["optimized_metric"] == {"name": "val/loss", "value": value}


def test_optimized_metric_can_be_a_test_metric(make_cfg) -> None:
    overrides = ["monitor=val/acc", "optimized_metric=test/acc", "logger=none", "trainer.max_epochs=5"]
    cfg = make_cfg("experiment=xor_two_layer", *overrides)
    value, metrics = train(cfg)
    assert value == metrics["test/acc"]


def test_optimized_metric_the_task_never_logs_is_refused_before_training(make_cfg) -> None:
    cfg = make_cfg("data=linear", "optimized_metric=val/acc", *FAST)
    with pytest.raises(ConfigError, match=r"optimized_metric='val/acc' is not a metric this run logs; .*'val/mae'"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


def test_test_metric_without_testing_is_refused_before_training_listing_what_is_logged(make_cfg) -> None:
    cfg = make_cfg("data=linear", "optimized_metric=test/mse", "test=false", *FAST)
    with pytest.raises(ConfigError, match=r"^optimized_metric='test/mse' is not a metric this run logs \(test/ metri"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


def test_resume_continues_from_the_saved_epoch_and_step(make_cfg) -> None:
    first = make_cfg("experiment=linear_perceptron", "logger=none", "trainer.max_epochs=2")
    train(first)
    steps_per_epoch = read_result(first)["global_step"] // 2
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == 1

    resumed = make_cfg("experiment=linear_perceptron", "logger=csv", "trainer.max_epochs=4", f"ckpt_path={last}")
    train(resumed)
    result = read_result(resumed)
    assert result["epochs"] == 4 and result["global_step"] == 4 * steps_per_epoch
    epochs_logged = sorted({int(row["epoch"]) for row in read_csv_metrics(resumed) if row["val/loss"]})
    assert epochs_logged == [2, 3]


def test_run_directory_holds_config_checkpoints_and_logs(make_cfg) -> None:
    cfg = make_cfg("experiment=linear_perceptron", "trainer.max_epochs=2")
    train(cfg)
    out = Path(cfg.paths.output_dir)
    assert (out / "config.yaml").read_text().count("_target_: src.models.Perceptron") == 1
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert len(names) == 2 and names[1] == "last.ckpt" and re.fullmatch(r"epoch_00[01]\.ckpt", names[0])
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert (out / "csv" / "metrics.csv").is_file()


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_every_optimizer_trains(make_cfg, optimizer: str) -> None:
    cfg = make_cfg("data=linear", "model=perceptron", f"optimizer={optimizer}", "logger=none", "trainer.max_epochs=3")
    _, metrics = train(cfg)
    assert metrics["val/loss"] < 9.0  # the untrained model's error is about y^2 ~ 9


def lr_by_epoch(cfg) -> list[float]:
    rows = read_csv_metrics(cfg)
    column = next(name for name in rows[0] if name.startswith("lr-"))
    return [float(row[column]) for row in rows if row[column]]


@pytest.mark.parametrize(
    ("scheduler", "extra"),
    [
        ("step", ["scheduler.scheduler.step_size=1", "scheduler.scheduler.gamma=0.5"]),
        ("cosine", []),
        ("onecycle", []),
        ("plateau", ["scheduler.scheduler.patience=0", "optimizer.lr=1e-7"]),  # no progress: cut the lr
    ],
)
def test_every_scheduler_changes_the_learning_rate(make_cfg, scheduler: str, extra: list[str]) -> None:
    cfg = make_cfg(
        "data=linear",
        "model=perceptron",
        "optimizer=sgd",
        f"scheduler={scheduler}",
        *extra,
        "logger=csv",
        "trainer.max_epochs=4",
        "callbacks.lr_monitor.logging_interval=step",
    )
    train(cfg)
    lrs = lr_by_epoch(cfg)
    assert len(set(lrs)) > 1, f"{scheduler} left the learning rate at {lrs[0]}"
    if scheduler == "step":
        assert lrs[0] == pytest.approx(0.01) and min(lrs) == pytest.approx(0.01 * 0.5**3)


def test_label_smoothing_is_refused_for_binary_tasks(make_cfg) -> None:
    cfg = make_cfg("data=xor", "module.label_smoothing=0.1", *FAST)
    with pytest.raises(Exception, match=r"label_smoothing=0\.1 only applies to multiclass"):
        train(cfg)


def test_16_mixed_on_cpu_says_it_runs_bf16_instead(make_cfg, caplog) -> None:
    cfg = make_cfg("trainer.precision=16-mixed", *FAST)
    train(cfg)
    assert "on the CPU this run uses bf16-mixed" in caplog.text


def test_bf16_mixed_runs_on_cpu(make_cfg) -> None:
    _, metrics = train(make_cfg("trainer.precision=bf16-mixed", *FAST))
    assert torch.isfinite(torch.tensor(metrics["test/loss"]))


def test_channels_last_stores_conv_weights_nhwc_and_feeds_nhwc_inputs(make_cfg) -> None:
    from src.config.builders import build_model

    net = build_model(make_cfg("model=cnn", "data=mnist", "model.channels_last=true"))
    conv = net.features[0][0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    conv.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    net(torch.randn(2, 1, 28, 28))
    assert seen == [True]


def test_channels_last_on_vector_data_is_refused(make_cfg) -> None:
    with pytest.raises(ConfigError, match=r"model.channels_last=true needs image input, not input_shape \[2\]"):
        train(make_cfg("data=xor", "+model.channels_last=true"))


def test_compile_compiles_in_place_and_keeps_checkpoint_keys(make_cfg) -> None:
    from src.config.builders import build_model

    net = build_model(make_cfg("model=mlp", "data=xor", "model.compile=true"))
    assert net._compiled_call_impl is not None
    assert not any("_orig_mod" in key for key in net.state_dict())
    assert build_model(make_cfg("model=mlp", "data=xor", "model.compile=reduce-overhead"))._compiled_call_impl
    with pytest.raises(ConfigError, match=r"model.compile=fast is not a mode; use false, true or one of \('default'"):
        build_model(make_cfg("model=mlp", "data=xor", "model.compile=fast"))


def test_float32_matmul_precision_is_left_at_full_float32_on_the_cpu(make_cfg) -> None:
    # TF32 (float32_matmul_precision=high) is for CUDA runs; on the CPU it would change the numbers engines compare.
    train(make_cfg("float32_matmul_precision=medium", *FAST))
    assert torch.get_float32_matmul_precision() == "highest"
