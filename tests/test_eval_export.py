"""eval.py and export.py on real checkpoints: metrics equal training's, plots and predictions written, ONNX proven."""

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict
from torch.nn import functional as F
from torchvision.io import write_png

from eval import evaluate
from export import export
from src.datamodules.fake_files import write_mnist
from src.errors import ConfigError, RunError
from src.runs.rebuild import load_run_config, rebuild
from src.training.test_time_augmentation import evaluation_outputs
from tests.conftest import CONFIG_DIR, PROJECT_ROOT, compose_train_config, read_result
from train import train

QUIET = ["logger=none", "callbacks.progress_bar=null", "callbacks.model_summary=null"]
MODELS = sorted(path.stem for path in (PROJECT_ROOT / "configs" / "model").glob("*.yaml"))  # a new file is tested
SMALLER = {  # quicker sizes where the defaults are large; any other model runs as its config says
    "mlp": ["model.hidden_sizes=[16]"],
    "cnn": ["model.channels=[4,8,8]", "model.hidden_size=16"],
    "resnet": ["model.blocks_per_stage=[1,1]", "model.base_width=8"],
    "speedrun_net": ["model.widths=[8,16,16]", "model.stem_width=8"],
}


def fake_mnist_run(make_cfg, tmp_path: Path, model: str = "cnn") -> tuple[Path, dict]:
    write_mnist(tmp_path / "data", n_train=80, n_test=30)
    cfg = make_cfg(
        f"model={model}",
        *SMALLER.get(model, []),
        "data=mnist",
        f"paths.data_dir={tmp_path / 'data'}",
        "data.verify_checksums=false",
        "data.val_size=16",
        "data.batch_size=16",
        "trainer.max_epochs=1",
        *QUIET,
    )
    train(cfg)
    result = read_result(cfg)
    return Path(result["best_checkpoint"]), result


def tool_config(name: str, output_dir: Path, *overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(name, overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    return cfg


def test_eval_reproduces_the_training_test_metrics_and_plots_the_confusion_matrix(make_cfg, tmp_path: Path) -> None:
    ckpt, result = fake_mnist_run(make_cfg, tmp_path)
    out = tmp_path / "eval"
    metrics = evaluate(tool_config("eval", out, f"ckpt_path={ckpt}", "accelerator=cpu"))
    for name in ("test/acc", "test/loss", "test/top5"):
        assert metrics[name] == pytest.approx(result["metrics"][name], rel=1e-6)
    assert (out / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((out / "metrics.json").read_text())["test/acc"] == metrics["test/acc"]
    # The same run evaluated with test-time augmentation: the loss of the outputs averaged over each image's views.
    augmented = ["accelerator=cpu", "test_time_flip=true", "test_time_shift=1"]
    tta_metrics = evaluate(tool_config("eval", tmp_path / "eval_tta", f"ckpt_path={ckpt}", *augmented))
    datamodule, net = rebuild(load_run_config(ckpt), ckpt)
    x, y = next(iter(datamodule.evaluation_loader(2)))
    with torch.no_grad():
        expected = F.cross_entropy(evaluation_outputs(net, x, flip=True, shift=1), y).item()
    assert len(x) == 30 and tta_metrics["test/loss"] == pytest.approx(expected, rel=1e-5)
    assert tta_metrics["test/loss"] != pytest.approx(metrics["test/loss"], rel=1e-4)
    # A run saved before test-time augmentation existed (no such keys in its config) evaluates as it did.
    config = ckpt.parent.parent / "config.yaml"
    run_cfg = OmegaConf.load(config)
    del run_cfg.module.test_time_flip, run_cfg.module.test_time_shift
    OmegaConf.save(run_cfg, config)
    old_metrics = evaluate(tool_config("eval", tmp_path / "eval_old", f"ckpt_path={ckpt}", "accelerator=cpu"))
    assert old_metrics["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-6)


def test_eval_of_a_regression_run_plots_predicted_against_true(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("experiment=linear_perceptron", "trainer.max_epochs=2", *QUIET)
    train(cfg)
    result = read_result(cfg)
    out = tmp_path / "eval"
    metrics = evaluate(tool_config("eval", out, f"ckpt_path={result['best_checkpoint']}", "accelerator=cpu"))
    assert metrics["test/mse"] == pytest.approx(result["metrics"]["test/mse"], rel=1e-6)
    assert (out / "predicted_vs_true.png").is_file() and not (out / "confusion_matrix.png").exists()


def test_predict_writes_one_row_per_sample_of_a_split_or_an_image_folder(make_cfg, tmp_path: Path) -> None:
    ckpt, _ = fake_mnist_run(make_cfg, tmp_path)
    out = tmp_path / "predict"
    evaluate(tool_config("eval", out, f"ckpt_path={ckpt}", "mode=predict", "split=test", "accelerator=cpu"))
    with open(out / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30 and {"predicted", "confidence", "target"} <= rows[0].keys()
    assert all(0 <= int(r["predicted"]) < 10 and 0 < float(r["confidence"]) <= 1 for r in rows)

    folder = tmp_path / "digits"
    folder.mkdir()
    for i in range(3):
        write_png(torch.randint(0, 256, (1, 40, 40), dtype=torch.uint8), str(folder / f"digit_{i}.png"))
    out = tmp_path / "predict_images"
    evaluate(tool_config("eval", out, f"ckpt_path={ckpt}", "mode=predict", f"images={folder}", "accelerator=cpu"))
    with open(out / "predictions.csv") as f:
        assert [r["sample"] for r in csv.DictReader(f)] == ["digit_0.png", "digit_1.png", "digit_2.png"]


@pytest.mark.parametrize("model", MODELS)
def test_onnx_export_matches_pytorch_for_every_model(make_cfg, tmp_path: Path, model: str) -> None:
    ckpt, _ = fake_mnist_run(make_cfg, tmp_path, model)
    report = export(tool_config("export", tmp_path / "export", f"ckpt_path={ckpt}", "samples=20"))
    assert report["max_abs_difference"] <= 1e-4 and report["samples"] == 20
    assert (ckpt.parent.parent / "model.onnx").stat().st_size > 0


def test_eval_without_a_run_config_says_what_is_missing(tmp_path: Path) -> None:
    stray = tmp_path / "stray.ckpt"
    stray.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"config.yaml not found: the checkpoint must sit in a run's checkpoints/"):
        evaluate(tool_config("eval", tmp_path / "eval", f"ckpt_path={stray}"))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """One small trained MNIST run for the checks below, which never write into it."""
    root = tmp_path_factory.mktemp("trained")
    write_mnist(root / "data", n_train=80, n_test=30)
    overrides = ["model=mlp", "model.hidden_sizes=[16]", "data=mnist", f"paths.data_dir={root / 'data'}"]
    overrides += ["data.verify_checksums=false", "data.val_size=16", "trainer.max_epochs=1", *QUIET]
    cfg = compose_train_config(overrides, root / "run")
    train(cfg)
    return Path(read_result(cfg)["best_checkpoint"])


@pytest.mark.parametrize("script", ["eval", "export"])
def test_a_missing_ckpt_path_is_one_usage_line(tmp_path: Path, script: str) -> None:
    run = evaluate if script == "eval" else export
    with pytest.raises(ConfigError, match=rf"^usage: python {script}.py ckpt_path=logs/train/runs/<run>/checkpoints/"):
        run(tool_config(script, tmp_path / "out"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.data.pop("task"), r"data.task is missing"),
        (lambda c: c.optimizer.update(lr=-1), r"optimizer.lr=-1 is out of range; it must be > 0"),
        (lambda c: c.model.update(hidden_sise=[3]), r"model.hidden_sise is not a parameter of src.models.MLP"),
        (lambda c: c.data.update(val_size=-1), r"data: data.val_size must be >= 0"),
        (
            lambda c: c.data.pop("val_size"),
            r"Error in call to target 'src.datamodules.vision.MNISTDataModule': TypeError\(.*missing 1 required "
            r"keyword-only argument: 'val_size'",
        ),
        (lambda c: c.model.update(activation="bogus"), r"Error in call to target 'src.models.mlp.MLP': ValueError"),
        (lambda c: c.module.update(num_outputs=5), r"module.num_outputs=5 but data.num_outputs=10: train.py sets"),
    ],
    ids=["deleted key", "bad value", "unknown key", "data refuses", "deleted data key", "model refuses", "module"],
)
def test_eval_refuses_an_edited_run_config_naming_the_key_and_the_file(trained_run, tmp_path, edit, message) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(trained_run.parent.parent, run_dir)
    config_path = run_dir / "config.yaml"
    config = OmegaConf.load(config_path)
    edit(config)
    OmegaConf.save(config, config_path)
    ckpt = run_dir / "checkpoints" / trained_run.name
    with pytest.raises(ConfigError, match=rf"^{config_path}: {message}"):
        evaluate(tool_config("eval", tmp_path / "eval", f"ckpt_path={ckpt}", "accelerator=cpu"))


@pytest.mark.parametrize("cause", ["edited config", "other data_dir"])
def test_eval_names_the_data_and_the_config_when_they_do_not_fit(trained_run, tmp_path, cause: str) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(trained_run.parent.parent, run_dir)
    config_path, overrides = run_dir / "config.yaml", []
    if cause == "edited config":
        config = OmegaConf.load(config_path)
        config.data.update(val_size=80)  # all 80 training images
        OmegaConf.save(config, config_path)
        found = r"data.val_size=80 leaves no training images out of 80"
    else:
        write_mnist(tmp_path / "fewer", n_train=10, n_test=5)
        overrides, found = [f"data_dir={tmp_path / 'fewer'}"], r"data.val_size=16 leaves no training images out of 10"
    ckpt = run_dir / "checkpoints" / trained_run.name
    data_dir = overrides[0].split("=", 1)[1] if overrides else OmegaConf.load(config_path).data.data_dir
    with pytest.raises(ConfigError, match=rf"^data: {found}; the data in {data_dir} does not fit {config_path} "):
        evaluate(tool_config("eval", tmp_path / "eval", f"ckpt_path={ckpt}", "accelerator=cpu", *overrides))


def test_a_corrupt_image_in_the_folder_is_named(trained_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "digits"
    folder.mkdir()
    write_png(torch.zeros((1, 28, 28), dtype=torch.uint8), str(folder / "good.png"))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    config = tool_config("eval", tmp_path / "out", f"ckpt_path={trained_run}", "mode=predict", f"images={folder}")
    with pytest.raises(RunError, match=rf"^{folder / 'broken.png'} is not a readable image \("):
        evaluate(config)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("opset=12", r"^opset=12: torch.onnx exports opsets 18 to \d+ here; e.g. opset=18$"),
        ("opset=99", r"^opset=99: torch.onnx exports opsets 18 to"),
        ("tolerance=0", r"^tolerance=0 must be a number > 0, e.g. tolerance=1e-4$"),
        ("tolerance=-1e-3", r"^tolerance=-0.001 must be a number > 0"),
        ("samples=0", r"^samples=0 must be a whole number >= 2 \(test inputs to compare on\), e.g. 64$"),
        ("samples=abc", r"^samples='abc' must be a whole number >= 2"),
        ("samples=-3", r"^samples=-3 must be a whole number >= 2"),
    ],
)
def test_export_checks_its_settings_before_exporting(trained_run: Path, tmp_path: Path, override, message) -> None:
    with pytest.raises(ConfigError, match=message):
        export(tool_config("export", tmp_path / "out", f"ckpt_path={trained_run}", override))
    assert not list(trained_run.parent.parent.glob("*.onnx")) and not list(trained_run.parent.parent.glob(".*"))


def test_export_to_an_existing_folder_is_refused_naming_a_file_in_it(trained_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"^output={tmp_path} is a folder; name the file to write in it, e.g. "):
        export(tool_config("export", tmp_path / "out", f"ckpt_path={trained_run}", f"output={tmp_path}"))


def test_export_into_a_new_folder_makes_it_and_an_unusable_one_is_refused(trained_run: Path, tmp_path: Path) -> None:
    target = tmp_path / "new" / "folder" / "net.onnx"
    export(tool_config("export", tmp_path / "out", f"ckpt_path={trained_run}", f"output={target}", "samples=8"))
    assert target.stat().st_size > 0 and sorted(p.name for p in target.parent.iterdir()) == ["net.onnx"]
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=rf"^cannot write the output folder {blocker / 'sub'}: .*; set output="):
        export(tool_config("export", tmp_path / "out", f"ckpt_path={trained_run}", f"output={blocker / 'sub/x.onnx'}"))


def test_export_that_fails_verification_leaves_nothing_behind(trained_run: Path, tmp_path: Path) -> None:
    target = tmp_path / "strict" / "net.onnx"
    config = tool_config("export", tmp_path / "out", f"ckpt_path={trained_run}", f"output={target}", "tolerance=1e-30")
    with pytest.raises(RunError, match=r"^onnxruntime differs from PyTorch by .* > tolerance 1e-30; nothing written$"):
        export(config)
    assert list(target.parent.iterdir()) == []


def test_eval_of_a_run_that_held_out_no_validation_images_tests_but_refuses_split_val(make_cfg, tmp_path) -> None:
    write_mnist(tmp_path / "data", n_train=80, n_test=30)
    cfg = make_cfg(
        "model=mlp",
        "data=mnist",
        f"paths.data_dir={tmp_path / 'data'}",
        "data.verify_checksums=false",
        "data.val_size=0",
        "monitor=train/acc",
        "optimized_metric=test/acc",
        "trainer.max_epochs=1",
        *QUIET,
    )
    train(cfg)
    result = read_result(cfg)
    out, ckpt = tmp_path / "eval", f"ckpt_path={result['best_checkpoint']}"
    with pytest.raises(RunError, match=r"^split=val: this run trained on every training image \(data.val_size=0\)"):
        evaluate(tool_config("eval", out, ckpt, "split=val", "accelerator=cpu"))
    metrics = evaluate(tool_config("eval", out, ckpt, "split=test", "accelerator=cpu"))
    assert metrics["test/acc"] == pytest.approx(result["metrics"]["test/acc"])
