"""Training steps that never wait for the GPU: host reads per step, counted through PyTorch's dispatcher on the CPU
(benchmarks/host_syncs.py), for both engines."""

from pathlib import Path

import pytest
import torch

from benchmarks.host_syncs import HostReadCounter, host_reads_per_step
from src.datamodules.fake_files import write_mnist
from train import ENGINES


def test_counter_sees_item_bool_and_value_dependent_shapes_but_not_cpu_only_checks() -> None:
    x = torch.tensor([0.5, -1.0, 2.0])
    with HostReadCounter() as counter:
        x.sum().item()
        bool(x.max() > 0)
        torch.unique(x)
        x[x > 0]
        torch.nn.functional.one_hot(torch.tensor([0, 2]), 3)  # checks its indices on the host on the CPU alone
    assert counter.total == 4 and all("test_host_syncs.py" in site for site in counter.sites)


@pytest.mark.parametrize("engine", ENGINES)
def test_speedrun_steps_read_nothing_on_the_host(tmp_path: Path, engine: str) -> None:
    write_mnist(tmp_path / "data", n_train=120, n_test=8)  # 104 training images: 13 batches
    overrides = [
        "experiment=mnist_speedrun",
        f"engine={engine}",
        f"paths.data_dir={tmp_path / 'data'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "paths.log_dir=" + str(tmp_path / "logs"),
        "data.verify_checksums=false",
        "data.val_size=16",
        "data.batch_size=8",
        "model.widths=[4,8]",
        "model.stem_width=4",
        "trainer.accelerator=cpu",
        "trainer.precision=32-true",
        *(["callbacks.lookahead=null"] if engine == "scratch" else []),  # a Lightning callback the loop refuses
    ]
    per_step, sites = host_reads_per_step(overrides, tmp_path, short=2, long=12)
    assert per_step == 0, f"host reads per step: {dict(sites)}"


@pytest.mark.parametrize("engine", ENGINES)
def test_the_non_finite_watch_is_read_once_per_check_interval_not_every_step(tmp_path: Path, engine: str) -> None:
    overrides = [
        f"engine={engine}",
        "data=xor_clouds",
        "data.batch_size=8",
        "paths.log_dir=" + str(tmp_path / "logs"),
        "trainer.accelerator=cpu",
        "callbacks.stop_on_non_finite.check_every_n_steps=10",
    ]
    per_step, sites = host_reads_per_step(overrides, tmp_path, short=2, long=12)  # steps 3-12: one read, at 10
    assert per_step == pytest.approx(0.1) and [site.split()[-1] for site in sites] == ["first_non_finite"]
