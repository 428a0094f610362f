"""Export a trained network to ONNX and prove the export: ``python export.py ckpt_path=<run>/checkpoints/x.ckpt``.

Writes ``model.onnx`` with a dynamic batch dimension, runs the ONNX checker, runs the file with onnxruntime on real
test inputs and compares with PyTorch: the largest absolute difference must stay within ``tolerance``.
"""

import logging
from pathlib import Path

import hydra
import numpy as np
import onnx
import onnxruntime
import torch
from omegaconf import DictConfig, open_dict

from src.utils.console import print_metrics, quiet_third_party
from src.utils.errors import RunError, exit_on_run_error
from src.utils.resolvers import register_resolvers
from src.utils.runs import load_run_config, rebuild

register_resolvers()
quiet_third_party()
log = logging.getLogger(__name__)


def real_inputs(datamodule, samples: int) -> torch.Tensor:
    """The first ``samples`` test inputs, exactly as the model sees them (normalized)."""
    datamodule.prepare_data()
    datamodule.setup("test")
    batches, count = [], 0
    for x, _ in datamodule.test_dataloader():
        batches.append(x.cpu())
        count += len(x)
        if count >= samples:
            break
    return torch.cat(batches)[:samples]


def export(cfg: DictConfig) -> dict[str, float]:
    run_cfg = load_run_config(cfg.ckpt_path)
    if cfg.data_dir:
        with open_dict(run_cfg):
            run_cfg.data.data_dir = cfg.data_dir
    datamodule, net = rebuild(run_cfg, cfg.ckpt_path)
    inputs = real_inputs(datamodule, cfg.samples)
    path = Path(cfg.output) if cfg.output else Path(cfg.ckpt_path).resolve().parent.parent / "model.onnx"

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

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ort_out = session.run(None, {"input": inputs.numpy()})[0]
    with torch.inference_mode():
        torch_out = net(inputs).numpy()
    difference = float(np.abs(ort_out - torch_out).max())
    report = {"samples": float(len(inputs)), "max_abs_difference": difference, "tolerance": float(cfg.tolerance)}
    log.info("PyTorch outputs[0]: %s", np.array2string(torch_out[0], precision=5))
    log.info("onnxruntime outputs[0]: %s", np.array2string(ort_out[0], precision=5))
    if difference > cfg.tolerance:
        path.unlink()
        raise RunError(
            f"onnxruntime differs from PyTorch by {difference:.3g} > tolerance {cfg.tolerance}; removed {path}"
        )
    log.info("Wrote %s", path)
    return report


@hydra.main(version_base="1.3", config_path="configs", config_name="export")
def main(cfg: DictConfig) -> None:
    with exit_on_run_error(log):
        report = export(cfg)
    print_metrics(report, title=f"ONNX export of {cfg.ckpt_path}")


if __name__ == "__main__":
    main()
