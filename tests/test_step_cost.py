"""ATen ops and host reads per training step of each engine, held against a bare loop of the same model,
optimizer, loss and data (benchmarks/step_cost.py): a change that adds work to every step fails here. Counts are
deterministic, so each engine is held to the ops it adds today (torch 2.14.1, CPU, bf16 autocast; 2026-12-05), and
to the multiple of the bare loop it must stay under."""

from pathlib import Path

import lightning as L
import pytest
from lightning.pytorch.callbacks import LearningRateMonitor, RichProgressBar
from lightning.pytorch.profilers import SimpleProfiler

from benchmarks.step_cost import RECIPES, host_reads, per_step
from src.callbacks import RunCheckpoint, StopOnNonFinite, paced_progress_bar
from src.engines.hook_dispatch import PER_BATCH_HOOKS, QuietProfiler, skip_unused_batch_hooks
from src.lit_modules.supervised import SupervisedModule
from src.training import epoch_metrics
from train import ENGINES, train

ON_FAKE_DATA = ["data.verify_checksums=false", "data.val_size=2", "data.batch_size=4"]
SHORT, LONG = 2, 12  # training batches of the two epochs whose difference is counted
# What each engine adds to the bare loop's step: the outputs (a copy) and loss kept for the metrics (3), and
# their update every 10 batches (the counted difference holds one: 12 ops, 1.2 a step); the headline's non-finite
# watch (none in Lightning, which hands over a detached copy of the loss; 1 in the scratch loop, which detaches the
# loss it keeps); Lightning's own closure (5: it clones and detaches the loss, divides it by the accumulation count,
# forward and backward, and detaches it again).
ADDED_OPS = {
    ("headline", "lightning"): 9.2,
    ("headline", "scratch"): 5.2,
    ("speedrun", "lightning"): 9.2,
    ("speedrun", "scratch"): 4.2,
}
MULTIPLE = {"lightning": 1.1, "scratch": 1.05}  # of the bare loop's ops


@pytest.mark.parametrize("recipe", ["headline", "speedrun"])
def test_engines_add_no_host_read_and_no_more_ops_per_step_to_a_bare_loop_than_their_metrics_and_checks(
    recipe: str, fake_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(epoch_metrics, "UPDATE_EVERY", LONG - SHORT)
    where = [f"paths.data_dir={fake_data}", f"paths.cache_dir={tmp_path / 'cache'}", "trainer.accelerator=cpu"]
    overrides = [*RECIPES[recipe], *where, *ON_FAKE_DATA]
    bare = sum(per_step("bare", overrides, tmp_path, SHORT, LONG)[0].values())
    assert bare > 100  # a forward, a backward and an optimizer step were counted
    for engine in ENGINES:
        counted = per_step(engine, overrides, tmp_path, SHORT, LONG)[0]
        ops = sum(counted.values())
        assert host_reads(counted) == 0, f"{engine} reads the host every step: {counted}"
        assert round(ops - bare, 3) <= ADDED_OPS[(recipe, engine)], f"{engine}: {ops:g} ops per step against {bare:g}"
        assert ops / bare <= MULTIPLE[engine]


@pytest.mark.parametrize(("setting", "expected"), [([], QuietProfiler), (["+trainer.profiler=simple"], SimpleProfiler)])
def test_lightning_hooks_share_one_empty_context_unless_a_profiler_is_asked_for(
    make_cfg, monkeypatch: pytest.MonkeyPatch, setting: list[str], expected: type
) -> None:
    assert QuietProfiler().profile("a") is QuietProfiler().profile("b")  # nothing made per hook call
    profilers: list[type] = []
    monkeypatch.setattr(SupervisedModule, "on_train_start", lambda self: profilers.append(type(self.trainer.profiler)))
    train(make_cfg("debug=fast_dev_run", "logger=none", *setting))
    assert profilers == [expected]


def test_lightning_calls_no_per_batch_hook_a_callback_inherits_as_a_no_op(make_cfg, monkeypatch) -> None:
    callbacks: list[L.Callback] = []
    monkeypatch.setattr(SupervisedModule, "on_train_start", lambda self: callbacks.extend(self.trainer.callbacks))
    cfg = make_cfg("debug=fast_dev_run", "logger=none", "+callbacks.last_checkpoint.every_n_train_steps=2")
    train(cfg)
    assert len(callbacks) >= 8  # the default callbacks, the progress bar and the model summary among them
    for callback in callbacks:
        for name in PER_BATCH_HOOKS:
            if getattr(type(callback), name) is getattr(L.Callback, name):
                assert getattr(callback, name) is None, f"{type(callback).__name__}.{name} is still called"
    watch = next(c for c in callbacks if isinstance(c, StopOnNonFinite))
    assert callable(watch.on_train_batch_end) and watch.on_before_optimizer_step is None  # one hook a step
    best, last = (c for c in callbacks if isinstance(c, RunCheckpoint))
    assert best.on_train_batch_end is None  # it saves at epoch ends only: nothing to do after a batch
    assert callable(last.on_train_batch_end)  # every 2 steps


def test_progress_bar_shows_the_first_and_last_batch_of_each_epoch_and_skips_those_in_between(
    make_cfg, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[int] = []
    monkeypatch.setattr(paced_progress_bar.time, "monotonic", lambda: 100.0)  # every batch within the same instant
    monkeypatch.setattr(RichProgressBar, "on_train_batch_end", lambda *args: shown.append(args[-1]))
    train(make_cfg("data=xor_clouds", "trainer.max_epochs=2", "trainer.limit_train_batches=6", "logger=none"))
    assert shown == [0, 5, 0, 5]
    shown.clear()  # a run that stops mid-epoch shows the batch it stopped after
    train(make_cfg("data=xor_clouds", "trainer.max_steps=8", "trainer.limit_train_batches=6", "logger=none"))
    assert shown == [0, 5, 0, 1]
    with pytest.raises(ValueError, match="updates_per_second must be > 0, got nan"):
        paced_progress_bar.PacedRichProgressBar(updates_per_second=float("nan"))


def test_hooks_a_callback_sets_on_itself_are_still_called() -> None:
    def on_batch(*_: object) -> None:
        pass

    own, inherited = L.pytorch.callbacks.LambdaCallback(on_train_batch_end=on_batch), L.Callback()
    skip_unused_batch_hooks([own, inherited])
    assert own.on_train_batch_end is on_batch and own.on_train_batch_start is None
    assert inherited.on_train_batch_end is None


def test_a_learning_rate_monitor_is_called_per_batch_only_when_it_logs_per_step() -> None:
    per_epoch, per_step = LearningRateMonitor(logging_interval="epoch"), LearningRateMonitor(logging_interval="step")
    skip_unused_batch_hooks([per_epoch, per_step])
    assert per_epoch.on_train_batch_start is None and callable(per_step.on_train_batch_start)
