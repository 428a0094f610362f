"""Optuna searches: the search space in Hydra's sweep syntax, and the trial a sweep job reports to."""
