"""Every option the project ships, and every value its config comments list, runs a few batches on tiny data in
both engines; what an engine does not implement, or this machine cannot run, is refused in one line naming what
works. A new config file is covered as soon as it exists."""

import re
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, open_dict

from src.config import builders
from src.config.compose import compose_run
from src.config.resolvers import PROJECT_ROOT
from src.errors import ConfigError
from tests.conftest import read_result
from train import train

CONFIG_DIR = PROJECT_ROOT / "configs"
# Hydra's own group (its launchers need a cluster: tests/test_sweeps.py composes them) is not the template's.
GROUPS = sorted(d.name for d in CONFIG_DIR.iterdir() if d.is_dir() and d.name != "hydra")
OPTIONS = [f"{group}={p.stem}" for group in GROUPS for p in sorted((CONFIG_DIR / group).glob("*.yaml"))]

# Values a config line lists in its comment as valid: (file, key) -> (the override's key, the values, what they need
# beside them). test_listed_values_are_in_their_comments holds this table to the comments.
LISTED = {
    ("trainer/default.yaml", "precision"): ("trainer.precision", ("32-true", "16-mixed", "bf16-mixed", "64-true"), []),
    ("model/mlp.yaml", "activation"): (
        "model.activation",
        ("relu", "gelu", "tanh", "sigmoid", "leaky_relu", "identity"),
        ["model=mlp"],
    ),
    ("model/two_layer.yaml", "activation"): ("model.activation", ("identity",), ["model=two_layer"]),
    ("train.yaml", "engine"): ("engine", ("lightning", "scratch"), []),
    ("data/mnist.yaml", "loader"): ("data.loader", ("device", "torchvision"), ["data=mnist"]),
}

# Other settings the configs and their comments name, as written there.
NAMED = {
    "precision=bf16-true": ["trainer.precision=bf16-true"],  # a precision the start-up check accepts
    "precision=16-true": ["trainer.precision=16-true"],
    "loss=mse": ["data=linear", "module.loss=mse"],  # train.yaml: module.loss
    "loss=l1": ["data=linear", "module.loss=l1"],
    "loss=bce": ["data=xor", "module.loss=bce"],
    "loss=cross_entropy": ["data=mnist", "module.loss=cross_entropy"],
    "loss=huber": ["data=linear", "module.loss={_target_:torch.nn.HuberLoss,delta:0.5}"],
    "metrics+f1": ["+module.metrics.f1._target_=torchmetrics.classification.BinaryF1Score"],
    "metrics-top5": ["data=mnist", "+module.metrics.top5=null"],
    "no_early_stopping": ["~callbacks.early_stopping"],  # callbacks/default.yaml
    "train.yaml_example": ["model=cnn", "data=mnist", "optimizer=adamw", "scheduler=cosine", "trainer.max_epochs=5"],
    "compile": ["model=perceptron", "data=linear", "model.compile=true"],
    "test_time_flip": ["data=cifar10", "model=cnn", "module.test_time_flip=true", "module.test_time_shift=1"],
    "no_progress_bar": ["trainer.enable_progress_bar=false"],  # trainer/default.yaml's switches
    "no_model_summary": ["trainer.enable_model_summary=false"],
    "no_checkpointing": ["trainer.enable_checkpointing=false"],
    "max_steps": ["trainer.max_steps=3", "trainer.max_epochs=null", "trainer.val_check_interval=2"],
    "resume=auto": ["resume=auto"],  # train.yaml: resume
    "resume=never": ["resume=never"],
}

CASES = {
    **{option: [option] for option in OPTIONS},
    **{
        " ".join([*needs, f"{key}={value}"]): [*needs, f"{key}={value}"]
        for key, values, needs in LISTED.values()
        for value in values
    },
    **NAMED,
}

# Cases this machine cannot run without a CUDA GPU: refused in one line that names what works instead.
NEEDS_CUDA = {"trainer=gpu", "trainer=speedrun", "precision=16-true"}
# Cases the hand-written loop does not implement (each refused in one line that names engine=lightning), and cases
# that start other processes, which tests/test_ddp.py runs as typed for both engines.
SCRATCH_REFUSES = {
    "callbacks=speedrun",  # Lookahead
    "debug=overfit",
    "debug=profiler",
    "trainer.precision=64-true",
    "precision=bf16-true",
    "trainer=ddp",
    "experiment=cifar10_speedrun",
    "experiment=mnist_speedrun",
    "experiment=cifar10_cpu",
    "max_steps",
    "no_checkpointing",
}
OTHER_PROCESSES = {"trainer=ddp"}

# A few batches of every split, unless the option sets the loop itself (debug).
FEW_BATCHES = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
]


def compose(overrides: list[str], run_dir: Path) -> DictConfig:
    cfg = compose_run(overrides, run_dir)
    with open_dict(cfg):
        cfg.paths.log_dir = str(run_dir.parent / "logs")
        cfg.paths.cache_dir = str(run_dir.parent / "cache")
    return cfg


def fits_its_data(cfg: DictConfig) -> bool:
    try:
        builders.build_model(cfg)
    except ConfigError as err:
        assert "does not fit" in str(err), err
        return False
    return True


def case_config(case: str, engine: str, data: Path, run_dir: Path) -> DictConfig:
    overrides = [*CASES[case], f"engine={engine}", f"paths.data_dir={data}"]
    if not case.startswith("debug="):
        overrides = [*FEW_BATCHES, *overrides]
    if case not in NEEDS_CUDA and not torch.cuda.is_available():
        overrides.append("trainer.accelerator=cpu")  # GPU recipes (the speedruns) run their CPU form here
    cfg = compose(overrides, run_dir)
    if case.startswith("model=") and not fits_its_data(cfg):
        # An image model refuses the default vector data: it runs on MNIST, so a new model file needs no entry here.
        overrides.append("data=mnist")
        cfg = compose(overrides, run_dir)
    if "val_size" in cfg.data:  # image data: the fakes hold 60 images and none of the official checksums
        image = ["data.verify_checksums=false", "data.val_size=10", "data.batch_size=8", "data.eval_batch_size=8"]
        cfg = compose([*overrides, *image], run_dir)
    return cfg


@pytest.mark.parametrize("engine", ["lightning", "scratch"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_option_runs_a_few_batches_or_is_refused_in_one_line(
    case: str, engine: str, fake_data: Path, tmp_path: Path
) -> None:
    if case in OTHER_PROCESSES and engine == "lightning":
        pytest.skip("starts processes of its own: tests/test_ddp.py runs it as typed")
    cfg = case_config(case, engine, fake_data, tmp_path / "run")
    if case in NEEDS_CUDA and not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="GPU") as refused:
            train(cfg)
        assert "\n" not in str(refused.value)
        return
    if engine == "scratch" and case in SCRATCH_REFUSES:
        with pytest.raises(ConfigError, match="engine=lightning") as refused:
            train(cfg)
        assert "\n" not in str(refused.value)
        return
    value, metrics = train(cfg)
    assert torch.isfinite(torch.tensor(value)), (case, value)
    assert read_result(cfg)["status"] == "completed"
    assert any(name.startswith("test/") for name in metrics)


def test_every_config_group_of_the_template_is_covered() -> None:
    assert set(GROUPS) >= {"callbacks", "data", "debug", "experiment", "hparams_search", "logger", "model"}
    assert {option.split("=")[0] for option in OPTIONS} == set(GROUPS)


@pytest.mark.parametrize("where", sorted(LISTED), ids=lambda where: f"{where[0]}:{where[1]}")
def test_listed_values_are_in_their_comments(where: tuple[str, str]) -> None:
    relative, key = where
    line = next(line for line in (CONFIG_DIR / relative).read_text().splitlines() if line.startswith(f"{key}:"))
    comment = line.split("#", 1)[1]
    assert [v for v in LISTED[where][1] if not re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", comment)] == []
