"""Evaluate or predict with a trained checkpoint: ``python eval.py ckpt_path=<run>/checkpoints/epoch_NNN.ckpt``.

The model and data come from the run's saved config, so runs made with experiments and overrides evaluate exactly
as they were trained; the test metrics equal the ones the training run logged.
"""

import gc

gc.disable()  # until the imports are done: src/utils/fast_start.py says why

import sys

from src.checks.command_line import answer_with_hydra, answered_by_hydra, missing_checkpoint_argument

if __name__ == "__main__" and answered_by_hydra(sys.argv[1:]):
    answer_with_hydra(lambda cfg: None, "eval")  # --help, --cfg, --info: no run, so none of the heavy imports
if __name__ == "__main__" and (problem := missing_checkpoint_argument(sys.argv[1:], "eval.py")) is not None:
    print(problem, file=sys.stderr)  # before the heavy imports, and before Hydra makes a run directory
    raise SystemExit(1)

import csv
import json
import logging
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from src.checks.values import check_test_time_augmentation
from src.config.resolvers import register_resolvers
from src.errors import RunError, exit_on_run_error
from src.runs.rebuild import load_run_config, rebuild, required_checkpoint
from src.tasks import Task
from src.utils.console import print_metrics, quiet_third_party
from src.utils.fast_start import imports_done
from src.utils.figures import confusion_matrix_figure, predicted_vs_true_figure, save
from src.utils.image_folder import load_image_folder
from src.utils.predict import predictions_and_targets

imports_done()
register_resolvers()
quiet_third_party()
log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def write_predictions(path: Path, task: Task, outputs: torch.Tensor, names: list[str], targets=None) -> Path:
    """One row per sample: its name or index, the prediction (class and confidence for classifiers), the target."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        if task is Task.MULTICLASS:
            probabilities = outputs.softmax(1)
            confidence, predicted = probabilities.max(1)
            writer.writerow(["sample", "predicted", "confidence", *([] if targets is None else ["target"])])
            for i, name in enumerate(names):
                extra = [] if targets is None else [int(targets[i])]
                writer.writerow([name, int(predicted[i]), f"{confidence[i]:.6f}", *extra])
        else:
            writer.writerow(
                ["sample", *(f"output_{j}" for j in range(outputs.shape[1])), *([] if targets is None else ["target"])]
            )
            for i, name in enumerate(names):
                extra = [] if targets is None else [targets[i].flatten().tolist()[0]]
                writer.writerow([name, *(f"{v:.6f}" for v in outputs[i].tolist()), *extra])
    return path


def evaluate(cfg: DictConfig) -> dict[str, float]:
    if cfg.mode not in ("test", "predict") or cfg.split not in SPLITS:
        raise RunError(f"mode={cfg.mode!r}, split={cfg.split!r}: mode is test or predict, split one of {list(SPLITS)}")
    run_cfg = load_run_config(required_checkpoint(cfg, "eval.py"))
    with open_dict(run_cfg):
        if cfg.data_dir:
            run_cfg.data.data_dir = cfg.data_dir
        for key in ("test_time_flip", "test_time_shift"):
            if cfg[key] is not None:
                run_cfg.module[key] = cfg[key]
    check_test_time_augmentation(run_cfg)
    datamodule, net = rebuild(run_cfg, cfg.ckpt_path)
    if cfg.split == "val" and not datamodule.holds_out_validation():
        raise RunError(
            "split=val: this run trained on every training image (data.val_size=0) and held none out; evaluate "
            "split=test or split=train"
        )
    output_dir = Path(cfg.paths.output_dir)
    task = Task.parse(run_cfg.data.task)
    module = instantiate(run_cfg.module, net=net)  # no optimizer: nothing here trains
    trainer = L.Trainer(
        accelerator=cfg.accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    datamodule.set_placement(trainer.strategy.root_device)  # the loaders put the data on the trainer's device
    if cfg.images:
        paths, images = load_image_folder(Path(cfg.images), run_cfg.data)
        outputs = module.predict(images)
        write_predictions(output_dir / "predictions.csv", task, outputs.detach(), [p.name for p in paths])
        log.info("Wrote %d predictions to %s", len(paths), output_dir / "predictions.csv")
        return {}
    loader = datamodule.evaluation_loader(SPLITS.index(cfg.split))
    if cfg.mode == "predict":
        outputs, targets = predictions_and_targets(net.to(trainer.strategy.root_device), loader, module.predict)
        write_predictions(output_dir / "predictions.csv", task, outputs, [str(i) for i in range(len(outputs))], targets)
        log.info("Wrote %d predictions to %s", len(outputs), output_dir / "predictions.csv")
        return {}
    metrics = {k.replace("test/", f"{cfg.split}/"): v for k, v in trainer.test(module, dataloaders=loader)[0].items()}
    if module.confusion_matrix is not None:
        save(confusion_matrix_figure(module.confusion_matrix), output_dir / "confusion_matrix.png")
    if task is Task.REGRESSION:
        outputs, targets = predictions_and_targets(net, loader, module.predict)
        save(predicted_vs_true_figure(outputs, targets), output_dir / "predicted_vs_true.png")
    (output_dir / "metrics.json").write_text(json.dumps({"ckpt_path": str(cfg.ckpt_path), **metrics}, indent=2))
    return metrics


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    with exit_on_run_error(log):
        metrics = evaluate(cfg)
    if metrics:
        print_metrics(metrics, title=f"{cfg.split} metrics of {cfg.ckpt_path}", output_dir=str(cfg.paths.output_dir))


if __name__ == "__main__":
    main()
