"""The Optuna sweeper's work, imported only when a sweep uses it (``sweeper.py`` says what it does)."""

import logging
import math
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import check_distribution_compatibility
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from src.errors import one_line
from src.runs.resume import read_record
from src.sweeps.search_space import SearchSpaceError, parse_search_space, trial_overrides

log = logging.getLogger(__name__)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def _consecutive(trials: list[FrozenTrial]) -> list[list[FrozenTrial]]:
    """Runs of consecutive trial numbers: each becomes one launch, with job numbers equal to trial numbers."""
    runs: list[list[FrozenTrial]] = []
    for trial in sorted(trials, key=lambda t: t.number):
        if runs and runs[-1][-1].number + 1 == trial.number:
            runs[-1].append(trial)
        else:
            runs.append([trial])
    return runs


class OptunaSweeperImpl(Sweeper):
    def __init__(
        self,
        direction: str,
        n_trials: int,
        n_jobs: int,
        storage: str | None,
        study_name: str,
        sampler: Any,
        pruner: Any,
        params: dict[str, str],
        trial_id: int | None = None,
    ) -> None:
        self.direction, self.n_trials, self.n_jobs = direction, n_trials, n_jobs
        self.storage, self.study_name = storage, study_name
        self.sampler, self.pruner, self.params = sampler, pruner, dict(params or {})

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir))

    def _open_study(self) -> optuna.Study:
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # this sweeper logs each trial's outcome itself
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        self.storage = self.storage or f"sqlite:///{self.sweep_dir.resolve() / 'optuna.db'}"
        study = optuna.create_study(
            storage=self.storage,
            study_name=self.study_name,
            sampler=self.sampler,
            pruner=self.pruner,
            direction=self.direction,
            load_if_exists=True,
        )
        if study.direction.name.lower() != self.direction:
            raise ValueError(
                f"hydra.sweeper: study {self.study_name!r} in {self.storage} was created to "
                f"{study.direction.name.lower()}, not to {self.direction}; set another hydra.sweeper.study_name"
            )
        return study

    def sweep(self, arguments: list[str]) -> None:
        # Refusals are one logged line and exit status 1, before any job (raised here, Hydra would add a traceback).
        if self.direction not in ("minimize", "maximize") or self.n_trials < 1 or self.n_jobs < 1:
            log.error(
                "hydra.sweeper: direction must be minimize or maximize, n_trials and n_jobs >= 1; got "
                "direction=%s, n_trials=%s, n_jobs=%s",
                self.direction,
                self.n_trials,
                self.n_jobs,
            )
            raise SystemExit(1)
        try:
            distributions, fixed = parse_search_space(self.params, arguments)
            study = self._open_study()
            self._check_same_space(study, distributions)
        except (SearchSpaceError, ValueError) as err:
            log.error("%s", err)
            raise SystemExit(1) from None
        except SQLAlchemyError as err:  # the storage's database cannot be opened or written
            reason = one_line(getattr(err, "orig", None) or err)
            unusable = "hydra.sweeper.storage=%s cannot be opened (%s); point it at a writable place"
            log.error(unusable, self.storage, reason)
            raise SystemExit(1) from None
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")
        self.exhausted = False  # set when a grid sampler has tried its whole grid
        # A killed sweep's trials that were running: launched again (their job directories resume them), unless
        # the kill came before they were given their parameters: run, they would train the defaults as a trial.
        stopped = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for trial in [t for t in stopped if set(t.params) != set(distributions)]:
            stale = "Optuna: trial %d of a stopped sweep has %s, not %s: told as failed"
            log.warning(stale, trial.number, sorted(trial.params), sorted(distributions))
            self._tell(study, trial.number, None, TrialState.FAIL)
        stopped = [t for t in stopped if set(t.params) == set(distributions)]
        for run in _consecutive(stopped):
            log.info("Optuna: continuing trial(s) %s of a stopped sweep", ", ".join(str(t.number) for t in run))
            self._launch(study, run, fixed)
        while (finished := len(study.get_trials(deepcopy=False, states=FINISHED))) < self.n_trials:
            if self.exhausted:
                log.info("Optuna: the sampler has tried every point of its grid (%d trials)", finished)
                break
            asked = [study.ask(distributions) for _ in range(min(self.n_jobs, self.n_trials - finished))]
            frozen = [t for t in study.get_trials(deepcopy=False) if t.number in {a.number for a in asked}]
            for run in _consecutive(frozen):
                self._launch(study, run, fixed)
        self._write_results(study)

    def _check_same_space(self, study: optuna.Study, distributions: dict[str, Any]) -> None:
        """A parameter whose values changed since the study sampled it cannot be asked for again: Optuna would
        fail mid-sweep and leave the trial running."""
        for trial in study.get_trials(deepcopy=False):
            for name, before in trial.distributions.items():
                if name in distributions:
                    try:
                        check_distribution_compatibility(before, distributions[name])
                    except ValueError:
                        raise ValueError(
                            f"hydra.sweeper.params.{name} is not the search space study {self.study_name!r} in "
                            f"{self.storage} sampled it from ({before}); search it in a new study "
                            "(hydra.sweeper.study_name=...) or a new sweep dir"
                        ) from None

    def _launch(self, study: optuna.Study, trials: list[FrozenTrial], fixed: list[str]) -> None:
        batch = [
            [
                *fixed,
                *trial_overrides(trial.params),
                f"hydra.sweeper.trial_id={trial._trial_id}",  # Optuna exposes the id only this way
                f"hydra.sweeper.storage='{self.storage}'",
                f"hydra.sweeper.study_name='{self.study_name}'",
            ]
            for trial in trials
        ]
        self.validate_batch_is_legal(batch)  # a bad search space: refused before any job runs
        returns = self.launcher.launch(batch, initial_job_idx=trials[0].number)
        for trial, job in zip(trials, returns, strict=True):
            state, value, why = self._outcome(job)
            self._tell(study, trial.number, value if state is TrialState.COMPLETE else None, state)
            if state is not TrialState.COMPLETE:
                log.warning(
                    "Optuna: trial %d %s: %s", trial.number, "pruned" if state is TrialState.PRUNED else "failed", why
                )

    def _tell(self, study: optuna.Study, number: int, value: float | None, state: TrialState) -> None:
        try:
            study.tell(number, value, state=state)
        except RuntimeError as err:  # told; then GridSampler or BruteForceSampler, done, calls Study.stop
            if "Study.stop" not in str(err):
                raise
            self.exhausted = True

    @staticmethod
    def _outcome(job: JobReturn) -> tuple[TrialState, float | None, str]:
        """What to tell the study: a finite result completes the trial; a pruned job (its record says so) is pruned;
        anything else (an exception, a NaN from a failed or diverged run) fails it, and the search goes on."""
        output_dir = OmegaConf.select(job.hydra_cfg, "hydra.runtime.output_dir")
        record = read_record(Path(output_dir)) if output_dir else None
        if record is not None and record.get("status") == "pruned":
            return TrialState.PRUNED, None, record.get("error", "")
        if job.status is not JobStatus.COMPLETED:
            return TrialState.FAIL, None, f"{type(job._return_value).__name__}: {job._return_value}"
        value = job.return_value
        if not isinstance(value, int | float) or not math.isfinite(value):
            reason = record.get("error") if record is not None and record.get("error") else f"it returned {value}"
            return TrialState.FAIL, None, reason
        return TrialState.COMPLETE, float(value), ""

    def _write_results(self, study: optuna.Study) -> None:
        counts = {state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,))) for state in FINISHED}
        results: dict[str, Any] = {"study_name": self.study_name, "storage": self.storage, "trials": counts}
        if counts["complete"]:
            best = study.best_trial
            results |= {"best_trial": best.number, "best_value": best.value, "best_params": best.params}
            log.info("Optuna: best trial %d, value %.6g, params %s", best.number, best.value, best.params)
        else:
            log.warning("Optuna: no trial completed (%s)", counts)
        OmegaConf.save(OmegaConf.create(results), self.sweep_dir / "optimization_results.yaml")
