"""Start-up checks of the values that would otherwise fail late or obscurely, after minutes of training."""

import difflib
import logging
import math
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from torchmetrics import MetricCollection

from src.atomic_write import unwritable
from src.config.builders import build_objective
from src.config.schema import check_schema
from src.config.suggest import config_keys
from src.datamodules.base import TensorDataModule
from src.errors import ConfigError, one_line
from src.training.batch_limits import batch_limit

log = logging.getLogger(__name__)
RESUME_MODES = ("auto", "never")  # resume=...; unset: auto for sweep jobs only (src/runs/resume.py)

MATMUL_PRECISIONS = ("highest", "high", "medium")  # torch.set_float32_matmul_precision's
PRECISIONS = ("64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64", "32", "16", "bf16")


def uses_cuda(accelerator: str) -> bool:
    """Whether ``trainer.accelerator`` puts the run on a CUDA GPU."""
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")  # the ones this template's environment can run


def check_devices(trainer: DictConfig) -> None:
    """Device settings that would hang or end in a traceback: an accelerator without its package (tpu), Lightning's
    spawned DDP (its processes return nothing to this one: no metrics, no record), several machines without the
    variables that tell each where the others are (it would wait forever)."""
    accelerator, strategy = str(trainer.get("accelerator", "auto")), str(trainer.get("strategy", "auto"))
    if accelerator not in ACCELERATORS:
        raise ConfigError(f"trainer.accelerator={accelerator} cannot run here; choose one of {list(ACCELERATORS)}")
    if strategy.startswith(("ddp_spawn", "ddp_notebook", "ddp_fork")):
        raise ConfigError(
            f"trainer.strategy={strategy} runs the training in processes whose results never reach this one (no "
            "metrics, no record); use trainer=ddp, which starts the processes as scripts"
        )
    nodes = trainer.get("num_nodes", 1)
    rendezvous = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK")
    missing = [name for name in rendezvous if name not in os.environ]
    launched = any(name in os.environ for name in ("SLURM_JOB_ID", "TORCHELASTIC_RUN_ID"))  # SLURM or torchrun
    if nodes != 1 and missing and not launched:
        raise ConfigError(
            f"trainer.num_nodes={nodes} without {', '.join(missing)} set: the run would wait forever for the other "
            "machines; set MASTER_ADDR, MASTER_PORT and NODE_RANK on every machine (README: several machines), "
            "or submit with hydra/launcher=slurm"
        )


def check_precision(accelerator: str, precision: str) -> None:
    """Reject what the device cannot do; say what Lightning does instead where it falls back."""
    if precision not in PRECISIONS:
        raise ConfigError(f"trainer.precision={precision!r} is not a precision; choose one of {list(PRECISIONS)}")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but no CUDA GPU is visible; use trainer=cpu or trainer.accelerator=auto"
        )
    cuda = uses_cuda(accelerator)
    if precision.startswith("16") and not cuda and accelerator != "mps":
        if precision == "16-mixed":
            log.warning("precision=16-mixed needs a CUDA GPU (float16 autocast); on the CPU this run uses bf16-mixed")
        else:
            raise ConfigError(f"trainer.precision={precision} needs a GPU; on the CPU use 32-true or bf16-mixed")
    if precision.startswith("bf16") and cuda and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"trainer.precision={precision}: this GPU has no bfloat16; use 16-mixed or 32-true")


def logged_metric_names(cfg: DictConfig) -> list[str]:
    """What a run logs per stage (``train/``, ``val/``, ``test/``): its loss and its metrics, built as the run will
    build them, so a loss or metric that does not fit is refused here too."""
    return ["loss", *build_objective(cfg.module).metrics.keys()]


def check_test_time_augmentation(cfg: DictConfig) -> None:
    """Flipped and shifted views need image data; mirroring images never mirrored in training is allowed, with a
    warning."""
    flip, shift = cfg.module.get("test_time_flip", False), cfg.module.get("test_time_shift", 0)  # older runs lack them
    if not flip and not shift:
        return
    setting = f"module.test_time_flip={str(flip).lower()} module.test_time_shift={shift}"
    shape = list(cfg.data.input_shape)
    if len(shape) != 3:
        raise ConfigError(
            f"{setting} averages the outputs over flipped or shifted views of each image, so it needs image input "
            f"(channels, height, width), not input_shape {shape}; set module.test_time_flip=false "
            "module.test_time_shift=0"
        )
    if shift >= min(shape[1:]):
        raise ConfigError(
            f"module.test_time_shift={shift} is not smaller than the {shape[1]}x{shape[2]} images; use 1 or 2 pixels"
        )
    if flip and not (cfg.data.get("augment") or {}).get("flip"):
        log.warning(
            "module.test_time_flip=true but data.augment.flip is off: the network never sees mirror images in "
            "training, and averaging in its outputs for them likely lowers accuracy"
        )


def check_config(cfg: DictConfig, engines: Iterable[str]) -> None:
    """Validate the values every run depends on; each message names the key and a value that works."""
    check_schema(cfg)
    if cfg.engine not in engines:
        raise ConfigError(f"engine={cfg.engine!r} is not an engine; choose one of {sorted(engines)}")
    check_devices(cfg.trainer)
    check_precision(str(cfg.trainer.get("accelerator", "auto")), str(cfg.trainer.get("precision", "32-true")))
    check_test_time_augmentation(cfg)
    for key in ("ckpt_path", "init_weights"):
        if cfg.get(key) and not Path(cfg[key]).is_file():
            raise ConfigError(f"{key}={cfg[key]} is not a file; point it at a run's checkpoints/last.ckpt")
    if cfg.float32_matmul_precision not in MATMUL_PRECISIONS:
        raise ConfigError(
            f"float32_matmul_precision={cfg.float32_matmul_precision!r} is not one; choose one of {MATMUL_PRECISIONS}"
        )
    if cfg.get("resume") not in (None, *RESUME_MODES):
        raise ConfigError(f"resume={cfg.resume!r} is not a resume mode; choose auto, never or null (sweeps only)")
    if cfg.monitor_mode not in ("min", "max"):
        raise ConfigError(f"monitor_mode must be 'min' or 'max', got {cfg.monitor_mode!r}")
    every = cfg.trainer.get("check_val_every_n_epoch", 1)  # null: every val_check_interval steps, across epochs
    if (cfg.get("scheduler") or {}).get("monitor") and every != 1 and not validates_nothing(cfg):
        cadence = "by steps, not epochs" if every is None else f"every {every} epochs"
        raise ConfigError(
            f"the scheduler steps on scheduler.monitor={cfg.scheduler.monitor} every epoch, but "
            f"trainer.check_val_every_n_epoch={every} validates {cadence}; set it to 1 or pick a scheduler "
            "that needs no metric (step, cosine, onecycle)"
        )
    check_optimizer(cfg.optimizer)
    check_fused_clipping(cfg)
    check_metric_names(cfg)
    check_metric_directions(cfg, sweeping=in_sweep())
    check_loop_limits(cfg)
    check_added_keys(cfg)


def check_optimizer(optimizer: DictConfig) -> None:
    """The optimizer built once on a stand-in parameter: a value it refuses (``optimizer.betas=[0.9]``) is one line
    now, not a traceback when Lightning builds it at the start of fitting."""
    try:
        instantiate(optimizer)([nn.Parameter(torch.zeros(1))])
    except (ValueError, TypeError, IndexError, KeyError, RuntimeError) as err:
        target = str(optimizer.get("_target_"))
        raise ConfigError(f"optimizer: {target} refuses these settings ({one_line(err)}); check optimizer.*") from None


def check_fused_clipping(cfg: DictConfig) -> None:
    """Under 16-mixed on CUDA a fused optimizer unscales its gradients inside its own step, so Lightning cannot clip
    them first and stops at the first step; refused here instead. (The scratch loop unscales, clips, then steps.)"""
    trainer = cfg.trainer
    fp16 = str(trainer.get("precision")) in ("16-mixed", "16") and uses_cuda(str(trainer.get("accelerator", "auto")))
    if cfg.engine == "lightning" and fp16 and trainer.get("gradient_clip_val") and cfg.optimizer.get("fused"):
        raise ConfigError(
            f"trainer.gradient_clip_val={trainer.gradient_clip_val} with optimizer.fused=true under 16-mixed: "
            "Lightning cannot clip gradients a fused step unscales itself; set optimizer.fused=false (the loss scaler "
            "then reads the host once per step), use trainer.precision=bf16-mixed, or engine=scratch"
        )


def check_added_keys(cfg: DictConfig) -> None:
    """``+max_epochs=1`` or ``+optimzer.lr=1`` adds a top-level key nothing reads, and the run would train on the
    defaults: when the name is that of a deeper key, or close to a real top-level one, that key was meant. (An
    added key that resembles nothing, such as ``+tags=[a]``, is the user's own and stays.)"""
    if not HydraConfig.initialized():
        return
    added = [o for o in HydraConfig.get().overrides.task if o.startswith("+") and not o.startswith("++")]
    added_keys = [o.lstrip("+").split("=", 1)[0] for o in added]

    def only_added(top: str) -> bool:  # the whole top-level node comes from + overrides
        node = cfg.get(top)
        children = [f"{top}.{key}" for key in node] if isinstance(node, DictConfig) else [top]
        return all(any(k == child or k.startswith(f"{child}.") for k in added_keys) for child in children)

    keys = list(config_keys(cfg))
    nested = {path.rsplit(".", 1)[-1]: path for path in keys if "." in path}
    tops = [path for path in keys if "." not in path and not only_added(path)]
    for override in added:
        key, _, value = override.lstrip("+").partition("=")
        top, _, rest = key.partition(".")
        if top in tops:
            continue
        meant = nested.get(key) if not rest else next(iter(difflib.get_close_matches(top, tops, n=1)), None)
        if meant is not None:
            meant = meant if not rest else f"{meant}.{rest}"
            raise ConfigError(
                f"{override} adds a top-level key {top!r} that nothing reads; did you mean {meant}={value}?"
            )


def monitored_metrics(cfg: DictConfig) -> dict[str, str]:
    """Every key that names a metric to follow during fit, with the metric it names."""
    keys = {"monitor": cfg.monitor}
    for name, callback in (cfg.get("callbacks") or {}).items():
        if callback and callback.get("monitor"):
            keys[f"callbacks.{name}.monitor"] = callback.monitor
    if (cfg.get("scheduler") or {}).get("monitor"):
        keys["scheduler.monitor"] = cfg.scheduler.monitor
    return keys


def check_metric_names(cfg: DictConfig) -> None:
    """A metric named anywhere must be one this task logs in a stage this run has: caught now, not after the first
    epoch (a monitor) or after the whole run (``optimized_metric``)."""
    names = logged_metric_names(cfg)
    fit_choices = [f"{stage}/{name}" for stage in ("val", "train") for name in names]
    test_choices = [f"test/{name}" for name in names]
    keys = {**monitored_metrics(cfg), "optimized_metric": cfg.optimized_metric}
    for key, metric in keys.items():
        choices = fit_choices + (test_choices if key == "optimized_metric" and cfg.test else [])
        if metric in choices:
            continue
        why = " (test/ metrics exist only with test=true)" if metric in test_choices else ""
        raise ConfigError(f"{key}={metric!r} is not a metric this run logs{why}; choose one of {choices}")


def validates_nothing(cfg: DictConfig) -> bool:
    """Whether the run holds out no validation images (``data.val_size=0``), judged from its config alone."""
    return cfg.data.get("val_size") == 0


def improves(metric: str, metrics: MetricCollection) -> str | None:
    """``min`` or ``max`` for a logged metric (``val/acc``), from its torchmetrics ``higher_is_better``; None when
    the metric does not say."""
    name = metric.split("/", 1)[-1]
    if name == "loss":
        return "min"
    higher = getattr(metrics[name], "higher_is_better", None) if name in metrics else None
    return None if higher is None else ("max" if higher else "min")


def followed_directions(cfg: DictConfig, sweeping: bool) -> dict[str, tuple[str, str, str]]:
    """Each key that names a metric to follow -> (the metric, the key of its direction, that direction). In a sweep,
    the report and Optuna rank ``optimized_metric`` by ``monitor_mode``; a single run only returns it."""
    followed = {"monitor": (cfg.monitor, "monitor_mode", cfg.monitor_mode)}
    if sweeping:
        followed["optimized_metric"] = (cfg.optimized_metric, "monitor_mode", cfg.monitor_mode)
    for name, callback in (cfg.get("callbacks") or {}).items():
        if callback and callback.get("monitor") and callback.get("mode"):
            followed[f"callbacks.{name}.monitor"] = (callback.monitor, f"callbacks.{name}.mode", callback.mode)
    scheduler = cfg.get("scheduler") or {}
    if scheduler.get("monitor") and (scheduler.get("scheduler") or {}).get("mode"):
        followed["scheduler.monitor"] = (scheduler.monitor, "scheduler.scheduler.mode", scheduler.scheduler.mode)
    return followed


def in_sweep() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def check_metric_directions(cfg: DictConfig, sweeping: bool) -> None:
    """A metric followed the wrong way round trains silently and keeps its worst epoch as the best: refused."""
    metrics = build_objective(cfg.module).metrics
    for key, (metric, mode_key, mode) in followed_directions(cfg, sweeping).items():
        wanted = improves(metric, metrics)
        if wanted is None or wanted == mode:
            continue
        way = "rises" if wanted == "max" else "falls"
        if key == "optimized_metric":
            raise ConfigError(
                f"optimized_metric={metric} improves as it {way}, but sweeps and Optuna rank it by monitor_mode={mode} "
                f"(how monitor={cfg.monitor} improves), the worst run first; optimize a metric that improves as "
                "monitor does, or monitor one that improves as this one does"
            )
        unset = " (monitor_mode follows monitor when left unset)" if mode_key == "monitor_mode" else ""
        raise ConfigError(
            f"{key}={metric} improves as it {way}, but {mode_key}={mode} would keep its worst value as the best; "
            f"set {mode_key}={wanted}{unset}"
        )


def validated_metrics(cfg: DictConfig) -> list[str]:
    """The ``val/`` metrics a callback, the scheduler or the returned metric follows: the run must validate."""
    named = [*monitored_metrics(cfg).values(), cfg.optimized_metric]
    return sorted({m for m in named if m.startswith("val/")})


def check_loop_limits(cfg: DictConfig) -> None:
    """Loop settings that would train nothing, contradict each other, or never validate what a callback follows."""
    trainer = cfg.trainer
    followed = validated_metrics(cfg)
    if validates_nothing(cfg) and followed:
        raise ConfigError(
            f"data.val_size=0 holds out no validation images, but {', '.join(followed)} must be validated; follow "
            "train/ and test/ metrics of one direction instead (monitor=train/acc monitor_mode=max "
            "optimized_metric=test/acc), or hold images out (data.val_size=5000)"
        )
    for stage in ("train", "val", "test"):
        limit = trainer.get(f"limit_{stage}_batches")
        if limit is None:
            continue
        if isinstance(limit, bool) or not isinstance(limit, int | float):
            raise ConfigError(
                f"trainer.limit_{stage}_batches={limit!r} is not a number; use a count >= 1 or a fraction"
            )
        if limit > 0:
            continue
        if limit < 0 or stage == "train":
            why = ""
        elif stage == "val" and followed:
            why = f" (0 turns validation off, but {', '.join(followed)} must be validated)"
        elif stage == "test" and cfg.test:
            why = " (to skip testing, set test=false)"
        else:
            continue  # 0 turns off a loop nothing here needs
        raise ConfigError(
            f"trainer.limit_{stage}_batches={limit} runs no {stage} batch{why}; use a count >= 1 or a fraction in "
            "(0, 1], e.g. 0.25"
        )
    every = trainer.get("check_val_every_n_epoch", 1)
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise ConfigError(
            f"trainer.check_val_every_n_epoch={every!r} is not a number of epochs; use a count >= 1, or null to "
            "validate every trainer.val_check_interval batches across epochs"
        )
    every, epochs = every or 1, trainer.get("max_epochs")
    if followed and epochs is not None and epochs > 0 and every > epochs:
        raise ConfigError(
            f"trainer.check_val_every_n_epoch={every} is larger than trainer.max_epochs={epochs}: this run never "
            f"validates, but {', '.join(followed)} follow validation; set trainer.check_val_every_n_epoch <= {epochs}"
        )
    for unit in ("epochs", "steps"):
        least, most = trainer.get(f"min_{unit}"), trainer.get(f"max_{unit}")
        if least is not None and most is not None and 0 <= most < least:
            raise ConfigError(
                f"trainer.min_{unit}={least} is more than trainer.max_{unit}={most}: the run cannot train both; "
                f"set trainer.min_{unit} <= {most} or trainer.max_{unit} >= {least}"
            )
    interval = (cfg.get("scheduler") or {}).get("interval")
    if interval is not None and interval not in ("step", "epoch"):
        raise ConfigError(f"scheduler.interval={interval!r} is not an interval; choose step or epoch")


def check_writable(
    directory: Path,
    what: str = "the run directory",
    fix: str = "point paths.log_dir (or hydra.run.dir) at a writable directory",
) -> None:
    """An unwritable directory fails now, not at the first checkpoint an hour into training."""
    err = unwritable(directory)
    if err is not None:
        raise ConfigError(f"cannot write {what} {directory}: {err.strerror or err}; {fix}")


def checkpoint_bytes(net: nn.Module) -> int:
    """About what one checkpoint takes: the weights plus up to two optimizer moments per weight (Adam)."""
    return 3 * sum(p.numel() * p.element_size() for p in net.parameters())


def check_free_space(directory: Path, net: nn.Module) -> None:
    """Room for the last and best checkpoints and the temporary file each write makes, or a clear error now."""
    needed = 3 * checkpoint_bytes(net)
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise ConfigError(
            f"only {free / 2**20:.1f} MiB free on the disk holding {directory}, and this run's checkpoints need "
            f"about {needed / 2**20:.1f} MiB; free some space or point paths.log_dir at another disk"
        )


def processes(trainer: DictConfig) -> int:
    """How many processes share each epoch's batches: ``trainer.devices`` x ``trainer.num_nodes`` where devices is
    a count, else 1 (``auto``, a list: judged as one process)."""
    devices = trainer.get("devices")
    per_node = devices if isinstance(devices, int) and not isinstance(devices, bool) and devices > 0 else 1
    return per_node * (trainer.get("num_nodes") or 1)


def check_batch_counts(cfg: DictConfig, datamodule: TensorDataModule) -> None:
    """What only the data's batch counts tell, judged before any output: a fraction of an epoch that rounds to no
    batch (Lightning refuses it in its sanity check), and a step budget that ends training before the first
    validation of a metric the run follows (early stopping fails after fit)."""
    trainer = cfg.trainer
    if trainer.get("fast_dev_run") or trainer.get("overfit_batches"):
        return  # they set the batch counts themselves
    assert datamodule.splits is not None  # set up before the checks
    splits = {"train": (0, datamodule.batch_size)}  # counted from the splits' sizes: no loader is built for it
    if datamodule.holds_out_validation():
        splits["val"] = (1, datamodule.eval_batch_size)
    if cfg.test:
        splits["test"] = (2, datamodule.eval_batch_size)
    counts = {}
    for stage, (index, batch_size) in splits.items():
        length = math.ceil(math.ceil(len(datamodule.splits[index]) / processes(trainer)) / batch_size)
        limit = trainer.get(f"limit_{stage}_batches")
        counts[stage] = length if limit is None else min(length, batch_limit(limit, length))
        if isinstance(limit, float) and limit > 0 and counts[stage] == 0:
            raise ConfigError(
                f"trainer.limit_{stage}_batches={limit} of this data's {length} {stage} batches per process is less "
                f"than one batch; use a fraction >= {math.ceil(100 / length) / 100} or a count, e.g. 1"
            )
    interval, every = trainer.get("val_check_interval"), trainer.get("check_val_every_n_epoch", 1)
    batches_interval = isinstance(interval, int) and not isinstance(interval, bool)
    if batches_interval and every is not None and "val" in counts and interval > counts["train"]:
        raise ConfigError(
            f"trainer.val_check_interval={interval} batches is more than an epoch's {counts['train']} training "
            f"batches, and validation restarts its count each epoch; use at most {counts['train']}, a fraction of an "
            "epoch, or trainer.check_val_every_n_epoch=null to count across epochs"
        )
    max_steps, followed = trainer.get("max_steps") or -1, validated_metrics(cfg)
    if max_steps < 0 or not followed or "val" not in counts:
        return
    accumulate = trainer.get("accumulate_grad_batches") or 1
    if batches_interval:
        batches = interval
    else:
        epochs_before = (every or 1) - 1
        batches = epochs_before * counts["train"] + max(1, int(counts["train"] * (interval or 1.0)))
    first = math.ceil(batches / accumulate)
    if max_steps < first:
        raise ConfigError(
            f"trainer.max_steps={max_steps} ends training before its first validation (after step {first}), but "
            f"{', '.join(followed)} must be validated; set trainer.max_steps >= {first}, or validate sooner with "
            "trainer.val_check_interval=<batches>"
        )
