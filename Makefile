# `make train` runs the default experiment, `make test` runs lint + the whole test suite (one worker per core).
# Both create .venv on first use and reuse it afterwards (reinstalling when pyproject.toml or requirements.lock
# changes), with exactly the versions in requirements.lock; `make lock` re-resolves and re-pins them.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock
# The tests cover every optional tracker, so the set-up installs them all.
EXTRAS := dev,mlflow,wandb

.PHONY: train test lint format lock

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(LOCK) -e ".[$(EXTRAS)]"
	touch $(STAMP)

# Resolve every dependency afresh (the newest releases pyproject.toml allows) in a scratch environment, and pin them.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e ".[$(EXTRAS)]"
	{ head -n 2 $(LOCK); .lock-venv/bin/python -m pip freeze --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK) && rm -rf .lock-venv

train: $(STAMP)
	$(PY) train.py $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest -n auto --dist worksteal $(PYTEST_ARGS)

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .
