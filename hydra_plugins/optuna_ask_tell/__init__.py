"""hydra/sweeper=optuna (see sweeper.py); Hydra finds it by scanning the ``hydra_plugins`` namespace package."""
