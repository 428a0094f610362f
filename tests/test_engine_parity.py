"""The hand-written loop and Lightning agree: same per-epoch losses, same final weights, interchangeable checkpoints."""

import csv
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from src.config import builders
from src.datamodules.fake_files import write_mnist
from src.errors import DivergedError
from src.models import MLP
from src.models.whitening import PatchWhitening
from src.stop_and_resume.checkpoints import load_net_weights
from src.training.test_time_augmentation import evaluation_outputs
from tests.conftest import read_result
from train import train

QUIET = ["logger=csv", "callbacks.progress_bar=null", "callbacks.model_summary=null"]


def epoch_losses(cfg, keys: tuple[str, ...] = ("train/loss", "val/loss")) -> dict[str, list[float]]:
    with open(Path(cfg.paths.output_dir) / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return {key: [float(r[key]) for r in rows if r.get(key)] for key in keys}


def last_weights(cfg) -> dict[str, torch.Tensor]:
    """The network's weights in the run's last checkpoint (Lightning's also holds metric states)."""
    state = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    return {key: value for key, value in state.items() if key.startswith("net.")}


def checkpoint_epochs(cfg) -> dict[str, int]:
    """Each checkpoint file of a run, with the epoch it was saved after."""
    files = (Path(cfg.paths.output_dir) / "checkpoints").glob("*.ckpt")
    return {path.name: torch.load(path, weights_only=False)["epoch"] for path in files}


def run_both(make_cfg, *overrides: str):
    runs = {}
    for engine in ("lightning", "scratch"):
        cfg = make_cfg(f"engine={engine}", *QUIET, *overrides)
        value, metrics = train(cfg)
        runs[engine] = (cfg, value, metrics)
    return runs


@pytest.mark.parametrize(
    "overrides",
    [
        ["experiment=linear_perceptron", "trainer.max_epochs=3"],
        ["data=xor_clouds", "model=mlp", "trainer.max_epochs=3"],
        [
            "data=xor_clouds",
            "model=mlp",
            "trainer.max_epochs=5",
            "trainer.check_val_every_n_epoch=2",
            "callbacks.model_checkpoint=null",
            "+callbacks.last_checkpoint.every_n_epochs=2",
        ],
        [
            "data=xor_clouds",
            "model=mlp",
            "model.dropout=0.2",
            "trainer.max_epochs=3",
            "trainer.accumulate_grad_batches=3",
            "scheduler=onecycle",
            "trainer.gradient_clip_val=0.5",
        ],
        [
            "data=linear",
            "model=mlp",
            "optimizer=sgd",
            "scheduler=plateau",
            "scheduler.scheduler.patience=0",
            "trainer.max_epochs=4",
        ],
    ],
    ids=[
        "perceptron-linear",
        "mlp-xor",
        "mlp-xor-validated-and-checkpointed-every-2-epochs",
        "mlp-xor-dropout-accumulate-onecycle-clip",
        "mlp-linear-plateau",
    ],
)
def test_engines_give_the_same_losses_and_weights(make_cfg, overrides: list[str]) -> None:
    runs = run_both(make_cfg, *overrides)
    (lit_cfg, lit_value, lit_metrics), (raw_cfg, raw_value, raw_metrics) = runs["lightning"], runs["scratch"]
    lit_losses, raw_losses = epoch_losses(lit_cfg), epoch_losses(raw_cfg)
    for key in ("train/loss", "val/loss"):
        assert len(lit_losses[key]) == len(raw_losses[key]) > 0
        torch.testing.assert_close(torch.tensor(raw_losses[key]), torch.tensor(lit_losses[key]), rtol=1e-5, atol=0)
    lit_weights, raw_weights = last_weights(lit_cfg), last_weights(raw_cfg)
    assert lit_weights.keys() == raw_weights.keys()
    for name in lit_weights:
        torch.testing.assert_close(raw_weights[name], lit_weights[name], rtol=1e-5, atol=1e-7)
    lit_files, raw_files = (checkpoint_epochs(cfg) for cfg in (lit_cfg, raw_cfg))
    assert lit_files == raw_files and "last.ckpt" in lit_files
    assert raw_value == pytest.approx(lit_value, rel=1e-5)
    assert raw_metrics["test/loss"] == pytest.approx(lit_metrics["test/loss"], rel=1e-5)


def test_engines_agree_on_a_cnn_over_small_images(make_cfg, tmp_path: Path) -> None:
    write_mnist(tmp_path / "data", n_train=80, n_test=20)
    image = [
        f"paths.data_dir={tmp_path / 'data'}",
        "data.verify_checksums=false",
        "data.val_size=16",
        "data.batch_size=16",
        "data.augment.crop_padding=2",
    ]
    runs = run_both(
        make_cfg,
        "data=mnist",
        "model=cnn",
        "model.channels=[4,8,8]",
        "model.hidden_size=16",
        "trainer.max_epochs=2",
        *image,
    )
    lit_losses, raw_losses = epoch_losses(runs["lightning"][0]), epoch_losses(runs["scratch"][0])
    for key in ("train/loss", "val/loss"):
        torch.testing.assert_close(torch.tensor(raw_losses[key]), torch.tensor(lit_losses[key]), rtol=1e-5, atol=0)
    lit_weights, raw_weights = last_weights(runs["lightning"][0]), last_weights(runs["scratch"][0])
    for name in lit_weights:
        torch.testing.assert_close(raw_weights[name], lit_weights[name], rtol=1e-5, atol=1e-6)


def test_engines_agree_on_a_whitened_speedrun_net_and_evaluate_on_the_averaged_views(make_cfg, tmp_path: Path) -> None:
    write_mnist(tmp_path / "data", n_train=80, n_test=20)
    runs = run_both(
        make_cfg,
        "data=mnist",
        f"paths.data_dir={tmp_path / 'data'}",
        "data.verify_checksums=false",
        "data.val_size=16",
        "data.batch_size=16",
        "data.augment.flip=true",
        "model=speedrun_net",
        "model.widths=[4,8]",
        "model.whiten_stem=true",
        "model.stem_width=8",
        "module.test_time_flip=true",
        "module.test_time_shift=1",
        "trainer.max_epochs=2",
    )
    (lit_cfg, _, lit_metrics), (raw_cfg, _, raw_metrics) = runs["lightning"], runs["scratch"]
    lit_val, raw_val = epoch_losses(lit_cfg)["val/loss"], epoch_losses(raw_cfg)["val/loss"]
    assert len(lit_val) == len(raw_val) == 2
    torch.testing.assert_close(torch.tensor(raw_val), torch.tensor(lit_val), rtol=1e-5, atol=0)
    assert raw_metrics["test/loss"] == pytest.approx(lit_metrics["test/loss"], rel=1e-5)
    # What both logged is the loss of the mean outputs over each test image's views, not of the plain outputs.
    net = builders.instantiate_network(lit_cfg.model)
    load_net_weights(read_result(lit_cfg)["best_checkpoint"], net)
    net.eval()
    datamodule = builders.build_datamodule(lit_cfg)
    x, y = next(iter(datamodule.test_dataloader()))
    # The stem trained frozen, as train.py computed it from the training images.
    whitening = PatchWhitening(in_channels=1)
    whitening.init_from_data(datamodule.training_inputs(5000))
    torch.testing.assert_close(net.features[0].weight, whitening.weight)
    with torch.no_grad():
        averaged_loss = F.cross_entropy(evaluation_outputs(net, x, flip=True, shift=1), y).item()
        plain_loss = F.cross_entropy(net(x), y).item()
    assert len(x) == 20 and lit_metrics["test/loss"] == pytest.approx(averaged_loss, rel=1e-5)
    assert abs(plain_loss - averaged_loss) > 1e-3


def test_resumed_scratch_run_ends_with_the_weights_of_an_uninterrupted_one(make_cfg) -> None:
    common = [
        "engine=scratch",
        *QUIET,
        "data=xor_clouds",
        "model=mlp",
        "model.dropout=0.3",
        "scheduler=cosine",
        "trainer.max_epochs=4",
    ]
    whole = make_cfg(*common)
    train(whole)
    first = make_cfg(*common, "trainer.max_epochs=2", "scheduler.scheduler.T_max=4")
    train(first)
    resumed = make_cfg(*common, f"ckpt_path={Path(first.paths.output_dir) / 'checkpoints' / 'last.ckpt'}")
    train(resumed)
    assert (
        read_result(resumed)["epochs"] == 4 and read_result(resumed)["global_step"] == read_result(whole)["global_step"]
    )
    for name, value in last_weights(whole).items():
        torch.testing.assert_close(last_weights(resumed)[name], value, rtol=0, atol=0)
    assert epoch_losses(resumed)["val/loss"] == epoch_losses(whole)["val/loss"]  # the first two from `first`


def test_checkpoints_of_either_engine_load_into_the_same_network(make_cfg) -> None:
    runs = run_both(make_cfg, "data=xor_clouds", "model=mlp", "trainer.max_epochs=2")
    x = torch.randn(16, 2)
    outputs = []
    for engine in ("lightning", "scratch"):
        net = MLP(input_shape=[2], num_outputs=1, hidden_sizes=[64, 64])
        load_net_weights(read_result(runs[engine][0])["best_checkpoint"], net)
        outputs.append(net.eval()(x))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)


def test_scratch_starts_from_lightning_weights_and_resumes_a_lightning_checkpoint(make_cfg) -> None:
    lit = make_cfg("engine=lightning", *QUIET, "data=xor_clouds", "trainer.max_epochs=2")
    _, lit_metrics = train(lit)
    best = read_result(lit)["best_checkpoint"]
    frozen = make_cfg(
        "engine=scratch",
        *QUIET,
        "data=xor_clouds",
        "trainer.max_epochs=1",
        "optimizer.lr=1e-12",
        f"init_weights={best}",
    )
    _, raw_metrics = train(frozen)
    assert raw_metrics["test/loss"] == pytest.approx(lit_metrics["test/loss"], rel=1e-4)
    last = Path(lit.paths.output_dir) / "checkpoints" / "last.ckpt"
    resumed = make_cfg("engine=scratch", *QUIET, "data=xor_clouds", "trainer.max_epochs=3", f"ckpt_path={last}")
    train(resumed)
    assert read_result(resumed)["epochs"] == 3
    assert epoch_losses(resumed)["train/loss"][:2] == epoch_losses(lit)["train/loss"]  # its history continues
    assert len(epoch_losses(resumed)["train/loss"]) == 3


def test_scratch_stops_at_the_first_non_finite_loss(make_cfg) -> None:
    cfg = make_cfg("engine=scratch", *QUIET, "experiment=linear_perceptron", "optimizer.lr=1000")
    with pytest.raises(DivergedError, match=r"train/loss is (inf|nan) at step \d+ \(epoch 0\).*it is 1000"):
        train(cfg)
    assert read_result(cfg)["status"] == "failed"


def test_scratch_runs_bf16_mixed_on_cpu(make_cfg) -> None:
    _, metrics = train(make_cfg("engine=scratch", *QUIET, "trainer.precision=bf16-mixed", "trainer.max_epochs=1"))
    assert torch.isfinite(torch.tensor(metrics["test/loss"]))


def test_unknown_engine_lists_the_engines(make_cfg) -> None:
    from src.errors import ConfigError

    with pytest.raises(ConfigError, match=r"engine='keras' is not an engine; choose one of \['lightning', 'scratch'\]"):
        train(make_cfg("engine=keras"))


# Without a validation split the validation cadence means nothing: both engines judge the monitor every epoch.
@pytest.mark.parametrize("cadence", [[], ["trainer.check_val_every_n_epoch=2"]], ids=["every epoch", "every 2"])
def test_engines_agree_on_a_run_that_trains_on_every_image_and_validates_on_none(
    make_cfg, tmp_path: Path, cadence: list[str]
) -> None:
    write_mnist(tmp_path / "data", n_train=80, n_test=20)
    runs = run_both(
        make_cfg,
        *cadence,
        "data=mnist",
        "model=mlp",
        f"paths.data_dir={tmp_path / 'data'}",
        "data.verify_checksums=false",
        "data.val_size=0",
        "data.batch_size=16",
        "trainer.max_epochs=3",
        "monitor=train/loss",
        "optimized_metric=test/loss",
        "scheduler=plateau",  # on train/loss; only a 90% drop counts as progress: the lr falls after epoch 1
        "scheduler.scheduler.patience=0",
        "+scheduler.scheduler.threshold=0.9",
    )
    for cfg, value, metrics in runs.values():
        assert not [name for name in metrics if name.startswith("val/")]
        assert value == metrics["test/loss"]
        assert read_result(cfg)["status"] == "completed"
    (lit_cfg, _, lit_metrics), (raw_cfg, _, raw_metrics) = runs["lightning"], runs["scratch"]
    # each engine kept the epoch of lowest train/loss, and tested it
    assert checkpoint_epochs(lit_cfg) == checkpoint_epochs(raw_cfg)
    assert raw_metrics["test/loss"] == pytest.approx(lit_metrics["test/loss"], rel=1e-5)
    lit_losses, raw_losses = epoch_losses(lit_cfg), epoch_losses(raw_cfg)
    torch.testing.assert_close(
        torch.tensor(raw_losses["train/loss"]), torch.tensor(lit_losses["train/loss"]), rtol=1e-5, atol=0
    )
    assert len(lit_losses["train/loss"]) == 3 and lit_losses["val/loss"] == raw_losses["val/loss"] == []
    lit_lrs, raw_lrs = (epoch_losses(cfg, ("lr-Adam",))["lr-Adam"] for cfg in (lit_cfg, raw_cfg))
    assert lit_lrs == pytest.approx(raw_lrs) and lit_lrs == pytest.approx([1e-3, 1e-3, 1e-4])
