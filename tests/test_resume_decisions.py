"""``resume=auto`` decides from what is on disk, and says what it decided: its own (pinned) run directory, live
runs and reused pids, other data at the same path, the same data at another path; data caches that are damaged."""

import json
import logging
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from src.datamodules.fake_files import write_mnist
from src.datamodules.image_cache import cache_path
from src.errors import ConfigError, RunInterruptedError
from src.runs.liveness import is_alive, process_identity
from src.runs.resume import Fingerprint, Resumption, earlier_runs, find_resumption, fingerprint
from tests.conftest import compose_train_config, read_result
from tests.phase_hooks import at_phase, send
from tests.test_fault_injection import RUN
from train import train

SHORT = [*RUN, "trainer.max_epochs=3"]
MNIST = ["data=mnist", "data.verify_checksums=false", "data.val_size=10", "model=mlp", "trainer.max_epochs=1"]


def in_dir(run_dir: Path, log_dir: Path, *overrides: str):
    cfg = compose_train_config([*SHORT, *overrides], run_dir)
    cfg.paths.log_dir = str(log_dir)
    return cfg


def test_pinned_run_dir_continues_its_own_checkpoint_then_reuses_its_own_result(
    tmp_path: Path, monkeypatch, caplog
) -> None:
    caplog.set_level(logging.INFO)
    pinned, logs = tmp_path / "pinned", tmp_path / "logs"
    at_phase("training", send(signal.SIGTERM), monkeypatch.setattr)
    with pytest.raises(RunInterruptedError):
        train(in_dir(pinned, logs))
    monkeypatch.undo()
    last = pinned / "checkpoints" / "last.ckpt"
    epoch_of_interrupt = torch.load(last, weights_only=False)["epoch"]

    again = in_dir(pinned, logs, "resume=auto")
    train(again)
    result = read_result(again)
    assert f"resume=auto: continuing {last} (interrupted run {pinned})" in caplog.text
    assert result["resumed_from"] == str(last) and result["epochs"] == 3 and epoch_of_interrupt == 1
    assert not list((pinned / "checkpoints").glob("*-v1.ckpt"))

    value, metrics = train(in_dir(pinned, logs, "resume=auto"))
    assert f"resume=auto: reusing the finished run {pinned}" in caplog.text
    assert read_result(again) == result  # its own record stands, training time and all
    assert metrics == result["metrics"] and value == result["optimized_metric"]["value"]


def running_record(**identity) -> dict:
    return {"status": "running", **process_identity(), **identity}


def test_a_run_is_alive_only_while_its_own_process_runs_not_another_with_its_pid() -> None:
    assert is_alive(running_record())
    assert not is_alive(running_record(process_start="another-boot:12345"))  # the pid was reused
    assert not is_alive(running_record(pid=2**22 + 1))  # no such process
    assert not is_alive({**running_record(), "status": "interrupted"})


def test_resume_while_the_same_experiment_trains_and_a_pinned_dir_in_use_are_refused(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    live = logs / "train" / "runs" / "live"
    first = in_dir(live, logs, "trainer.max_epochs=1")
    train(first)
    record = read_result(first)
    (live / "result.json").write_text(json.dumps({**record, **running_record()}))  # as if still training

    other = in_dir(logs / "train" / "runs" / "other", logs, "trainer.max_epochs=1", "resume=auto")
    with pytest.raises(ConfigError, match=rf"^resume=auto: {live} is training this same experiment now \(pid "):
        train(other)  # it would continue the live run's checkpoint: two live branches of one run
    assert not (Path(other.paths.output_dir) / "checkpoints").exists()
    # A sweep job passes a live twin over (the same point of a search, run at once) and trains a fresh run.
    runs = earlier_runs(logs / "train", exclude=Path(other.paths.output_dir))
    mine = Fingerprint(**record["fingerprint"])
    assert find_resumption(logs / "train", mine, None, runs, refuse_live=False) == Resumption()

    with pytest.raises(ConfigError, match=rf"^{live} is in use by a live run \(pid {os.getpid()}\)"):
        train(in_dir(live, logs, "trainer.max_epochs=1", "resume=auto"))
    assert read_result(first)["pid"] == os.getpid()  # its record untouched


def test_other_data_at_the_same_path_is_never_reused_the_same_data_moved_is(tmp_path: Path, caplog) -> None:
    logs, files = tmp_path / "logs", tmp_path / "files"

    def run(name: str, data_dir: Path) -> dict:
        cfg = compose_train_config([*MNIST, f"paths.data_dir={data_dir}", "resume=auto"], logs / "train/runs" / name)
        cfg.paths.log_dir = str(logs)
        train(cfg)
        return read_result(cfg)

    write_mnist(files, seed=0)
    first = run("a", files)
    write_mnist(files, seed=1)  # other images and labels under the same names
    relabelled = run("b", files)
    assert "reused_from" not in relabelled and relabelled["fingerprint"]["data"] != first["fingerprint"]["data"]

    shutil.copytree(files, tmp_path / "moved")  # new path, new modification times, same contents
    moved = run("c", tmp_path / "moved")
    assert moved["reused_from"] == str(logs / "train" / "runs" / "b")


@pytest.fixture
def mnist_data(make_cfg, tmp_path: Path):
    write_mnist(tmp_path / "files")

    def build(*overrides: str):
        return instantiate(make_cfg(*MNIST, f"paths.data_dir={tmp_path / 'files'}", *overrides).data)

    return build


def test_damaged_data_cache_is_decoded_again_with_a_warning_naming_it(mnist_data, caplog) -> None:
    data = mnist_data()
    expected = data.load_tensors()
    cache = cache_path(data.cache_dir, "mnist", data.folder)
    cache.write_bytes(cache.read_bytes()[:5000])  # truncated, as a full disk or a killed copy leaves it
    again = mnist_data().load_tensors()
    assert f"The data cache {cache} is damaged" in caplog.text
    assert all(torch.equal(again[key], expected[key]) for key in expected)
    payload = torch.load(cache, weights_only=True)
    payload["tensors"]["train_labels"][0] += 1  # intact as a file, wrong as data
    torch.save(payload, cache)
    mnist_data().load_tensors()
    assert f"The data cache {cache} fails its checksum; decoding the data again" in caplog.text


def test_unwritable_cache_dir_is_found_before_decoding_which_then_runs_in_memory(mnist_data, tmp_path, caplog) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    tensors = mnist_data(f"data.cache_dir={blocker / 'cache'}").load_tensors()
    assert len(tensors["test_labels"]) == 20
    assert f"Cannot write the data cache in {blocker / 'cache'} (Not a directory): decoding in memory" in caplog.text


def test_a_run_is_the_same_run_whatever_it_shows_while_training_and_another_with_another_setting(
    tmp_path: Path,
) -> None:
    def digest(*overrides: str) -> str:
        return fingerprint(compose_train_config(list(overrides), tmp_path / "run")).config

    shown = digest()
    assert digest("callbacks.progress_bar=null", "trainer.enable_progress_bar=false") == shown
    assert digest("callbacks.model_summary=null", "+trainer.profiler=simple") == shown
    assert digest("optimizer.lr=0.02") != shown
