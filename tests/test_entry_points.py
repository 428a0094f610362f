"""Every entry point as a newcomer types it, run as a subprocess: it works, or it answers in one line."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from src.config.resolvers import PROJECT_ROOT

SCRIPTS = {"train": ["train.py"], "eval": ["eval.py"], "export": ["export.py"]}
HYDRA_FLAGS = ["--help", "-h", "--cfg job", "--info"]


def run(command: list[str], cwd: Path = PROJECT_ROOT) -> tuple[int, str]:
    done = subprocess.run([sys.executable, *command], cwd=cwd, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's files as a fresh clone has them: runs started there write their logs there, not here."""
    tree = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (PROJECT_ROOT / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, tree / name)
    return tree


def results(clone: Path, kind: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((clone / "logs" / "train" / kind).rglob("result.json"))]


def test_train_with_no_arguments_trains_the_default_and_says_where(clone: Path) -> None:
    code, output = run(["train.py"], cwd=clone)
    assert code == 0 and "Traceback" not in output, output[-3000:]
    [result] = results(clone, "runs")
    assert result["status"] == "completed" and result["optimized_metric"]["name"] == "val/loss"
    assert f"Written to {clone / 'logs' / 'train' / 'runs'}" in output


def test_multirun_with_nothing_to_sweep_runs_the_one_job(clone: Path) -> None:
    code, output = run(["train.py", "-m", "trainer.max_epochs=2"], cwd=clone)
    assert code == 0 and "Traceback" not in output, output[-3000:]
    [result] = results(clone, "multiruns")
    assert result["status"] == "completed" and result["epochs"] == 2


@pytest.mark.parametrize("flags", HYDRA_FLAGS)
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_hydra_flags_answer_without_running(script: str, flags: str) -> None:
    code, output = run([*SCRIPTS[script], *flags.split()])
    assert code == 0 and "Traceback" not in output, output[-3000:]
    expected = {"--help": "== Configuration groups ==", "-h": "== Configuration groups ==", "--info": "Hydra "}
    assert expected.get(flags, f"task_name: {script}") in output


def test_cfg_job_shows_a_trainer_argument_no_yaml_lists_as_a_run_would_take_it() -> None:
    code, output = run(["train.py", "trainer.fast_dev_run=true", "--cfg", "job"])
    assert code == 0 and "  fast_dev_run: true" in output, output[-2000:]


@pytest.mark.parametrize("multirun", [False, True], ids=["single", "multirun"])
@pytest.mark.parametrize("script", ["eval", "export"])
def test_checkpoint_scripts_without_a_checkpoint_say_their_usage_in_one_line(
    clone: Path, script: str, multirun: bool
) -> None:
    code, output = run([*SCRIPTS[script], *(["-m"] if multirun else [])], cwd=clone)
    assert code == 1
    assert output == f"usage: python {script}.py ckpt_path=logs/train/runs/<run>/checkpoints/<epoch_NNN|last>.ckpt\n"
    assert not (clone / "logs" / script).exists()  # no run directory for a command that did nothing


@pytest.mark.parametrize(
    ("arguments", "code", "answer"),
    [
        ([], 2, "python -m src.report: the following arguments are required: sweep_dir; usage: "),
        (["no/such/sweep"], 2, "python -m src.report: no/such/sweep is not a directory; usage: "),
        (["-h"], 0, "(re)build a sweep's report"),
        (["--help"], 0, "(re)build a sweep's report"),
    ],
    ids=["no_arguments", "missing_dir", "-h", "--help"],
)
def test_report_answers_its_usage(arguments: list[str], code: int, answer: str) -> None:
    returned, output = run(["-m", "src.report", *arguments])
    assert returned == code and answer in output and "Traceback" not in output
    if code:
        assert output.count("\n") == 1
