"""Faults a long run meets on a shared machine: kill -9, SIGTERM, Ctrl-C, half-written and foreign checkpoints,
NaNs, unwritable directories, an interrupted sweep. Each must lose nothing and say what happened."""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from src.checks.output_dir import CheckOutputDir
from src.config import builders
from src.config.resolvers import PROJECT_ROOT
from src.errors import ConfigError, DivergedError
from src.runs.resume import newest_good_checkpoint
from src.stop_and_resume.checkpoints import read_checkpoint
from tests.conftest import compose_train_config, read_result
from train import train

# 50 steps per epoch with dropout: RNG, loader position and metric states all matter for an exact resume.
RUN = [
    "data=xor_clouds",
    "data.n=500",
    "model.dropout=0.2",
    "data.batch_size=8",
    "trainer.max_epochs=8",
    "~callbacks.early_stopping",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "logger=csv",
    "print_config=false",
    "trainer.accelerator=cpu",
]


def run_dirs(log_dir: Path) -> list[Path]:
    runs = log_dir / "train" / "runs"
    return sorted(runs.iterdir()) if runs.is_dir() else []


def wait_until(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def signalled_in_training(log_dir: Path, signal_name: str, *overrides: str) -> subprocess.CompletedProcess:
    """``python train.py`` sent ``signal_name`` in the middle of the second epoch it trains (tests/phase_hooks.py: at
    a counted forward pass, so no timing can move it)."""
    command = [sys.executable, "-m", "tests.phase_hooks", "training", signal_name, f"paths.log_dir={log_dir}"]
    return subprocess.run([*command, *RUN, *overrides], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)


def net_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("net.")}


def run_config(log_dir: Path, name: str, *overrides: str) -> DictConfig:
    """The config ``python train.py paths.log_dir=<log_dir> ...`` runs, in the run directory ``name``."""
    cfg = compose_train_config([*RUN, *overrides], log_dir / "train" / "runs" / name)
    cfg.paths.log_dir = str(log_dir)
    return cfg


def uninterrupted(tmp_path: Path, engine: str) -> tuple[dict, dict[str, torch.Tensor]]:
    cfg = compose_train_config([*RUN, f"engine={engine}"], tmp_path / "reference")
    train(cfg)
    return read_result(cfg), net_weights(Path(cfg.paths.output_dir))


@pytest.mark.parametrize(
    ("engine", "signum"),
    # Lightning's Ctrl-C is forwarded as SIGTERM, so one stage covers both signals there.
    [("lightning", signal.SIGINT), ("scratch", signal.SIGTERM)],
    ids=["lightning-SIGINT", "scratch-SIGTERM"],
)
def test_killed_and_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path: Path, engine: str, signum) -> None:
    log_dir = tmp_path / "logs"
    killed = signalled_in_training(log_dir, "SIGKILL", f"engine={engine}")
    assert killed.returncode == -signal.SIGKILL
    stopped = signalled_in_training(log_dir, signal.Signals(signum).name, f"engine={engine}", "resume=auto")
    run, output = run_dirs(log_dir)[-1], stopped.stdout + stopped.stderr
    assert stopped.returncode == 0, output
    assert f"{signal.Signals(signum).name} at epoch" in output and f"saved {run}/checkpoints/last.ckpt" in output
    assert "To resume, run: python train.py" in output and "resume=auto" in output
    assert json.loads((run / "result.json").read_text())["status"] == "interrupted"
    read_checkpoint(run / "checkpoints" / "last.ckpt")

    final = run_config(log_dir, "final", f"engine={engine}", "resume=auto")  # in this process: the same code path
    train(final)
    result = read_result(final)
    assert result["status"] == "completed" and result["resumed_from"] == str(run / "checkpoints" / "last.ckpt")

    reference, reference_weights = uninterrupted(tmp_path, engine)
    assert result["global_step"] == reference["global_step"]
    for name, value in net_weights(Path(final.paths.output_dir)).items():
        torch.testing.assert_close(value, reference_weights[name], rtol=0, atol=0)
    for name in ("train/loss", "val/loss", "test/loss", "test/acc"):
        assert result["metrics"][name] == pytest.approx(reference["metrics"][name], rel=1e-6), name


SAVE_FOREVER = """
import sys, torch
from pathlib import Path
from src.stop_and_resume.checkpoints import save_atomic
for step in range(10**9):
    save_atomic({"state_dict": {"w": torch.full((4_000_000,), float(step))}, "epoch": step, "global_step": step},
                Path(sys.argv[1]))
"""


def test_kill_during_checkpoint_writes_never_leaves_a_half_written_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "last.ckpt"
    writer = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(path)], cwd=PROJECT_ROOT)
    wait_until(lambda: path.is_file())
    time.sleep(0.2)  # a few writes of 16 MB later, most likely in the middle of one
    writer.kill()
    writer.wait()
    checkpoint = read_checkpoint(path)
    assert checkpoint["epoch"] >= 0 and bool((checkpoint["state_dict"]["w"] == float(checkpoint["epoch"])).all())
    assert newest_good_checkpoint([tmp_path]) == path  # leftover hidden .tmp files are never candidates


def mark_killed(run_dir: Path) -> None:
    """What SIGKILL leaves in result.json: status running, of a process that no longer exists."""
    record = json.loads((run_dir / "result.json").read_text())
    record.update(status="running", pid=2**22 + 1)
    (run_dir / "result.json").write_text(json.dumps(record))


def test_resume_auto_skips_truncated_checkpoints_for_the_newest_good_one(tmp_path: Path, caplog) -> None:
    def cfg_in(name: str, *extra: str) -> DictConfig:
        every_epoch = "callbacks.model_checkpoint.save_top_k=-1"
        return run_config(tmp_path / "logs", name, "trainer.max_epochs=3", every_epoch, *extra)

    first = cfg_in("a")
    train(first)
    mark_killed(Path(first.paths.output_dir))
    checkpoints = Path(first.paths.output_dir) / "checkpoints"
    for damaged in ("epoch_002.ckpt", "last.ckpt"):  # the newest two, as a crash mid-write could leave them
        (checkpoints / damaged).write_bytes((checkpoints / damaged).read_bytes()[:1000])

    resumed = cfg_in("b", "resume=auto")
    train(resumed)
    result = read_result(resumed)
    assert result["resumed_from"] == str(checkpoints / "epoch_001.ckpt") and result["epochs"] == 3
    for damaged in ("epoch_002.ckpt", "last.ckpt"):
        assert f"Skipping a damaged checkpoint: {checkpoints / damaged} is not a readable checkpoint" in caplog.text


def test_run_killed_after_its_last_epoch_resumes_to_its_best_score_and_checkpoint(tmp_path: Path) -> None:
    first = run_config(tmp_path / "logs", "a", "trainer.max_epochs=3")
    value, metrics = train(first)
    mark_killed(Path(first.paths.output_dir))  # as if killed while testing
    again = run_config(tmp_path / "logs", "b", "trainer.max_epochs=3", "resume=auto")
    again_value, again_metrics = train(again)
    assert again_value == value and again_metrics["test/loss"] == metrics["test/loss"]
    best = Path(read_result(again)["best_checkpoint"])  # copied into the new run directory, which stands alone
    assert best.parent == Path(again.paths.output_dir) / "checkpoints" and best.is_file()


@pytest.fixture
def adam_mlp_checkpoint(make_cfg) -> Path:
    cfg = make_cfg(*RUN, "trainer.max_epochs=1")
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"


def refused_before_training(make_cfg, *overrides: str) -> tuple[str, DictConfig]:
    cfg = make_cfg(*RUN, *overrides)
    with pytest.raises(ConfigError) as error:
        train(cfg)
    assert read_result(cfg)["status"] == "failed"
    assert (
        not (Path(cfg.paths.output_dir) / "checkpoints").exists() and not (Path(cfg.paths.output_dir) / "csv").exists()
    )
    return str(error.value), cfg


def test_truncated_checkpoint_is_refused_naming_the_file(make_cfg, adam_mlp_checkpoint: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(adam_mlp_checkpoint.read_bytes()[:2000])
    message, _ = refused_before_training(make_cfg, f"ckpt_path={truncated}")
    assert message.startswith(f"{truncated} is not a readable checkpoint (truncated")


@pytest.mark.parametrize("key", ["ckpt_path", "init_weights"])
def test_a_text_file_named_as_a_checkpoint_is_refused_naming_it(make_cfg, tmp_path: Path, key: str) -> None:
    text = tmp_path / "notes.md"
    text.write_text("# not a checkpoint\n")
    message, _ = refused_before_training(make_cfg, f"{key}={text}")
    assert message.startswith(f"{text} is not a readable checkpoint (truncated or not a torch file: UnpicklingError")


def test_checkpoint_of_another_model_is_refused(make_cfg, adam_mlp_checkpoint: Path) -> None:
    message, _ = refused_before_training(make_cfg, "model.hidden_sizes=[32]", f"ckpt_path={adam_mlp_checkpoint}")
    assert message.startswith(f"{adam_mlp_checkpoint} holds weights of another model or shape")


def test_checkpoint_of_another_optimizer_is_refused(make_cfg, adam_mlp_checkpoint: Path) -> None:
    message, _ = refused_before_training(make_cfg, "optimizer=sgd", f"ckpt_path={adam_mlp_checkpoint}")
    assert f"{adam_mlp_checkpoint} was written with another optimizer: it has no ['dampening', 'momentum'" in message
    assert f"init_weights={adam_mlp_checkpoint}" in message


def test_torch_file_that_is_no_checkpoint_is_refused(make_cfg, tmp_path: Path) -> None:
    foreign = tmp_path / "weights.pt"
    torch.save({"layer.weight": torch.zeros(2)}, foreign)
    message, _ = refused_before_training(make_cfg, f"ckpt_path={foreign}")
    assert message == f"{foreign} is not a checkpoint of this template: it has no state_dict, epoch, global_step"


def poison_at_step(monkeypatch, step: int, where: str) -> None:
    """Fault injection: the network's output (``loss``) or its first gradient (``gradient``) turns NaN at the
    ``step``-th training forward pass."""
    build = builders.build_model

    def build_poisoned(cfg: DictConfig) -> torch.nn.Module:
        net = build(cfg)
        calls = {"n": 0}

        def forward_hook(module, inputs, output):
            if not module.training:
                return output
            calls["n"] += 1
            if calls["n"] - 1 != step:
                return output
            if where == "loss":
                return output * float("nan")
            output.register_hook(lambda grad: torch.full_like(grad, float("nan")))  # a finite loss, NaN gradients
            return output

        net.register_forward_hook(forward_hook)
        return net

    monkeypatch.setattr(builders, "build_model", build_poisoned)


@pytest.mark.parametrize("engine", ["lightning", "scratch"])
@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_non_finite_step_stops_at_that_step_with_the_last_checkpoint_intact(
    make_cfg, monkeypatch, engine, where
) -> None:
    poison_at_step(monkeypatch, 75, where)
    cfg = make_cfg(*RUN, f"engine={engine}", "trainer.max_epochs=3")
    step = 75 if where == "loss" else 76  # NaN gradients make NaN weights, and those the next step's loss
    with pytest.raises(DivergedError, match=rf"^train/loss is nan at step {step} \(epoch 1\).*learning rate too high"):
        train(cfg)
    assert read_result(cfg)["status"] == "failed"
    last = read_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 0 and all(bool(torch.isfinite(v).all()) for v in last["state_dict"].values())


@pytest.mark.parametrize("engine", ["lightning", "scratch"])
@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_non_finite_batch_inside_an_accumulation_window_is_named_by_its_optimizer_step(
    make_cfg, monkeypatch, engine, where
) -> None:
    poison_at_step(monkeypatch, 101, where)  # batches 100 and 101 (epoch 2) add up into optimizer step 50
    settings = ["trainer.accumulate_grad_batches=2", "trainer.gradient_clip_val=1.0"]
    cfg = make_cfg(*RUN, f"engine={engine}", "trainer.max_epochs=3", *settings)
    step = 50 if where == "loss" else 51
    with pytest.raises(DivergedError, match=rf"^train/loss is nan at step {step} \(epoch 2\)"):
        train(cfg)


@pytest.mark.parametrize("engine", ["lightning", "scratch"])
def test_non_finite_gradient_at_the_last_step_of_an_epoch_stops_before_the_epochs_checkpoint(
    make_cfg, monkeypatch, engine
) -> None:
    poison_at_step(monkeypatch, 149, "gradient")  # every loss of epoch 2 is finite; its last update is not
    cfg = make_cfg(*RUN, f"engine={engine}", "trainer.max_epochs=4")
    with pytest.raises(DivergedError, match=r"^the norm of net\.net\.1\.weight is nan at step 149 \(epoch 2\)"):
        train(cfg)  # the same name in both engines: the one the Lightning module and the checkpoints use
    last = read_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 1 and all(bool(torch.isfinite(v).all()) for v in last["state_dict"].values())


def test_non_finite_gradient_stops_before_a_checkpoint_saved_every_n_steps(make_cfg, monkeypatch) -> None:
    poison_at_step(monkeypatch, 79, "gradient")  # step 80 saves last.ckpt, before any check would read
    cfg = make_cfg(*RUN, "trainer.max_epochs=3", "+callbacks.last_checkpoint.every_n_train_steps=10")
    with pytest.raises(DivergedError, match=r"^the norm of net\.net\.1\.weight is nan at step 79 \(epoch 1\)"):
        train(cfg)
    last = read_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 70 and all(bool(torch.isfinite(v).all()) for v in last["state_dict"].values())


def test_a_stop_signal_after_a_non_finite_step_reports_it_instead_of_saving_the_diverged_weights(
    make_cfg, monkeypatch
) -> None:
    poison_at_step(monkeypatch, 75, "loss")  # 100 steps per epoch: the next check would come at step 100
    build, calls = builders.build_model, {"n": 0}

    def build_then_signal_at_80(cfg: DictConfig) -> torch.nn.Module:
        def forward_hook(module, inputs, output):
            calls["n"] += module.training
            if calls["n"] == 80:
                os.kill(os.getpid(), signal.SIGTERM)

        net = build(cfg)
        net.register_forward_hook(forward_hook)
        return net

    monkeypatch.setattr(builders, "build_model", build_then_signal_at_80)
    cfg = make_cfg(*RUN, "engine=lightning", "trainer.max_epochs=3", "data.batch_size=4")
    with pytest.raises(DivergedError, match=r"^train/loss is nan at step 75 \(epoch 0\)"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt").exists()  # no NaN weights to resume


def test_unwritable_run_directory_is_refused_at_start(make_cfg, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cfg = compose_train_config(RUN, blocker / "run")
    with pytest.raises(ConfigError, match=rf"cannot write the run directory {blocker / 'run'}: .*paths.log_dir"):
        train(cfg)


def test_unwritable_log_dir_is_one_line_before_hydra_creates_the_run_directory(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    run_dir = blocker / "logs" / "train" / "runs" / "run"
    with pytest.raises(SystemExit) as stop:
        CheckOutputDir().on_run_start(OmegaConf.create({"hydra": {"run": {"dir": str(run_dir)}}}))
    assert stop.value.code == 1
    assert capsys.readouterr().err.startswith(f"Error: cannot write the run directory {run_dir}: Not a directory")


def test_a_run_dir_holding_something_else_is_refused_before_hydra_writes_into_it(tmp_path: Path, capsys) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "config.yaml").write_text("mine: true\n")

    def start(task: str) -> None:
        CheckOutputDir().on_run_start(OmegaConf.create({"task_name": task, "hydra": {"run": {"dir": str(tmp_path)}}}))

    with pytest.raises(SystemExit) as stop:
        start("train")
    assert stop.value.code == 1
    assert capsys.readouterr().err == (
        f"Error: hydra.run.dir={tmp_path} already holds checkpoints, config.yaml, and is not a run of this template "
        "(no result.json): a run would overwrite them; pick a new or empty directory\n"
    )
    start("eval")  # eval and export keep their own files in a directory of theirs, and may run there again
    (tmp_path / "result.json").write_text("{}")  # a run of the template: continued or reused in place
    start("train")


@pytest.mark.parametrize("engine", ["lightning", "scratch"])
def test_a_checkpoint_the_file_size_limit_cuts_short_is_one_line_and_leaves_no_part_behind(
    tmp_path: Path, engine: str
) -> None:
    def limit_file_size() -> None:  # 300 KiB: the logs fit, a checkpoint of this 512-512 MLP does not
        resource.setrlimit(resource.RLIMIT_FSIZE, (300 * 1024, 300 * 1024))

    command = [sys.executable, "train.py", f"engine={engine}", f"paths.log_dir={tmp_path}", "print_config=false"]
    command += ["model.hidden_sizes=[512,512]", "trainer.max_epochs=2", "callbacks.progress_bar=null"]
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, preexec_fn=limit_file_size
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output, output[-3000:]
    [line] = [line for line in output.splitlines() if "[ERROR]" in line]
    assert "cannot write the checkpoint " in line and line.endswith("then run the same command with resume=auto")
    [run] = (tmp_path / "train" / "runs").iterdir()
    assert json.loads((run / "result.json").read_text())["status"] == "failed"
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]  # no half-written file


def test_too_little_disk_space_is_refused_at_start(make_cfg, monkeypatch) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**12, 10**12 - 10, 10))
    cfg = make_cfg(*RUN)
    with pytest.raises(ConfigError, match=r"only 0\.0 MiB free on the disk holding .* checkpoints need about"):
        train(cfg)
