"""Which GPUs a sweep job may lease, and the lock that keeps two running jobs off one GPU (the real parallel sweep is
in tests/test_sweeps.py)."""

import fcntl
from pathlib import Path

import pytest

import src.sweeps.gpu_lease as gpu_lease
from src.errors import ConfigError
from src.sweeps.gpu_lease import _release, _try_lock, gpu_pool, gpus_per_job, lease_wanted


@pytest.mark.parametrize(("sweep_gpus", "pool"), [(None, []), (2, [0, 1]), ([3, 1], [3, 1]), ("auto", list(range(0)))])
def test_pool_is_every_visible_gpu_a_count_or_the_indices_named(sweep_gpus, pool) -> None:
    assert gpu_pool(sweep_gpus) == pool  # auto: this machine has no GPU


@pytest.mark.parametrize("sweep_gpus", [0, -1, True, "all", [0, 0], [-1], []])
def test_a_pool_that_names_no_gpu_rightly_is_refused_saying_what_works(sweep_gpus) -> None:
    with pytest.raises(ConfigError, match=r"^sweep_gpus=.*: give auto \(every visible GPU\), a number of GPUs"):
        gpu_pool(sweep_gpus)


def test_gpus_per_job_follow_trainer_devices_and_a_job_cannot_name_its_own() -> None:
    assert (gpus_per_job(1, [0, 1, 2]), gpus_per_job(2, [0, 1, 2]), gpus_per_job("auto", [0, 1, 2])) == (1, 2, 3)
    with pytest.raises(ConfigError, match=r"^trainer.devices=\[1\] names GPUs itself"):
        gpus_per_job([1], [0, 1])


def test_a_sweep_on_the_cpu_leases_nothing_unless_the_pool_is_named(make_cfg, monkeypatch) -> None:
    monkeypatch.setattr(gpu_lease, "in_sweep", lambda: True)
    assert lease_wanted(make_cfg()) == ([], 0)  # auto, and the run does not use CUDA: jobs run as before
    assert lease_wanted(make_cfg("sweep_gpus=2")) == ([0, 1], 1)
    with pytest.raises(ConfigError, match=r"^trainer.devices=3 GPUs per job, but sweep_gpus=2 holds 2$"):
        lease_wanted(make_cfg("sweep_gpus=2", "trainer.devices=3"))
    monkeypatch.setattr(gpu_lease, "in_sweep", lambda: False)
    assert lease_wanted(make_cfg("sweep_gpus=2")) == ([], 0)  # a single run takes what trainer.devices says


def test_a_gpu_locked_by_another_job_is_skipped_and_free_again_once_released(tmp_path: Path) -> None:
    other_job = open(tmp_path / "gpu0.lock", "a")  # noqa: SIM115
    fcntl.flock(other_job, fcntl.LOCK_EX | fcntl.LOCK_NB)
    held = _try_lock(tmp_path, [0, 1], 1)
    assert [index for index, _ in held] == [1]
    assert [index for index, _ in _try_lock(tmp_path, [0, 1], 2)] == []  # both taken now: none left to lease
    other_job.close()
    _release(held)
    again = _try_lock(tmp_path, [0, 1], 2)
    assert [index for index, _ in again] == [0, 1]
    _release(again)
