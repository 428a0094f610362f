"""MLflow, offline in a local SQLite store, with and without the default loggers, in both engines: the MLflow client
reads back each run's parameters and metrics."""

from pathlib import Path

import pytest

from tests.conftest import read_result
from train import train

mlflow = pytest.importorskip("mlflow", reason='the MLflow extra: pip install -e ".[mlflow]"')

RUN = ["data=xor", "model=two_layer", "trainer.max_epochs=2", "optimizer=sgd", "optimizer.lr=0.05"]


@pytest.mark.parametrize("loggers", ["mlflow", "[tensorboard,csv,mlflow]"])
@pytest.mark.parametrize("engine", ["lightning", "scratch"])
def test_mlflow_store_holds_the_runs_params_and_metrics(make_cfg, tmp_path: Path, engine: str, loggers: str) -> None:
    cfg = make_cfg(*RUN, f"engine={engine}", f"logger={loggers}")
    train(cfg)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{cfg.paths.log_dir}/mlflow.db")
    [run] = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert run.data.params["optimizer.lr"] == "0.05" and run.data.params["engine"] == engine
    assert run.data.params["option/model"] == "two_layer"
    result = read_result(cfg)
    for name in ("val/loss", "test/loss", "test/acc"):
        assert run.data.metrics[name] == pytest.approx(result["metrics"][name], rel=1e-6), name
    history = client.get_metric_history(run.info.run_id, "val/loss")
    assert len(history) >= 2  # one per validation, not only the final value
    if "tensorboard" in loggers:
        assert list((Path(cfg.paths.output_dir) / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("engine", ["lightning", "scratch"])
def test_wandb_offline_run_directory_holds_the_runs_params_and_metrics(
    make_cfg, monkeypatch, tmp_path: Path, engine: str
) -> None:
    pytest.importorskip("wandb", reason='the W&B extra: pip install -e ".[wandb]"')
    for variable in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_SILENT"):
        monkeypatch.setenv(variable, "")  # the run sets them; restored after the test
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = make_cfg(*RUN, f"engine={engine}", "logger=[csv,wandb]")
    train(cfg)
    assert not (tmp_path / "home").exists()  # nothing under ~/.cache/wandb or ~/.config/wandb
    assert (Path(cfg.paths.output_dir) / "wandb" / "cache").is_dir()
    # What `wandb sync` uploads: the run's transaction log (wandb 0.31 ships no reader for it, so read its bytes).
    [log] = (Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*/run-*.wandb")
    records = log.read_bytes()
    for key in (b"optimizer.lr", b"option/model", b"val/loss", b"test/loss", b"test/acc"):
        assert key in records, key
    assert b"0.05" in records and b"two_layer" in records and engine.encode() in records
