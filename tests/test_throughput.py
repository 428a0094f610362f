"""Every run logs its training throughput once per epoch to every logger, in both engines; the FLOP count and the
utilization are the arithmetic they claim to be."""

import csv
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from src.training.throughput import peak_flops, throughput_metrics, training_flops_per_sample
from train import ENGINES, train

RATE = "throughput/samples_per_sec"


def logged_rates(run_dir: Path) -> tuple[list[float], list[float]]:
    """The rates in the CSV log and in TensorBoard's event files."""
    with open(run_dir / "csv" / "metrics.csv") as f:
        from_csv = [float(row[RATE]) for row in csv.DictReader(f) if row.get(RATE)]
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    from_tensorboard = [event.value for event in events.Scalars(RATE)] if RATE in events.Tags()["scalars"] else []
    return from_csv, from_tensorboard


@pytest.mark.parametrize("engine", ENGINES)
def test_each_epoch_logs_samples_per_second_to_every_logger_and_the_switch_removes_it(make_cfg, engine) -> None:
    on = make_cfg(f"engine={engine}", "data=xor_clouds", "trainer.max_epochs=3", "logger=[csv,tensorboard]")
    _, metrics = train(on)
    from_csv, from_tensorboard = logged_rates(Path(on.paths.output_dir))
    assert len(from_csv) == 3 and all(rate > 0 for rate in from_csv)
    # TensorBoard holds the final value once more, as a metric of its HParams dashboard
    assert from_tensorboard == pytest.approx([*from_csv, from_csv[-1]], rel=1e-6)
    assert metrics[RATE] == pytest.approx(from_csv[-1])  # and the last is in the table printed at the end
    off = make_cfg(f"engine={engine}", "data=xor_clouds", "trainer.max_epochs=2", "callbacks.throughput=null")
    _, metrics = train(off)
    assert RATE not in metrics and logged_rates(Path(off.paths.output_dir)) == ([], [])


def test_training_flops_of_a_linear_layer_are_its_forward_and_weight_gradient_products() -> None:
    layer = nn.Linear(3, 2)
    before = layer.weight.detach().clone()
    assert training_flops_per_sample(layer, torch.randn(5, 3)) == 2 * (2 * 3 * 2)  # x @ W, then dL/dW (not dL/dx)
    assert torch.equal(layer.weight, before) and layer.weight.grad is None  # counted on a copy, on the meta device


def test_utilization_is_the_achieved_flop_rate_over_the_peak_of_every_process() -> None:
    metrics = throughput_metrics(samples=1000, seconds=2.0, world_size=2, flops_per_sample=36, peak=1_000_000)
    assert metrics == {RATE: 1000.0, "throughput/mfu": pytest.approx(1000.0 * 36 / 2_000_000)}
    assert "throughput/mfu" not in throughput_metrics(1000, 2.0, 1, 36, peak_flops(torch.device("cpu"), "32-true"))
