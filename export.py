"""Export a trained network to ONNX and prove the export: ``python export.py ckpt_path=<run>/checkpoints/x.ckpt``.

Writes ``model.onnx`` with a dynamic batch dimension, runs the ONNX checker, runs the file with onnxruntime on real
test inputs and compares with PyTorch: the largest absolute difference must stay within ``tolerance``.
"""

import gc

gc.disable()  # until the imports are done: src/utils/fast_start.py says why

import sys

from src.checks.command_line import answer_with_hydra, answered_by_hydra, missing_checkpoint_argument

if __name__ == "__main__" and answered_by_hydra(sys.argv[1:]):
    answer_with_hydra(lambda cfg: None, "export")  # --help, --cfg, --info: no run, so none of the heavy imports
if __name__ == "__main__" and (problem := missing_checkpoint_argument(sys.argv[1:], "export.py")) is not None:
    print(problem, file=sys.stderr)  # before the heavy imports, and before Hydra makes a run directory
    raise SystemExit(1)

import logging
from pathlib import Path

import hydra
import numpy as np
import onnx
import onnxruntime
import torch
from omegaconf import DictConfig, open_dict

from src.checks.disk import check_writable
from src.config.resolvers import register_resolvers
from src.errors import ConfigError, RunError, exit_on_run_error
from src.runs.rebuild import load_run_config, rebuild, required_checkpoint
from src.utils.console import print_metrics, quiet_third_party
from src.utils.fast_start import imports_done

imports_done()
register_resolvers()
quiet_third_party()
log = logging.getLogger(__name__)
MIN_OPSET = 18  # the oldest opset the torch.onnx (dynamo) exporter writes itself


def real_inputs(datamodule, samples: int) -> torch.Tensor:
    """The first ``samples`` test inputs, exactly as the model sees them (normalized)."""
    batches, count = [], 0
    for x, _ in datamodule.test_dataloader():
        batches.append(x.cpu())
        count += len(x)
        if count >= samples:
            break
    return torch.cat(batches)[:samples]


def check_settings(cfg: DictConfig) -> Path:
    """Before any work: where the file goes (its folder made if need be), the samples, tolerance and opset."""
    ckpt_path = required_checkpoint(cfg, "export.py")
    newest = onnx.defs.onnx_opset_version()
    if isinstance(cfg.opset, bool) or not isinstance(cfg.opset, int) or not MIN_OPSET <= cfg.opset <= newest:
        raise ConfigError(f"opset={cfg.opset!r}: torch.onnx exports opsets {MIN_OPSET} to {newest} here; e.g. opset=18")
    samples = cfg.samples
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:  # a batch of 2 is traced
        raise ConfigError(f"samples={samples!r} must be a whole number >= 2 (test inputs to compare on), e.g. 64")
    tolerance = cfg.tolerance
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not tolerance > 0:
        raise ConfigError(f"tolerance={tolerance!r} must be a number > 0, e.g. tolerance=1e-4")
    path = Path(cfg.output) if cfg.output else Path(ckpt_path).resolve().parent.parent / "model.onnx"
    if path.is_dir():
        raise ConfigError(f"output={path} is a folder; name the file to write in it, e.g. output={path / 'model.onnx'}")
    check_writable(path.parent, what="the output folder", fix="set output= to a path in a writable folder")
    return path


def export(cfg: DictConfig) -> dict[str, float]:
    path = check_settings(cfg)
    run_cfg = load_run_config(cfg.ckpt_path)
    if cfg.data_dir:
        with open_dict(run_cfg):
            run_cfg.data.data_dir = cfg.data_dir
    datamodule, net = rebuild(run_cfg, cfg.ckpt_path)
    inputs = real_inputs(datamodule, cfg.samples)

    # Written under a temporary name and renamed only once verified: nothing unverified is left behind.
    unverified = path.with_name(f".{path.name}.unverified")
    try:
        report = _export_and_verify(net, inputs, unverified, cfg)
        unverified.replace(path)
    finally:
        unverified.unlink(missing_ok=True)
    log.info("Wrote %s", path)
    return report


def _export_and_verify(net: torch.nn.Module, inputs: torch.Tensor, path: Path, cfg: DictConfig) -> dict[str, float]:
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        net,
        (inputs[:2],),
        dynamo=True,
        dynamic_shapes=({0: batch},),
        input_names=["input"],
        output_names=["output"],
        opset_version=cfg.opset,
    )
    program.save(str(path))
    onnx.checker.check_model(str(path), full_check=True)
    written = next(o.version for o in onnx.load(str(path), load_external_data=False).opset_import if o.domain == "")
    if written != cfg.opset:
        raise RunError(f"opset={cfg.opset} was asked, but the exporter wrote opset {written}; use opset={written}")

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ort_out = session.run(None, {"input": inputs.numpy()})[0]
    with torch.inference_mode():
        torch_out = net(inputs).numpy()
    difference = float(np.abs(ort_out - torch_out).max())
    log.info("PyTorch outputs[0]: %s", np.array2string(torch_out[0], precision=5))
    log.info("onnxruntime outputs[0]: %s", np.array2string(ort_out[0], precision=5))
    if difference > cfg.tolerance:
        raise RunError(
            f"onnxruntime differs from PyTorch by {difference:.3g} > tolerance {cfg.tolerance}; nothing written"
        )
    return {"samples": float(len(inputs)), "max_abs_difference": difference, "tolerance": float(cfg.tolerance)}


@hydra.main(version_base="1.3", config_path="configs", config_name="export")
def main(cfg: DictConfig) -> None:
    with exit_on_run_error(log):
        report = export(cfg)
    print_metrics(report, title=f"ONNX export of {cfg.ckpt_path}")


if __name__ == "__main__":
    main()
