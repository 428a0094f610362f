"""Hydra multiruns through the real CLI: every job runs, failures are recorded, and the report is written."""

import csv
import itertools
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from hydra import compose, initialize_config_dir

from src.config.resolvers import PROJECT_ROOT
from tests.conftest import CONFIG_DIR

QUIET = ["print_config=false", "callbacks.progress_bar=null", "callbacks.model_summary=null", "trainer.accelerator=cpu"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def multirun(log_dir: Path, *overrides: str) -> tuple[subprocess.CompletedProcess, Path]:
    command = [sys.executable, "train.py", "-m", f"paths.log_dir={log_dir}", *QUIET, *overrides]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    [sweep_dir] = (log_dir / "train" / "multiruns").iterdir()
    return done, sweep_dir


def summary(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "summary.csv") as f:
        return list(csv.DictReader(f))


XOR = ["data=xor", "model=two_layer"]
XOR_SWEEP = [*XOR, "trainer.max_epochs=3", "optimizer=sgd,adam", "optimizer.lr=0.1,0.01"]


@pytest.fixture(scope="module")
def interrupted_and_rerun(tmp_path_factory) -> tuple[Path, Path]:
    """A 2 x 2 sweep killed (SIGKILL) once its first job finished, then the same command again: the sweep
    directories of both."""
    log_dir = tmp_path_factory.mktemp("sweep")
    command = [sys.executable, "train.py", "-m", f"paths.log_dir={log_dir}", *QUIET, *XOR_SWEEP]
    first = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(
        json.loads(p.read_text())["status"] == "completed" for p in log_dir.glob("train/multiruns/*/0/result.json")
    ):
        assert time.monotonic() < deadline and first.poll() is None, "the first job never finished"
        time.sleep(0.02)
    first.kill()
    first.wait()
    [interrupted] = (log_dir / "train" / "multiruns").iterdir()
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    [rerun] = [d for d in (log_dir / "train" / "multiruns").iterdir() if d != interrupted]
    return interrupted, rerun


@pytest.fixture(scope="module")
def xor_sweep(interrupted_and_rerun: tuple[Path, Path]) -> Path:
    return interrupted_and_rerun[1]


def test_rerun_of_an_interrupted_sweep_reuses_its_finished_jobs(interrupted_and_rerun: tuple[Path, Path]) -> None:
    interrupted, rerun = interrupted_and_rerun
    assert not (interrupted / "3" / "result.json").is_file() and not (interrupted / "summary.csv").is_file()
    reused = json.loads((rerun / "0" / "result.json").read_text())
    assert reused["reused_from"] == str(interrupted / "0")
    assert reused["metrics"] == json.loads((interrupted / "0" / "result.json").read_text())["metrics"]
    assert "reused_from" not in json.loads((rerun / "3" / "result.json").read_text())  # trained in the rerun
    [job_0] = [row for row in summary(rerun) if row["job"] == "0"]
    assert job_0["status"] == "completed" and float(job_0["val/loss"]) == reused["optimized_metric"]["value"]


def test_two_by_two_sweep_reports_four_rows_best_first(xor_sweep: Path) -> None:
    rows = summary(xor_sweep)
    assert sorted(r["overrides"] for r in rows) == [
        "optimizer=adam optimizer.lr=0.01",
        "optimizer=adam optimizer.lr=0.1",
        "optimizer=sgd optimizer.lr=0.01",
        "optimizer=sgd optimizer.lr=0.1",
    ]
    assert [r["status"] for r in rows] == ["completed"] * 4
    values = [float(r["val/loss"]) for r in rows]
    assert values == sorted(values)
    assert [r["best"] for r in rows] == ["True", "False", "False", "False"]
    assert all(Path(r["checkpoint"]).is_file() and r["epochs"] == "3" for r in rows)
    markdown = (xor_sweep / "summary.md").read_text()
    assert "(best)" in markdown and "4 jobs, 4 completed, 0 failed" in markdown


def test_sweep_plots_are_written(xor_sweep: Path) -> None:
    for name in ("metric_vs_lr.png", "val_loss_curves.png"):
        data = (xor_sweep / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000


def test_report_is_rebuilt_from_the_job_directories_of_an_interrupted_sweep(xor_sweep: Path, tmp_path: Path) -> None:
    copy = tmp_path / xor_sweep.name
    shutil.copytree(xor_sweep, copy)
    for name in ("summary.csv", "summary.md"):
        (copy / name).unlink()
    (copy / "0" / "result.json").unlink()  # killed before it started training
    result = json.loads((copy / "1" / "result.json").read_text())
    (copy / "1" / "result.json").write_text(json.dumps({**result, "status": "running"}))  # killed mid-training
    done = subprocess.run(
        [sys.executable, "-m", "src.report", str(copy)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    statuses = {r["job"]: r["status"] for r in summary(copy)}
    assert statuses == {"0": "not started", "1": "interrupted", "2": "completed", "3": "completed"}
    assert [r["job"] for r in summary(copy)][-2:] == ["0", "1"]  # unfinished jobs go last


def test_diverging_job_is_reported_failed_and_the_others_finish(tmp_path: Path) -> None:
    done, sweep_dir = multirun(
        tmp_path, "experiment=linear_perceptron", "trainer.max_epochs=2", "optimizer.lr=1000,0.05"
    )
    assert done.returncode == 0
    rows = {r["overrides"]: r for r in summary(sweep_dir)}
    failed, completed = rows["optimizer.lr=1000"], rows["optimizer.lr=0.05"]
    assert failed["status"] == "failed" and "DivergedError: train/loss is" in failed["error"]
    assert "a learning rate too high (it is 1000" in failed["error"]
    assert completed["status"] == "completed" and completed["best"] == "True"
    assert "1 failed or unfinished" in (sweep_dir / "summary.md").read_text()


def test_sweep_whose_every_job_failed_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    done, sweep_dir = multirun(tmp_path, "experiment=linear_perceptron", "trainer.max_epochs=2", "optimizer.lr=1e3,1e4")
    assert done.returncode == 1
    assert (
        "Every job of the sweep failed (2 of 2); the first: DivergedError: train/loss is" in done.stdout + done.stderr
    )
    assert [r["status"] for r in summary(sweep_dir)] == ["failed", "failed"]


def test_rerun_in_a_pinned_sweep_dir_reuses_its_finished_jobs_in_place_and_leaves_their_records(tmp_path: Path) -> None:
    pinned = tmp_path / "sweep"
    command = [sys.executable, "train.py", "-m", f"hydra.sweep.dir={pinned}", f"paths.log_dir={tmp_path}", *QUIET]
    command += [*XOR, "trainer.max_epochs=2", "seed=1,2"]
    records = []
    for _ in range(2):
        done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        records.append([json.loads((pinned / job / "result.json").read_text()) for job in ("0", "1")])
    assert records[1] == records[0]  # each job's own record (its training time) stands, not a reuse of itself
    for job, record in zip(("0", "1"), records[0], strict=True):
        assert record["status"] == "completed" and "reused_from" not in record
        assert not list((pinned / job / "checkpoints").glob("*-v1.ckpt"))
    assert f"resume=auto: reusing the finished run {pinned / '0'}" in done.stdout + done.stderr


def test_joblib_jobs_run_in_worker_processes_each_on_gpus_no_running_job_shares(tmp_path: Path) -> None:
    # Two GPUs faked (sweep_gpus=2; the jobs train on the CPU), three jobs at once: two lease a GPU each, the third
    # waits for one to be freed.
    done, sweep_dir = multirun(
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=3",
        "sweep_gpus=2",
        *XOR,
        "trainer.max_epochs=3",
        "seed=1,2,3",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads((sweep_dir / job / "result.json").read_text()) for job in ("0", "1", "2")]
    assert all(r["status"] == "completed" for r in results)
    assert len({r["pid"] for r in results}) == 3, "jobs ran in one process: the launcher did not take them"
    assert len({Path(r["best_checkpoint"]).parent.parent for r in results}) == 3
    leases = [json.loads(line) for line in (sweep_dir / "gpu_leases.jsonl").read_text().splitlines()]
    assert sorted(lease["job"] for lease in leases) == [0, 1, 2]
    assert {lease["job"]: lease["gpus"] for lease in leases} == {job: r["gpus"] for job, r in enumerate(results)}
    assert {gpu for lease in leases for gpu in lease["gpus"]} == {0, 1}
    for first, second in itertools.combinations(leases, 2):  # held at the same time: never the same GPU
        overlap = first["acquired"] < second["released"] and second["acquired"] < first["released"]
        assert not (overlap and set(first["gpus"]) & set(second["gpus"])), (first, second)
    moments = sorted(moment for lease in leases for moment in (lease["acquired"], lease["released"]))
    assert all(sum(lease["acquired"] <= t < lease["released"] for lease in leases) <= 2 for t in moments)


def test_sigterm_to_a_joblib_sweep_stops_its_workers_with_their_state_saved_and_no_more_jobs(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    command = [sys.executable, "train.py", "-m", f"paths.log_dir={tmp_path}", f"hydra.sweep.dir={sweep_dir}", *QUIET]
    command += ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *XOR, "trainer.max_epochs=100000", "seed=1,2,3,4"]
    sweep = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not all((sweep_dir / job / "checkpoints" / "last.ckpt").exists() for job in ("0", "1")):
        assert time.monotonic() < deadline and sweep.poll() is None, "the two first jobs never got to training"
        time.sleep(0.2)
    workers = psutil.Process(sweep.pid).children(recursive=True)
    sweep.send_signal(signal.SIGTERM)  # to the parent alone, as a scheduler's preemption does
    assert sweep.wait(timeout=120) == 0
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, f"job processes left running: {alive}"
    for job in ("0", "1"):
        record = json.loads((sweep_dir / job / "result.json").read_text())
        assert record["status"] == "interrupted" and record["error"].startswith("SIGTERM at epoch")
    assert not (sweep_dir / "2" / "result.json").exists() and not (sweep_dir / "3" / "result.json").exists()


def test_slurm_launcher_composes_from_the_trainer_settings() -> None:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train", overrides=["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4"], return_hydra_config=True
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (4, 4, 1)


@pytest.mark.parametrize("name", ["optimizers", "learning_rates", "depth", "width", "activation"])
def test_study_sweeps_declare_their_grid(name: str) -> None:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment=sweep_{name}"], return_hydra_config=True)
    assert len(cfg.hydra.sweeper.params) == 1 and cfg.data.task == "binary"


def test_report_of_a_folder_that_holds_no_sweep_exits_non_zero_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "not_a_job").mkdir()
    command = [sys.executable, "-m", "src.report", str(tmp_path)]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert f"{tmp_path} holds no sweep: none of its folders is a job (with .hydra/overrides.yaml); usage: " in (
        done.stderr
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_job"]


def test_report_of_a_folder_of_single_runs_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    (tmp_path / "run" / ".hydra" / "overrides.yaml").write_text("[]\n")
    command = [sys.executable, "-m", "src.report", str(tmp_path)]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert f"{tmp_path} holds single runs, not a sweep (no multirun.yaml)" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_report_lists_a_job_whose_record_is_corrupt_by_name_and_reports_the_rest(xor_sweep: Path, tmp_path) -> None:
    copy = tmp_path / xor_sweep.name
    shutil.copytree(xor_sweep, copy)
    (copy / "2" / "result.json").write_text('{"status": "compl')  # cut short
    done = subprocess.run(
        [sys.executable, "-m", "src.report", str(copy)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    rows = {r["job"]: r for r in summary(copy)}
    assert (
        rows["2"]["status"] == "corrupt" and f"{copy / '2' / 'result.json'} is not readable JSON" in rows["2"]["error"]
    )
    assert [rows[job]["status"] for job in ("0", "1", "3")] == ["completed"] * 3


@pytest.fixture(scope="module")
def seeded_sweep(tmp_path_factory) -> Path:
    """2 optimizers x 2 learning rates x 3 seeds on XOR."""
    done, sweep_dir = multirun(
        tmp_path_factory.mktemp("seeds"), *XOR, "trainer.max_epochs=2", "optimizer=sgd,adam", "optimizer.lr=0.1,0.01",
        "seed=0,1,2", "logger=csv",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return sweep_dir


def test_seeded_sweep_reports_each_setting_as_a_group_of_seeds_best_first(seeded_sweep: Path) -> None:
    with open(seeded_sweep / "seeds.csv") as f:
        groups = list(csv.DictReader(f))
    assert sorted(g["group"] for g in groups) == [
        "optimizer=adam optimizer.lr=0.01",
        "optimizer=adam optimizer.lr=0.1",
        "optimizer=sgd optimizer.lr=0.01",
        "optimizer=sgd optimizer.lr=0.1",
    ]
    assert all(g["n"] == "3" and g["failed"] == "0" for g in groups)
    means = [float(g["mean"]) for g in groups]
    assert means == sorted(means)  # val/loss: lowest first
    jobs = {r["overrides"]: float(r["val/loss"]) for r in summary(seeded_sweep)}
    best = [v for overrides, v in jobs.items() if overrides.startswith(groups[0]["group"] + " seed=")]
    assert len(best) == 3 and float(groups[0]["mean"]) == pytest.approx(sum(best) / 3)
    assert all(float(g["ci95_low"]) <= float(g["mean"]) <= float(g["ci95_high"]) for g in groups)
    markdown = (seeded_sweep / "summary.md").read_text()
    assert "## Groups of seeds" in markdown and "(Welch's t-test, two-sided, p = " in markdown
    assert f"| {groups[0]['group']} (best) | 3 | " in markdown
    assert (seeded_sweep / "seeds.png").read_bytes().startswith(PNG_SIGNATURE)


def test_single_seed_sweep_keeps_its_one_row_per_job_table(xor_sweep: Path) -> None:
    assert not (xor_sweep / "seeds.csv").exists() and "Groups of seeds" not in (xor_sweep / "summary.md").read_text()
