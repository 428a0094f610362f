"""What the hand-written loop implements of the Trainer's and callbacks' settings; any other value is refused, never
ignored."""

import inspect
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.config.runtime import uses_cuda
from src.config.signatures import parameter_defaults
from src.engines.distributed import named_gpu, world
from src.errors import ConfigError
from src.training.precision import AUTOCAST_DTYPES

# Every setting the loop reads: ANY where it reads the value, else the one value it implements (its checkpoint
# names, for one). Any other setting must keep its default: it is refused at start-up, never silently ignored.
# Several are no-ops here by design: the loop runs no sanity check, logs once per epoch, writes checkpoints
# atomically itself (the plugin), and the data modules shard for themselves.
ANY = object()


TRAINER_READS = {
    **dict.fromkeys(
        ["accelerator", "devices", "num_nodes", "strategy", "precision", "max_epochs", "min_epochs",
         "gradient_clip_val", "accumulate_grad_batches", "check_val_every_n_epoch", "limit_train_batches",
         "limit_val_batches", "limit_test_batches", "fast_dev_run", "enable_progress_bar", "enable_model_summary",
         "deterministic", "benchmark", "default_root_dir", "log_every_n_steps", "num_sanity_val_steps"],
        ANY,
    ),
    "plugins": [{"_target_": "src.engines.atomic_checkpoint_io.AtomicCheckpointIO"}],
    "use_distributed_sampler": False,
}  # fmt: skip


SCRATCH_PRECISIONS = ("32-true", *AUTOCAST_DTYPES)  # the loop's autocast; weights stay float32


def callback_reads(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    checkpoints = f"{cfg.paths.output_dir}/checkpoints"
    followed = {"monitor": cfg.monitor, "mode": cfg.monitor_mode}
    return {
        "model_checkpoint": {
            **followed, "dirpath": checkpoints, "filename": "epoch_{epoch:03d}", "save_top_k": 1,
            "auto_insert_metric_name": False,
        },
        "last_checkpoint": {
            "dirpath": checkpoints, "filename": "last", "save_top_k": 1, "enable_version_counter": False,
            "save_on_train_epoch_end": True, "every_n_epochs": ANY,
        },
        "save_on_interrupt": {"dirpath": checkpoints},
        "early_stopping": {**followed, "patience": ANY, "min_delta": ANY},
        "stop_on_non_finite": {"check_every_n_steps": ANY},
        "lr_monitor": {"logging_interval": "epoch"},
        "throughput": {},
        "progress_bar": {},
        "model_summary": {},
    }  # fmt: skip


def _unimplemented(node: DictConfig, reads: dict[str, Any]) -> tuple[str, Any] | None:
    """The first setting of a ``_target_`` node that the loop does not implement as set."""
    defaults = parameter_defaults(str(node._target_))
    for key, value in OmegaConf.to_container(node, resolve=True).items():
        implemented = reads.get(key, defaults.get(key, inspect.Parameter.empty))
        if not key.startswith("_") and implemented is not ANY and value != implemented:
            return key, value
    return None


def check_scratch_settings(cfg: DictConfig) -> None:
    """What the hand-written loop does not implement is one line at start-up, naming the setting."""
    hint = "set it back, or run it with engine=lightning"
    if cfg.trainer.get("deterministic") not in (None, True, False, "warn"):  # Lightning's Trainer would refuse it
        raise ConfigError(f"trainer.deterministic={cfg.trainer.deterministic!r} must be true, false or warn")
    precision = str(cfg.trainer.get("precision", "32-true"))
    if precision not in SCRATCH_PRECISIONS:
        raise ConfigError(
            f"trainer.precision={precision} is not implemented by engine=scratch (it runs "
            f"{', '.join(SCRATCH_PRECISIONS)}); set one of those, or run it with engine=lightning"
        )
    check_scratch_processes(cfg.trainer)
    if found := _unimplemented(cfg.trainer, TRAINER_READS):
        raise ConfigError(f"trainer.{found[0]}={found[1]} is not implemented by engine=scratch; {hint}")
    reads = callback_reads(cfg)
    for name, node in (cfg.get("callbacks") or {}).items():
        if not node:
            continue
        if name not in reads:
            raise ConfigError(
                f"callbacks.{name} ({node.get('_target_')}) is a Lightning callback engine=scratch does not run; set "
                f"callbacks.{name}=null or run with engine=lightning (the loop implements {', '.join(reads)})"
            )
        if found := _unimplemented(node, reads[name]):
            raise ConfigError(f"callbacks.{name}.{found[0]}={found[1]} is not implemented by engine=scratch; {hint}")


def check_scratch_processes(trainer: DictConfig) -> None:
    """The loop runs one process per process torchrun starts: more devices or machines than that would silently
    train on one; a strategy other than DDP is not implemented."""
    strategy, devices, nodes = trainer.get("strategy", "auto"), trainer.get("devices", 1), trainer.get("num_nodes", 1)
    if strategy not in ("auto", "ddp"):
        raise ConfigError(
            f"trainer.strategy={strategy} is not implemented by engine=scratch (it runs DDP under torchrun); set "
            "trainer.strategy=auto, or run it with engine=lightning"
        )
    processes = world()[2]
    counts = isinstance(devices, int) and isinstance(nodes, int)
    if named_gpu(trainer) is not None and (nodes, processes) == (1, 1) and uses_cuda(str(trainer.accelerator)):
        return  # one process on the GPU named (a sweep job's lease)
    if (devices, nodes) != (1, 1) and not (counts and devices * nodes == processes):
        raise ConfigError(
            f"trainer.devices={devices} trainer.num_nodes={nodes} does not match the {processes} process(es) "
            "torchrun started; engine=scratch runs one per process: start it with torchrun --nnodes=<num_nodes> "
            "--nproc_per_node=<devices> train.py ..., or run it with engine=lightning"
        )
