"""Train any model on any data it fits: ``python train.py model=cnn data=mnist optimizer=adamw``.

check -> build -> decide what the run continues -> fit and test (Lightning, or ``engine=scratch``) -> record ->
return the metric. Every start-up check is in :mod:`src.checks`, which says in what order they run.
"""

import gc

gc.disable()  # until the imports are done: src/utils/fast_start.py says why

import logging
import sys

from src.checks.command_line import answer_with_hydra, answered_by_hydra, command_line_problems
from src.config.resolvers import PROJECT_ROOT, register_resolvers

if __name__ == "__main__" and (problems := command_line_problems(sys.argv[1:], PROJECT_ROOT / "configs")):
    print("\n".join(problems), file=sys.stderr)  # a mistyped option, refused in a second: before the heavy imports
    raise SystemExit(1)
# --help, --cfg, --info: no run, so none of the heavy imports; unless a Trainer or callback argument may need the ``++``
# that allow_unlisted_arguments adds below (it reads their signatures, which imports Lightning).
OPENED = ("trainer.", "callbacks.")
if __name__ == "__main__" and answered_by_hydra(sys.argv[1:]) and not any(a.startswith(OPENED) for a in sys.argv):
    answer_with_hydra(lambda cfg: None, "train")

from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.checks.disk import check_writable
from src.checks.start_up import check_built, check_config
from src.checks.suggest import print_override_suggestions
from src.config import builders
from src.config.runtime import count_gpus_without_nvml, in_sweep, uses_cuda
from src.config.unlisted_arguments import allow_unlisted_arguments
from src.datamodules.base import TensorDataModule
from src.engines.distributed import agree_on_run_name, is_rank_zero, shutdown_distributed
from src.engines.lightning_engine import fit_with_lightning
from src.engines.result import FitResult, optimized_value
from src.engines.scratch_engine import fit_from_scratch
from src.errors import ConfigError, RunError, RunInterruptedError, TrialPrunedError, one_line
from src.runs.liveness import is_alive, process_identity
from src.runs.record import recorded_run
from src.runs.resume import Fingerprint, Resumption, Run, earlier_runs, find_resumption, fingerprint, read_record
from src.stop_and_resume.checkpoints import load_net_weights
from src.stop_and_resume.interrupt import StopRequest, sigterm_held
from src.sweeps.gpu_lease import gpus_leased
from src.tasks import Task
from src.utils.console import print_config, print_metrics, quiet_third_party
from src.utils.fast_start import imports_done
from src.utils.figures import predicted_vs_true_figure, save
from src.utils.predict import predictions_and_targets

imports_done()
count_gpus_without_nvml()
register_resolvers()
quiet_third_party()
log = logging.getLogger(__name__)


ENGINES = {"lightning": fit_with_lightning, "scratch": fit_from_scratch}
# What a run that reuses an earlier, finished run copies from its record.
REUSED_FIELDS = ("engine", "optimized_metric", "metrics", "epochs", "global_step", "best_checkpoint")


def train(cfg: DictConfig, print_result: bool = False) -> tuple[float, dict[str, float]]:
    """Run one experiment in ``cfg.paths.output_dir``; return the optimized metric and every final metric, and
    with ``print_result`` print them as a table. SIGTERM and Ctrl-C stop it cleanly in any phase
    (:mod:`src.stop_and_resume.interrupt`)."""
    # The one decision about processes: rank 0 of node 0 writes the run's files and prints; under DDP the others
    # train alongside it and follow its decisions.
    lead = is_rank_zero()
    with StopRequest() as stop:
        value, metrics = _train(cfg, stop, lead)
    if print_result and lead:  # the command line's answer
        print_metrics(metrics, title=f"{cfg.optimized_metric} = {value:.6g}", output_dir=str(cfg.paths.output_dir))
    return value, metrics


def _train(cfg: DictConfig, stop: StopRequest, lead: bool) -> tuple[float, dict[str, float]]:
    """The phases of a run: check, build, decide what it continues, fit and test, record."""
    output_dir = Path(cfg.paths.output_dir)
    previous = _claim(output_dir, lead)
    with recorded_run(output_dir, write=lead) as record:
        check_config(cfg, engines=ENGINES)
        datamodule = builders.build_datamodule(cfg)
        this_run = fingerprint(cfg, datamodule.data_identity())
        found = _resumption(cfg, this_run, (output_dir, previous) if previous is not None else None, lead)
        if found.reuse is not None and found.reuse_dir == output_dir:
            record.leave_unwritten()  # a finished run started again in its own directory: its record stands
            return _reused(cfg, found.reuse, lead)
        resumed_from = str(found.checkpoint) if found.checkpoint is not None else cfg.ckpt_path
        # Saved only now, with the decision: other processes of this run that read it follow the same one.
        record.update(fingerprint=asdict(this_run), resumed_from=resumed_from, **process_identity())
        record.save()
        if lead:
            OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)
        if found.reuse is not None:
            record.update({key: found.reuse[key] for key in REUSED_FIELDS}, reused_from=str(found.reuse_dir))
            return _reused(cfg, found.reuse, lead)

        with gpus_leased(cfg) as gpus:  # in a parallel sweep: this job's own GPUs (sweep_gpus)
            if gpus:
                record.update(gpus=gpus)
            result, net = _fit(cfg, datamodule, stop, resumed_from, lead)
        _plot_regression(cfg, result, net, datamodule)
        value = optimized_value(cfg.optimized_metric, cfg.monitor, result)
        record.update(
            engine=cfg.engine,
            optimized_metric={"name": cfg.optimized_metric, "value": value},
            metrics=result.metrics,
            epochs=result.epochs,
            global_step=result.global_step,
            best_checkpoint=result.best_checkpoint,
        )
    return value, result.metrics


def _claim(output_dir: Path, lead: bool) -> dict[str, Any] | None:
    """The run directory is writable and no live run holds it; returns the record of an earlier run in it (a pinned
    ``hydra.run.dir``, or a sweep job run again), which decides what this run continues."""
    if lead:
        check_writable(output_dir)
    previous = read_record(output_dir)
    if previous is not None and is_alive(previous) and lead:  # the other processes find their rank 0's record
        raise ConfigError(f"{output_dir} is in use by a live run (pid {previous['pid']}); wait for it or pick another")
    return previous


def _fit(
    cfg: DictConfig, datamodule: TensorDataModule, stop: StopRequest, resumed_from: str | None, lead: bool
) -> tuple[FitResult, nn.Module]:
    """Set up the data, build the network on it and hand everything to the engine, which fits and tests."""
    if uses_cuda(str(cfg.trainer.get("accelerator", "auto"))):
        torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
    builders.set_up_data(datamodule)  # not for a reused result, which reads no data
    L.seed_everything(cfg.seed, workers=True, verbose=False)  # silent: a refusal below prints its reason alone
    net = builders.build_model(cfg)
    builders.init_from_data(net, datamodule)  # before any checkpoint, whose weights then replace these
    check_built(cfg, datamodule, net, resumed_from)
    if cfg.init_weights:
        load_net_weights(cfg.init_weights, net)
    result = ENGINES[cfg.engine](cfg, datamodule, net, stop, resumed_from, ready=partial(_show_config, cfg, lead))
    return result, net


def _reused(cfg: DictConfig, reused: dict[str, Any], lead: bool) -> tuple[float, dict[str, float]]:
    """What an earlier, finished run of the same experiment returned: its metrics, without training again."""
    _show_config(cfg, lead)
    return reused["optimized_metric"]["value"], reused["metrics"]


def _plot_regression(cfg: DictConfig, result: FitResult, net: nn.Module, datamodule: TensorDataModule) -> None:
    """What the tested weights predict for the whole test split of a regression run (one process holds it all)."""
    plot = cfg.test and cfg.plots and cfg.data.task == Task.REGRESSION.value and not cfg.trainer.get("fast_dev_run")
    if plot and result.world_size == 1:
        predicted, true = predictions_and_targets(net, datamodule.test_dataloader())
        save(predicted_vs_true_figure(predicted, true), Path(cfg.paths.output_dir) / "predicted_vs_true.png")


def _show_config(cfg: DictConfig, lead: bool) -> None:
    """Printed once the engine has built and accepted everything, so a refused run prints its reason alone."""
    if cfg.print_config and lead:
        print_config(cfg)


def _resumption(cfg: DictConfig, this_run: Fingerprint, own: Run | None, lead: bool) -> Resumption:
    """``resume`` unset: sweep jobs pick up where an earlier run of the same sweep stopped, single runs start fresh."""
    mode = cfg.resume or ("auto" if in_sweep() else "never")
    if mode == "never" or cfg.ckpt_path:
        return Resumption()
    if own is not None and is_alive(own[1]) and not lead:  # rank 0 of this very run decided already
        checkpoint = own[1].get("resumed_from")
        return Resumption(checkpoint=Path(checkpoint) if checkpoint else None)
    search_root = Path(cfg.paths.log_dir) / cfg.task_name
    others = earlier_runs(search_root, exclude=Path(cfg.paths.output_dir))
    return find_resumption(search_root, this_run, own, others, refuse_live=not in_sweep())


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    with sigterm_held():
        return _report(cfg)


def _report(cfg: DictConfig) -> float:
    """The run, and how it ended in one line."""
    try:
        value, _ = train(cfg, print_result=True)
    except RunInterruptedError as err:
        log.warning("%s", err)
        raise SystemExit(0) from None  # a clean stop with its state saved (in a sweep: the whole sweep stops)
    except Exception as err:
        if in_sweep():
            # One failed (or pruned) job must not end the sweep: it is recorded and reported with the others.
            if isinstance(err, TrialPrunedError):
                log.info("Job pruned: %s", err)
            else:
                log.error("Job failed: %s: %s", type(err).__name__, err)
            return float("nan")
        if isinstance(err, RunError | InstantiationException):
            log.error("%s", one_line(err))  # Hydra wraps a target's own error over several lines
            raise SystemExit(1) from None
        raise
    return value


if __name__ == "__main__":
    agree_on_run_name()  # torchrun: one run directory for all processes
    sys.argv[1:] = allow_unlisted_arguments(sys.argv[1:], PROJECT_ROOT / "configs")
    try:
        main()
    except SystemExit as stop:
        if stop.code == 1:  # Hydra refused the command line, or the run failed: point out mistyped keys, if any
            print_override_suggestions(str(PROJECT_ROOT / "configs"), "train")
        raise
    finally:
        shutdown_distributed()
