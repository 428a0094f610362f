"""Loop settings that would train nothing, never validate what is followed, or contradict the data's batch counts."""

import math

from omegaconf import DictConfig

from src.checks.metrics import validated_metrics
from src.datamodules.base import TensorDataModule
from src.errors import ConfigError
from src.training.batch_limits import batch_limit


def validates_nothing(cfg: DictConfig) -> bool:
    """Whether the run holds out no validation images (``data.val_size=0``), judged from its config alone."""
    return cfg.data.get("val_size") == 0


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
