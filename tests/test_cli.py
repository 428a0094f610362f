"""``python train.py`` as a user runs it: one run directory per run, and bad input answered by one clear line."""

import json
import subprocess
import sys
from pathlib import Path

from src.config.resolvers import PROJECT_ROOT


def run_train(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "train.py", f"paths.log_dir={tmp_path}", "trainer.accelerator=cpu", *overrides]
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)


def run_dirs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "train" / "runs").iterdir())


def test_default_run_writes_one_complete_run_directory(tmp_path: Path) -> None:
    done = run_train(tmp_path, "trainer.max_epochs=2")
    assert done.returncode == 0, done.stderr
    [run] = run_dirs(tmp_path)
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "completed" and result["epochs"] == 2
    assert result["optimized_metric"]["name"] == "val/loss"
    assert f"val/loss = {result['optimized_metric']['value']:.6g}" in done.stdout
    assert (run / "config.yaml").is_file() and (run / ".hydra" / "overrides.yaml").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_bad_value_exits_1_with_one_message_and_a_failed_record(tmp_path: Path) -> None:
    done = run_train(tmp_path, "optimizer.lr=-1", "print_config=false")
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "optimizer.lr=-1 is out of range; it must be > 0, e.g. 1e-3" in output
    assert "Traceback" not in output
    [run] = run_dirs(tmp_path)
    assert json.loads((run / "result.json").read_text())["status"] == "failed"
    assert not (run / "checkpoints").exists()


def test_unknown_option_is_one_line_naming_the_closest_and_all_options(tmp_path: Path) -> None:
    done = run_train(tmp_path, "optimizer=adamx")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        "optimizer=adamx is not an option of optimizer; did you mean optimizer=adam? "
        "(options: adam, adamw, rmsprop, sgd)\n"
    )


def test_trainer_and_callback_arguments_the_yaml_does_not_list_work_as_lightning_spells_them(tmp_path: Path) -> None:
    done = run_train(
        tmp_path,
        "trainer.fast_dev_run=true",
        "trainer.max_time=00:00:10:00",
        "trainer.num_sanity_val_steps=0",
        "callbacks.early_stopping.verbose=true",
        "print_config=false",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [run] = run_dirs(tmp_path)
    config = (run / "config.yaml").read_text()
    assert "fast_dev_run: true" in config and "max_time: 00:00:10:00" in config and "verbose: true" in config


def test_top_level_typo_of_a_nested_key_is_refused_with_that_key(tmp_path: Path) -> None:
    done = run_train(tmp_path, "+max_epochs=1", "print_config=false")
    assert done.returncode == 1
    assert "+max_epochs=1 adds a top-level key 'max_epochs' that nothing reads; did you mean trainer.max_epochs=1?" in (
        done.stdout
    )


def test_a_value_lightning_refuses_is_one_line(tmp_path: Path) -> None:
    done = run_train(tmp_path, "trainer.val_check_interval=2.5", "print_config=false")
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    [line] = [line for line in done.stdout.splitlines() if "[ERROR]" in line]
    assert line.endswith(
        "Error in call to target 'lightning.pytorch.trainer.trainer.Trainer': MisconfigurationException('You have "
        "passed invalid value 2.5 for val_check_interval, it has to be in [0.0, 1.0] or an int.') full_key: trainer"
    )


def test_refused_run_prints_its_reason_not_the_config_tree(tmp_path: Path) -> None:
    done = run_train(tmp_path, "monitor=val/accuracy")  # print_config is on by default
    assert done.returncode == 1 and "_target_" not in done.stdout
    assert done.stdout.strip().endswith(
        "monitor='val/accuracy' is not a metric this run logs; choose one of "
        "['val/loss', 'val/acc', 'train/loss', 'train/acc']"
    )


def test_normal_run_prints_no_third_party_tips_or_deprecations_and_its_directory_on_one_line(tmp_path: Path) -> None:
    done = run_train(tmp_path, "trainer.max_epochs=1", "print_config=false")
    assert done.returncode == 0
    output = done.stdout + done.stderr
    assert "Tip:" not in output and "LeafSpec" not in output and "already configured" not in output
    assert "Total FLOPs: 0" not in output and "Total FLOPs: " in output
    [run] = run_dirs(tmp_path)
    assert f"Written to {run}\n" in done.stdout


def test_entry_points_switch_the_garbage_collector_back_on_after_their_imports() -> None:
    # Each entry point imports with the collector off; left off, every run would keep its cyclic garbage.
    probe = "; ".join(
        [
            "import gc, importlib",
            "states = []",
            *[
                f"importlib.import_module('{name}'); states.append((gc.isenabled(), gc.get_freeze_count() > 0))"
                for name in ("train", "eval", "export")
            ],
            "print(states)",
        ]
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str([(True, True)] * 3)
