"""Every run logs its settings and final metrics to TensorBoard's HParams dashboard, read back with TensorBoard's
own reader, in both engines."""

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import plugin_data_pb2

from tests.conftest import read_result
from train import train

RUN = ["data=xor", "model=two_layer", "trainer.max_epochs=2", "optimizer=sgd", "optimizer.lr=0.05", "seed=7"]


def logged_hparams(run_dir: Path) -> tuple[dict, set[str]]:
    """The session's hyperparameters, and the metrics its experiment declares."""
    events = EventMultiplexer().AddRunsFromDirectory(str(run_dir / "tensorboard"))
    events.Reload()
    params, metrics = {}, set()
    for run in events.Runs():
        for content in events.PluginRunToTagToContent("hparams").get(run, {}).values():
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                for name, value in data.session_start_info.hparams.items():
                    params[name] = value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
            if data.HasField("experiment"):
                metrics |= {info.name.tag for info in data.experiment.metric_infos}
    return params, metrics


@pytest.mark.parametrize("engine", ["lightning", "scratch"])
def test_run_logs_its_settings_and_final_metrics_as_hparams(make_cfg, engine: str) -> None:
    cfg = make_cfg(*RUN, f"engine={engine}", "logger=[tensorboard,csv]")
    train(cfg)
    params, metrics = logged_hparams(Path(cfg.paths.output_dir))
    assert params["optimizer.lr"] == 0.05 and params["optimizer._target_"] == "torch.optim.SGD"
    assert params["model.hidden_size"] == 8 and params["data.task"] == "binary"
    assert (params["seed"], params["engine"], params["trainer.precision"]) == (7, engine, "32-true")
    assert params["option/optimizer"] == "sgd" and params["option/model"] == "two_layer"  # the chosen options
    assert {"val/loss", "test/loss", "test/acc"} <= metrics
    assert read_result(cfg)["status"] == "completed"
