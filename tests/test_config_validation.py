"""Malformed configs: each is refused at start-up, before any data is built or any file is written beside the
record, with a message that names the bad value and what would work."""

from pathlib import Path

import pytest
import torch
from hydra.errors import InstantiationException

from src.checks.devices import check_fused_clipping
from src.checks.metrics import check_metric_directions
from src.checks.suggest import override_suggestions
from src.config.resolvers import PROJECT_ROOT
from src.config.unlisted_arguments import allow_unlisted_arguments
from src.errors import ConfigError, RunError
from tests.conftest import compose_train_config, read_result
from train import train

NEEDS_NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")

MALFORMED = [
    # ranges
    ("optimizer.lr=0", r"^optimizer.lr=0 is out of range; it must be > 0, e.g. 1e-3$"),
    ("optimizer.lr=-0.1", r"^optimizer.lr=-0.1 is out of range; it must be > 0"),
    ("optimizer=sgd optimizer.momentum=1.5", r"^optimizer.momentum=1.5 is out of range; it must be >= 0 and <= 1$"),
    ("optimizer.weight_decay=-0.01", r"^optimizer.weight_decay=-0.01 is out of range; it must be >= 0$"),
    ("trainer.max_epochs=0", r"^trainer.max_epochs=0 is out of range; it must be >= 1$"),
    ("trainer.accumulate_grad_batches=0", r"^trainer.accumulate_grad_batches=0 is out of range; it must be >= 1$"),
    ("trainer.gradient_clip_val=-1", r"^trainer.gradient_clip_val=-1 is out of range; it must be > 0$"),
    ("data.batch_size=0", r"^data.batch_size=0 is out of range; it must be >= 1, e.g. 64$"),
    ("data=mnist data.num_workers=-2", r"^data.num_workers=-2 is out of range; it must be >= 0$"),
    ("model.dropout=1.0", r"^model.dropout=1.0 is out of range; it must be >= 0 and < 1$"),
    ("data=mnist module.label_smoothing=1.5", r"^module.label_smoothing=1.5 is out of range; it must be >= 0 and < 1$"),
    ("callbacks.early_stopping.patience=-1", r"^callbacks.early_stopping.patience=-1 is out of range"),
    ("seed=-5", r"^seed=-5 is out of range; it must be >= 0$"),
    # types
    ("optimizer.lr=fast", r"^optimizer.lr='fast' is not a number; it must be > 0"),
    ("trainer.max_epochs=ten", r"^trainer.max_epochs='ten' is not a number"),
    ("optimizer=sgd optimizer.nesterov=maybe", r"^optimizer.nesterov='maybe' has the wrong type; .*SGD expects bool"),
    ("model.batch_norm=3", r"^model.batch_norm=3 has the wrong type; src.models.MLP expects bool"),
    ("data=mnist data.mean=abc", r"^data.mean='abc' has the wrong type; src.datamodules.MNISTDataModule expects Seq"),
    ("data=mnist data.std=[0.3,x]", r"^data.std=\[0.3, 'x'\] has the wrong type; .*MNISTDataModule expects Seq"),
    ("data=mnist data.mean=[0.1,0.2,0.3]", r"^data: data.mean=\[0.1, 0.2, 0.3\] and data.std=\[0.3081\] need one fin"),
    ("data=cifar10 data.std=[0.2,0,0.2]", r"^data: .* need one finite value per image channel \(3\), each std > 0"),
    ("data=mnist data.std=[nan]", r"^data: data.mean=\[0.1307\] and data.std=\[nan\] need one finite value"),
    ("model.hidden_sizes=[8.5,8]", r"^model.hidden_sizes=\[8.5, 8\] has the wrong type; .*expects Sequence\[int\]$"),
    ("module.metrics=5", r"^module.metrics=5 is not a node of metric names; add one with \+module.metrics.<name>"),
    # mistyped keys
    ("+optimizer.lrr=0.1", r"^optimizer.lrr is not a parameter of torch.optim.Adam; did you mean optimizer.lr\?"),
    ("+model.hidden_size=[8]", r"^model.hidden_size is not a parameter of .*MLP; did you mean model.hidden_sizes\?"),
    ("+trainer.max_epoch=3", r"^trainer.max_epoch is not a parameter of .*Trainer; did you mean trainer.max_epochs\?"),
    ("+data.batchsize=3", r"^data.batchsize is not a parameter of .*XORDataModule; did you mean data.batch_size\?"),
    ("+callbacks.early_stopping.patiance=3", r"did you mean callbacks.early_stopping.patience\?"),
    ("model._target_=src.models.NoSuchNet", r"^model._target_=src.models.NoSuchNet cannot be imported"),
    # allowed values
    ("engine=keras", r"^engine='keras' is not an engine; choose one of \['lightning', 'scratch'\]$"),
    ("trainer.precision=8", r"^trainer.precision='8' is not a precision; choose one of"),
    ("monitor_mode=up", r"^monitor_mode must be 'min' or 'max', got 'up'$"),
    ("float32_matmul_precision=low", r"^float32_matmul_precision='low' is not one; choose one of \('highest', 'high', 'medium'\)$"),  # noqa: E501
    ("resume=maybe", r"^resume='maybe' is not a resume mode; choose auto, never or null"),
    ("monitor=val/accuracy", r"^monitor='val/accuracy' is not a metric this run logs; choose one of \['val/loss', "),
    ("scheduler=plateau trainer.check_val_every_n_epoch=2", r"scheduler.monitor=val/loss every epoch, but trainer"),
    (
        "scheduler=plateau trainer.check_val_every_n_epoch=null +trainer.val_check_interval=7",
        r"trainer.check_val_every_n_epoch=None validates by steps, not epochs; set it to 1",
    ),
    # metrics this run never logs, loops that would never run what is followed: refused before the first epoch
    ("optimized_metric=test/loss test=false", r"^optimized_metric='test/loss' is not a metric this run logs \(test/ metrics exist only with test=true\); choose one of \['val/loss', 'val/acc', 'train/loss', 'train/acc'\]$"),  # noqa: E501
    ("callbacks.early_stopping.monitor=val/f1", r"^callbacks.early_stopping.monitor='val/f1' is not a metric this run logs; choose one of \['val/loss', "),  # noqa: E501
    ("callbacks.model_checkpoint.monitor=test/acc", r"^callbacks.model_checkpoint.monitor='test/acc' is not a metric this run logs \(test/ metrics"),  # noqa: E501
    ("scheduler=plateau scheduler.monitor=val/lost", r"^scheduler.monitor='val/lost' is not a metric this run logs"),
    ("scheduler=step scheduler.interval=batch", r"^scheduler.interval='batch' is not an interval; choose step or epoch$"),  # noqa: E501
    ("trainer.max_epochs=2 trainer.check_val_every_n_epoch=3", r"^trainer.check_val_every_n_epoch=3 is larger than trainer.max_epochs=2: this run never validates, but val/loss follow validation; set trainer.check_val_every_n_epoch <= 2$"),  # noqa: E501
    ("trainer.limit_train_batches=0", r"^trainer.limit_train_batches=0 runs no train batch; use a count >= 1 or a fraction in \(0, 1\], e.g. 0.25$"),  # noqa: E501
    ("trainer.limit_val_batches=0", r"^trainer.limit_val_batches=0 runs no val batch \(0 turns validation off, but val/loss must be validated\)"),  # noqa: E501
    ("data=mnist data.val_size=0", r"^data.val_size=0 holds out no validation images, but val/loss must be validated; follow train/ and test/ metrics of one direction instead \(monitor=train/acc monitor_mode=max optimized_metric=test/acc\), or hold images out \(data.val_size=5000\)$"),  # noqa: E501
    ("data=mnist data.val_size=0 monitor=train/loss optimized_metric=val/loss", r"^data.val_size=0 holds out no validation images, but val/loss must be validated"),  # noqa: E501
    ("data=mnist data.val_size=-1", r"^data: data.val_size must be >= 0 \(0 trains on every training image and validates on none\), got -1$"),  # noqa: E501
    ("trainer.limit_test_batches=0", r"^trainer.limit_test_batches=0 runs no test batch \(to skip testing, set test=false\)"),  # noqa: E501
    ("+optimzer.lr=1", r"^\+optimzer.lr=1 adds a top-level key 'optimzer' that nothing reads; did you mean optimizer.lr=1\?$"),  # noqa: E501
    ("+max_epochs=2", r"^\+max_epochs=2 adds a top-level key 'max_epochs' that nothing reads; did you mean trainer.max_epochs=2\?$"),  # noqa: E501
    # metrics followed the wrong way round: the worst epoch kept as the best, the worst run ranked first
    ("monitor=val/acc monitor_mode=min", r"^monitor=val/acc improves as it rises, but monitor_mode=min would keep its worst value as the best; set monitor_mode=max \(monitor_mode follows monitor when left unset\)$"),  # noqa: E501
    ("callbacks.early_stopping.monitor=val/acc", r"^callbacks.early_stopping.monitor=val/acc improves as it rises, but callbacks.early_stopping.mode=min would keep"),  # noqa: E501
    ("scheduler=plateau monitor=val/acc scheduler.scheduler.mode=min", r"^scheduler.monitor=val/acc improves as it rises, but scheduler.scheduler.mode=min"),  # noqa: E501
    ("data=linear +module.metrics.r2._target_=torchmetrics.R2Score monitor=val/r2 monitor_mode=min", r"^monitor=val/r2 improves as it rises"),  # noqa: E501
    ("trainer.min_epochs=5 trainer.max_epochs=3", r"^trainer.min_epochs=5 is more than trainer.max_epochs=3: the run cannot train both; set trainer.min_epochs <= 3 or trainer.max_epochs >= 5$"),  # noqa: E501
    ("trainer.min_steps=10 trainer.max_steps=5", r"^trainer.min_steps=10 is more than trainer.max_steps=5"),
    ("trainer.check_val_every_n_epoch=0", r"^trainer.check_val_every_n_epoch=0 is not a number of epochs; use a count >= 1, or null"),  # noqa: E501
    ("trainer.limit_train_batches=abc", r"^trainer.limit_train_batches='abc' is not a number; use a count >= 1 or a fraction$"),  # noqa: E501
    ("trainer.limit_val_batches=-0.5", r"^trainer.limit_val_batches=-0.5 runs no val batch; use a count >= 1"),
    # losses and metrics from config
    ("data=linear module.loss={_target_:torch.nn.HuberLoss,delt:0.5}", r"^module.loss.delt is not a parameter of torch.nn.HuberLoss; did you mean module.loss.delta\? \(it takes: delta, reduction\)$"),  # noqa: E501
    ("module.loss=huber", r"^module.loss='huber' does not fit task=binary; choose one of \['bce'\], or a node such as module.loss=\{_target_:torch.nn.HuberLoss,delta:0.5\}$"),  # noqa: E501
    ("data=mnist module.loss={_target_:torch.nn.CrossEntropyLoss} module.label_smoothing=0.1", r"^module.label_smoothing=0.1 configures the named cross_entropy loss; with your own module.loss \(CrossEntropyLoss\) set the smoothing in that node$"),  # noqa: E501
    ("data=mnist +module.metrics.top7=null", r"^module.metrics.top7=null removes a default metric, but top7 is not one; the defaults here are acc, top5$"),  # noqa: E501
    ("+module.metrics.f1._target_=torch.nn.ReLU", r"^module.metrics.f1 built a ReLU, not a torchmetrics Metric; give its _target_ a metric class"),  # noqa: E501
    ("+module.metrics.loss._target_=torchmetrics.MeanMetric", r"^module.metrics.loss: a metric name is a plain identifier other than loss"),  # noqa: E501
    ("+module.metrics.f1._target_=torchmetrics.classification.BinaryF1Score +module.metrics.f1.treshold=0.3", r"^module.metrics.f1: Unexpected keyword arguments: `treshold`$"),  # noqa: E501
    ("+module.metrics.f1=3", r"^module.metrics.f1=3 is not a node with a _target_; e.g. \+module.metrics.f1._target_=<module>.<Class>$"),  # noqa: E501
    ("data=linear module.loss={_target_:torch.nn.Linear,in_features:1,out_features:1}", r"^module.loss built a Linear, whose forward does not take \(outputs, targets\)"),  # noqa: E501
    # what this machine or file system cannot do
    ("trainer.precision=16-true", r"needs a GPU; on the CPU use 32-true or bf16-mixed$"),
    pytest.param("trainer.accelerator=gpu", r"no CUDA GPU is visible; use trainer=cpu", marks=NEEDS_NO_GPU),
    ("trainer.accelerator=tpu", r"^trainer.accelerator=tpu cannot run here; choose one of \['auto', 'cpu', 'gpu', 'cuda', 'mps'\]$"),  # noqa: E501
    ("trainer.strategy=ddp_spawn", r"^trainer.strategy=ddp_spawn runs the training in processes whose results never reach this one \(no metrics, no record\); use trainer=ddp"),  # noqa: E501
    ("trainer.num_nodes=2", r"^trainer.num_nodes=2 without MASTER_ADDR, MASTER_PORT, NODE_RANK set: the run would wait forever for the other machines"),  # noqa: E501
    ("optimizer.betas=[0.9]", r"^optimizer: torch.optim.Adam refuses these settings \(list index out of range"),
    ("optimizer=sgd optimizer.nesterov=true optimizer.momentum=0", r"^optimizer: torch.optim.SGD refuses these settings \(Nesterov momentum requires a momentum and zero dampening\); check optimizer.\*$"),  # noqa: E501
    ("ckpt_path=/nonexistent/last.ckpt", r"^ckpt_path=/nonexistent/last.ckpt is not a file"),
    ("init_weights=/nonexistent/last.ckpt", r"^init_weights=/nonexistent/last.ckpt is not a file"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "message"), MALFORMED, ids=[str(case[0]) for case in MALFORMED])
def test_malformed_config_is_refused_at_start_with_a_specific_message(make_cfg, overrides: str, message: str) -> None:
    cfg = make_cfg(*overrides.split(" "))
    with pytest.raises(ConfigError, match=message):
        train(cfg)
    assert read_result(cfg)["status"] == "failed"
    assert sorted(p.name for p in Path(cfg.paths.output_dir).iterdir()) == ["result.json"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.n=10", "data.splits=[0.9,0.05,0.05]"], r"^data: n=10 is too small for splits \[0.9, 0.05, 0.05\]"),
        (
            ["data.splits=[0.5,0.5]"],
            r"^data: splits must be three positive fractions \(train, val, test\) summing to 1",
        ),
    ],
)
def test_data_that_cannot_be_split_is_one_line_before_training(make_cfg, overrides: list[str], message: str) -> None:
    cfg = make_cfg(*overrides)
    with pytest.raises(ConfigError, match=message):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer.limit_val_batches=0.1"], r"^trainer.limit_val_batches=0.1 of this data's 4 val batches per process is less than one batch; use a fraction >= 0.25 or a count, e.g. 1$"),  # noqa: E501
        (["trainer.limit_test_batches=0.2"], r"^trainer.limit_test_batches=0.2 of this data's 4 test batches"),
        (["trainer.max_steps=3", "trainer.max_epochs=null"], r"^trainer.max_steps=3 ends training before its first validation \(after step 25\), but val/loss must be validated; set trainer.max_steps >= 25"),  # noqa: E501
        (["trainer.max_steps=12", "trainer.accumulate_grad_batches=2", "trainer.check_val_every_n_epoch=2"], r"^trainer.max_steps=12 ends training before its first validation \(after step 25\)"),  # noqa: E501
        (["trainer.val_check_interval=100"], r"^trainer.val_check_interval=100 batches is more than an epoch's 25 training batches"),  # noqa: E501
    ],
    ids=["val_fraction", "test_fraction", "max_steps", "max_steps_accumulated", "val_check_interval"],
)  # fmt: skip
def test_batch_counts_that_would_fail_mid_run_are_refused_before_training(
    make_cfg, overrides: list[str], message: str
) -> None:
    cfg = make_cfg(*overrides)
    with pytest.raises(ConfigError, match=message):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=cnn", "data=linear"],
        ["trainer.val_check_interval=2.5"],
        ["trainer.max_steps=3", "trainer.max_epochs=null"],
    ],
    ids=["model_misfit", "lightning_refuses", "max_steps"],
)
def test_a_refused_run_prints_its_reason_without_the_config_tree(make_cfg, capsys, overrides: list[str]) -> None:
    cfg = make_cfg(*overrides, "print_config=true")
    with pytest.raises((RunError, InstantiationException)):
        train(cfg)
    assert "_target_" not in capsys.readouterr().out


def test_an_optimized_metric_a_sweep_would_rank_backwards_is_refused_only_in_a_sweep(make_cfg) -> None:
    cfg = make_cfg("optimized_metric=test/acc")  # a single run returns it; nothing ranks it
    check_metric_directions(cfg, sweeping=False)
    message = r"^optimized_metric=test/acc improves as it rises, but sweeps and Optuna rank it by monitor_mode=min"
    with pytest.raises(ConfigError, match=message):
        check_metric_directions(cfg, sweeping=True)


def test_fused_optimizer_with_clipping_under_16_mixed_on_cuda_is_refused_for_lightning(make_cfg, monkeypatch) -> None:
    monkeypatch.setattr("src.checks.devices.uses_cuda", lambda accelerator: True)
    cfg = make_cfg("trainer.precision=16-mixed", "trainer.gradient_clip_val=1.0")
    with pytest.raises(ConfigError, match=r"^trainer.gradient_clip_val=1.0 with optimizer.fused=true under 16-mixed"):
        check_fused_clipping(cfg)
    check_fused_clipping(make_cfg("trainer.precision=16-mixed", "trainer.gradient_clip_val=1.0", "engine=scratch"))
    check_fused_clipping(make_cfg("trainer.precision=bf16-mixed", "trainer.gradient_clip_val=1.0"))


@pytest.mark.parametrize(
    ("overrides", "mode"),
    [([], "min"), (["monitor=val/acc"], "max"), (["data=linear", "monitor=val/mae"], "min")],
    ids=["loss", "accuracy", "error"],
)
def test_monitor_mode_left_unset_follows_how_the_monitored_metric_improves(
    make_cfg, overrides: list[str], mode: str
) -> None:
    cfg = make_cfg(*overrides)
    assert cfg.monitor_mode == mode and cfg.callbacks.model_checkpoint.mode == mode


@pytest.mark.parametrize("engine", ["lightning", "scratch"])
def test_a_fraction_of_the_batches_rounds_down_in_both_engines(make_cfg, engine: str) -> None:
    cfg = make_cfg(f"engine={engine}", "trainer.max_epochs=1", "trainer.limit_train_batches=0.3", "logger=none")
    train(cfg)
    assert read_result(cfg)["global_step"] == 7  # 0.3 of 25 batches, as Lightning counts it


def test_lightning_refuses_to_continue_a_scratch_checkpoint_and_says_how_to_use_it(make_cfg) -> None:
    first = make_cfg("engine=scratch", "trainer.max_epochs=1", "logger=none")
    train(first)
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match=rf"^{last} was written by engine=scratch, and Lightning cannot continue it"):
        train(make_cfg("engine=lightning", f"ckpt_path={last}", "trainer.max_epochs=2"))
    train(make_cfg("engine=lightning", f"init_weights={last}", "trainer.max_epochs=1", "logger=none"))  # the way


def test_checkpoint_past_max_epochs_is_refused_before_training(make_cfg) -> None:
    first = make_cfg("trainer.max_epochs=3")
    train(first)
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=False)
    checkpoint["epoch"] = 5  # as saved by a longer run
    torch.save(checkpoint, last)
    with pytest.raises(ConfigError, match=rf"^{last} was saved at epoch 5, past trainer.max_epochs=3: this run would"):
        train(make_cfg("trainer.max_epochs=3", f"ckpt_path={last}"))


def test_data_config_that_lies_about_its_data_is_refused(make_cfg) -> None:
    cfg = make_cfg("data=xor", "data.num_outputs=3")
    with pytest.raises((RunError, ValueError), match=r"num_outputs"):
        train(cfg)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["optimizer.lrr=0.1"], ["optimizer.lrr is not a key of this config; did you mean optimizer.lr=0.1?"]),
        (["optimizer=sgd", "optimizer.momentun=0.8"], ["did you mean optimizer.momentum=0.8?"]),
        (["trainer.max_epoch=3", "seed=1"], ["did you mean trainer.max_epochs=3?"]),
        (["optimiser.lr=0.1"], ["did you mean optimizer.lr=0.1?"]),
        (["trainer.max_epochs=3"], []),  # every key exists: nothing to suggest
        (["trainer.gradient_clip_val=0.5"], []),  # a key whose default is null exists too
        (["trainer.fast_dev_rn=true"], ["did you mean trainer.fast_dev_run=true?"]),  # a Trainer argument not in YAML
        (["++trainer.overfit_batches=2"], []),  # added on purpose
        (["module.metrics.top5=null"], ["module.metrics.top5 is a new entry of module.metrics; add it with +module."]),
    ],
)
def test_mistyped_command_line_key_gets_the_closest_real_key(overrides: list[str], expected: list[str]) -> None:
    lines = override_suggestions(overrides, str(PROJECT_ROOT / "configs"), "train")
    assert len(lines) == len(expected) and all(e in line for e, line in zip(expected, lines, strict=True))


def test_trainer_options_pass_the_schema(tmp_path: Path) -> None:
    """The other groups' options are all trained by other tests, which check the schema on the way."""
    from src.checks.schema import check_schema

    for path in sorted((PROJECT_ROOT / "configs" / "trainer").glob("*.yaml")):
        check_schema(compose_train_config([f"trainer={path.stem}"], tmp_path / "run"))


def test_any_trainer_or_callback_argument_is_set_as_lightning_spells_it_and_typos_are_left_to_hydra() -> None:
    args = [
        "trainer.fast_dev_run=true",
        "trainer.max_time=00:00:10:00",
        "trainer.max_epochs=3",
        "trainer.num_sanity_val_steps=0",
        "callbacks.early_stopping.verbose=true",
        "callbacks.model_checkpoint.save_weights_only=true",
        "trainer.fast_dev_rn=true",
        "+trainer.overfit_batches=2",
        "model.hidden_sizes=[8]",
        "-m",
    ]
    assert allow_unlisted_arguments(args, PROJECT_ROOT / "configs") == [
        "++trainer.fast_dev_run=true",
        "++trainer.max_time=00:00:10:00",
        "trainer.max_epochs=3",  # listed in the YAML: left as typed
        "++trainer.num_sanity_val_steps=0",  # listed by trainer=speedrun only: maybe absent
        "++callbacks.early_stopping.verbose=true",
        "++callbacks.model_checkpoint.save_weights_only=true",
        "trainer.fast_dev_rn=true",
        "+trainer.overfit_batches=2",
        "model.hidden_sizes=[8]",
        "-m",
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        ["++trainer.overfit_batches=2", "trainer.max_epochs=2"],
        ["++trainer.val_check_interval=0.5", "++trainer.num_sanity_val_steps=0", "trainer.max_epochs=1"],
    ],
)
def test_trainer_arguments_the_yaml_does_not_list_run(make_cfg, overrides: list[str]) -> None:
    cfg = make_cfg(*overrides)
    train(cfg)
    assert read_result(cfg)["status"] == "completed"
