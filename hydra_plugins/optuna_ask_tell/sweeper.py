"""``hydra/sweeper=optuna``: an Optuna study driven through its ask-and-tell API, one trial per Hydra job.

Written here because the released hydra-optuna-sweeper requires optuna < 3 and its Optuna 4 port needs the
unreleased Hydra 1.4. The study lives in a database (by default ``sqlite:///<sweep dir>/optuna.db``), so jobs in
other processes report to their trial for pruning, and the same command with the same ``hydra.sweep.dir`` continues
the study: trials a killed sweep left running are launched again into their own job directories (which resume from
their checkpoints), then new ones until the study holds ``n_trials`` finished trials.

Hydra imports this module at every start-up (plugin discovery), so Optuna is imported in ``_impl`` only when a sweep
uses it.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.optuna_ask_tell.sweeper.OptunaSweeper"
    direction: str = "minimize"
    n_trials: int = 20  # finished trials (complete, pruned or failed) the study should hold
    n_jobs: int = 1  # trials asked together and launched as one batch (the joblib or SLURM launcher runs them at once)
    storage: str | None = None  # None: sqlite:///<sweep dir>/optuna.db
    study_name: str = "search"
    sampler: Any = None  # None: Optuna's default (TPE)
    pruner: Any = None  # None: no pruning
    params: dict[str, str] = field(default_factory=dict)
    trial_id: int | None = None  # set by the sweeper for each job: the trial it reports to


ConfigStore.instance().store(
    group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="lightning-hydra-lab"
)


class OptunaSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        from hydra_plugins.optuna_ask_tell._impl import OptunaSweeperImpl

        self.sweeper = OptunaSweeperImpl(**settings)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        self.sweeper.sweep(arguments)
