"""hydra/sweeper=optuna through the real CLI: failed trials do not end the search, pruners stop hopeless trials in
both engines, and the study in its sqlite file continues when the sweep is run again."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from hydra.core.hydra_config import HydraConfig
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from src.config.compose import compose_run
from src.config.resolvers import PROJECT_ROOT
from src.sweeps.search_space import SearchSpaceError, parse_search_space, trial_overrides
from src.sweeps.trial import trial_reporter

QUIET = ["print_config=false", "callbacks.progress_bar=null", "callbacks.model_summary=null", "trainer.accelerator=cpu"]
XOR = ["data=xor", "model=two_layer", "optimizer=adam", "trainer.max_epochs=3"]


def search_config(
    config_dir: Path, name: str, n_trials: int, params: dict[str, str], pruner: str = "null", seed: int = 0
) -> None:
    """A user's own search file, as ``--config-dir`` finds it: every trial of a small grid, in a seeded order."""
    lines = [f"      {key}: {value}" for key, value in params.items()]
    (config_dir / "hparams_search").mkdir(parents=True, exist_ok=True)
    (config_dir / "hparams_search" / f"{name}.yaml").write_text(
        "\n".join(
            [
                "# @package _global_",
                "defaults:",
                "  - override /hydra/sweeper: optuna",
                "hydra:",
                "  sweeper:",
                "    direction: minimize",
                f"    n_trials: {n_trials}",
                f"    sampler: {{_target_: optuna.samplers.BruteForceSampler, seed: {seed}}}",
                f"    pruner: {pruner}",
                "    params:",
                *lines,
            ]
        )
        + "\n"
    )


def search(tmp_path: Path, name: str, *overrides: str) -> tuple[subprocess.CompletedProcess, Path]:
    sweep_dir = tmp_path / "sweep"
    command = [
        sys.executable,
        "train.py",
        "-m",
        "--config-dir",
        str(tmp_path / "configs"),
        f"hparams_search={name}",
        f"paths.log_dir={tmp_path / 'logs'}",
        f"hydra.sweep.dir={sweep_dir}",
        *QUIET,
        *XOR,
        *overrides,
    ]
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300), sweep_dir


def study_of(sweep_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="search", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")


def status(sweep_dir: Path, job: int) -> str:
    return json.loads((sweep_dir / str(job) / "result.json").read_text())["status"]


HOPELESS = 0.000001
MEDIAN_PRUNER = "{_target_: optuna.pruners.MedianPruner, n_startup_trials: 1, n_warmup_steps: 1}"


def test_median_pruner_stops_only_hopeless_trials_in_both_engines(tmp_path: Path) -> None:
    params = {"optimizer.lr": f"choice(0.05, {HOPELESS})", "engine": "choice(lightning, scratch)"}
    # Seed 2 orders the grid good, hopeless (lightning), then good, hopeless (scratch): each hopeless trial comes
    # after a completed one, as the pruner needs.
    search_config(tmp_path / "configs", "half_hopeless", 4, params, pruner=MEDIAN_PRUNER, seed=2)
    done, sweep_dir = search(tmp_path, "half_hopeless")
    assert done.returncode == 0, done.stderr[-3000:]

    trials = study_of(sweep_dir).get_trials()
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    assert len(trials) == 4, [(t.params, t.state) for t in trials]
    assert {t.params["engine"] for t in pruned} == {"lightning", "scratch"}, [(t.params, t.state) for t in trials]
    assert all(t.params["optimizer.lr"] == HOPELESS for t in pruned)
    assert all(t.state is TrialState.COMPLETE for t in trials if t.params["optimizer.lr"] != HOPELESS)
    for trial in pruned:  # stopped after the warm-up epoch, with its record and report row saying so
        assert max(trial.intermediate_values) == 1 and status(sweep_dir, trial.number) == "pruned"
        assert f"| {trial.number} | " in (sweep_dir / "summary.md").read_text()
    assert f"{len(pruned)} pruned (Optuna)" in (sweep_dir / "summary.md").read_text()


@pytest.mark.parametrize(("metric", "reported"), [("val/loss", True), ("train/loss", False), ("test/acc", False)])
def test_only_a_validation_metric_goes_to_the_pruner_and_another_is_said_once(
    tmp_path: Path, caplog, metric: str, reported: bool
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="search", storage=storage)
    trial = study.ask()
    job = ["hydra/sweeper=optuna", f"hydra.sweeper.trial_id={trial._trial_id}", f"hydra.sweeper.storage='{storage}'"]
    previous = HydraConfig.instance().cfg
    try:
        compose_run([*job, f"hydra.sweeper.pruner={MEDIAN_PRUNER}"], tmp_path / "job")
        with caplog.at_level(logging.WARNING):
            reporter = trial_reporter(metric)
    finally:
        HydraConfig.instance().cfg = previous  # later tests in this process run outside a sweep
    said = [r.getMessage() for r in caplog.records if r.name == "src.sweeps.trial"]
    if reported:
        reporter.report(0, {metric: 0.25})
        assert study.trials[0].intermediate_values == {0: 0.25} and not said
    else:
        assert reporter is None
        [line] = said
        assert f"optimized_metric={metric} is no val/ metric: it prunes no trial" in line


def test_failed_trial_is_told_as_failed_and_the_study_continues_when_run_again(tmp_path: Path) -> None:
    # optimizer.lr=-1 is refused at start-up: that trial fails; the others run
    search_config(tmp_path / "configs", "with_failure", 2, {"optimizer.lr": "choice(0.05, -1)"})
    done, sweep_dir = search(tmp_path, "with_failure")
    assert done.returncode == 0, done.stderr[-3000:]
    study = study_of(sweep_dir)
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE", "FAIL"]
    [failed] = [t.number for t in study.trials if t.state is TrialState.FAIL]
    assert f"Optuna: trial {failed} failed: ConfigError: optimizer.lr" in done.stdout + done.stderr

    # A sweep killed mid-trial leaves it running in the study; the next run launches it again, then new trials. One
    # killed before it was given its parameters is told failed, never trained on the defaults as if sampled.
    orphan = study.ask({"optimizer.lr": CategoricalDistribution([0.05, -1])})
    unsampled = study.ask()
    more = ["hydra.sweeper.n_trials=5", "hydra.sweeper.sampler._target_=optuna.samplers.RandomSampler"]
    done, _ = search(tmp_path, "with_failure", *more)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = study_of(sweep_dir).get_trials()
    assert orphan.number == 2 and unsampled.number == 3 and [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert trials[3].state is TrialState.FAIL and not (sweep_dir / "3").exists()
    assert "Optuna: trial 3 of a stopped sweep has [], not ['optimizer.lr']: told as failed" in (
        done.stdout + done.stderr
    )
    for trial in [t for t in trials if t.number != unsampled.number]:
        expected = "completed" if trial.state is TrialState.COMPLETE else "failed"
        assert status(sweep_dir, trial.number) == expected
        assert (trial.params["optimizer.lr"] == -1) == (trial.state is TrialState.FAIL)
    assert "Optuna: continuing trial(s) 2 of a stopped sweep" in done.stdout + done.stderr
    results = (sweep_dir / "optimization_results.yaml").read_text()
    assert "best_params" in results and "optimizer.lr: 0.05" in results


def test_a_storage_that_cannot_be_opened_is_one_line_before_any_job(tmp_path: Path) -> None:
    search_config(tmp_path / "configs", "small", 1, {"optimizer.lr": "choice(0.05)"})
    storage = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'optuna.db'}"  # SQLite makes no folders
    done, sweep_dir = search(tmp_path, "small", f"hydra.sweeper.storage='{storage}'")
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    [line] = done.stdout.strip().splitlines()  # (stderr: Optuna's note that the test's grid sampler is experimental)
    assert line.endswith(
        f"hydra.sweeper.storage={storage} cannot be opened (unable to open database file); point it at a writable place"
    )
    assert not (sweep_dir / "0").exists()


def test_a_search_space_changed_in_the_same_study_is_one_line_before_any_trial(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"  # a study that sampled one trial of another space, as an earlier sweep leaves it
    sweep_dir.mkdir()
    earlier = optuna.create_study(study_name="search", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    space = {"optimizer.lr": CategoricalDistribution([0.05, 0.1])}
    earlier.add_trial(optuna.trial.create_trial(params={"optimizer.lr": 0.05}, distributions=space, value=0.5))
    search_config(tmp_path / "configs", "space", 2, {"optimizer.lr": "choice(0.5, 0.7)"})
    done, _ = search(tmp_path, "space")
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    [line] = done.stdout.strip().splitlines()
    assert "hydra.sweeper.params.optimizer.lr is not the search space study 'search' in " in line
    assert line.endswith("search it in a new study (hydra.sweeper.study_name=...) or a new sweep dir")
    assert [t.state for t in study_of(sweep_dir).trials] == [TrialState.COMPLETE]  # none left running


def test_search_space_reads_hydras_sweep_syntax() -> None:
    distributions, fixed = parse_search_space(
        {
            "optimizer": "choice(sgd, adam)",
            "optimizer.lr": "tag(log, interval(0.0001, 0.1))",
            "trainer.max_epochs": "3",
        },
        ["model.depth=range(1, 5)", "data.val_size=interval(0.1, 0.3)", "optimizer=choice(adam, adamw)"],
    )
    assert distributions == {
        "optimizer": CategoricalDistribution(["adam", "adamw"]),  # the command line wins over the config
        "optimizer.lr": FloatDistribution(0.0001, 0.1, log=True),
        "model.depth": IntDistribution(1, 4),
        "data.val_size": FloatDistribution(0.1, 0.3),
    }
    assert fixed == ["trainer.max_epochs=3"]
    with pytest.raises(SearchSpaceError, match=r"optimizer.lr: .* needs start < end"):
        parse_search_space({"optimizer.lr": "tag(log, interval(0, 0.1))"}, [])


def test_trial_values_become_overrides_hydra_reads_back() -> None:
    overrides = trial_overrides({"a": None, "b": True, "c": 0.5, "d": "sgd", "e": "two words", "f": "it's"})
    assert overrides == ["a=null", "b=true", "c=0.5", "d=sgd", "e='two words'", "f='it\\'s'"]


def test_search_space_optuna_cannot_sample_is_one_line_before_any_job(tmp_path: Path) -> None:
    search_config(tmp_path / "configs", "backwards", 2, {"optimizer.lr": "interval(0.1, 0.01)"})
    done, sweep_dir = search(tmp_path, "backwards")
    assert done.returncode == 1
    [line] = [line for line in (done.stdout + done.stderr).splitlines() if "needs start < end" in line]
    assert "hydra.sweeper.params.optimizer.lr: optimizer.lr=interval(0.1, 0.01) needs start < end" in line
    assert "Traceback" not in done.stderr and not (sweep_dir / "0").exists()
