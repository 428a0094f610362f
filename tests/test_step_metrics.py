"""The metrics fed on every training step give torchmetrics' values, however the batches are grouped into updates
and wherever a checkpoint falls, and the non-finite watch finds the first bad step however many steps pass between
its reads."""

import math

import pytest
import torch
from torch import nn
from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy, MulticlassConfusionMatrix

from src.callbacks.stop_on_non_finite import NonFiniteWatch
from src.lit_modules.supervised import SupervisedModule
from src.tasks import Task
from src.training import epoch_metrics
from src.training.loss_and_metrics import task_loss_and_metrics
from src.training.metrics import MeanLoss, ThresholdAccuracy, TopKAccuracy


def batches(count: int, classes: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    rng = torch.Generator().manual_seed(seed)
    sizes = [7 + i for i in range(count)]  # unequal batches, as an epoch's last one is
    return [(torch.randn(n, classes, generator=rng), torch.randint(0, classes, (n,), generator=rng)) for n in sizes]


def test_top1_and_top5_from_one_shared_tally_equal_torchmetrics_accuracy_across_a_checkpoint_round_trip() -> None:
    collection = task_loss_and_metrics(Task.MULTICLASS, 10).metrics.clone(prefix="train/")
    assert collection.compute_groups == {0: ["acc", "top5"]}  # one update serves both
    reference = {k: MulticlassAccuracy(10, top_k=k, average="micro") for k in (1, 5)}
    data = batches(6, 10)
    for scores, target in data[:3]:
        collection.update(scores, target)
    collection.persistent(True)
    resumed = task_loss_and_metrics(Task.MULTICLASS, 10).metrics.clone(prefix="train/")
    resumed.persistent(True)
    resumed.load_state_dict(collection.state_dict())  # a mid-epoch checkpoint, read back
    for scores, target in data[3:]:
        resumed.update(scores, target)
    for scores, target in data:
        for metric in reference.values():
            metric.update(scores, target)
    values = resumed.compute()
    assert values["train/acc"].item() == pytest.approx(reference[1].compute().item())
    assert values["train/top5"].item() == pytest.approx(reference[5].compute().item())
    assert values["train/top5"] > values["train/acc"]


def test_batches_measured_several_at_a_time_give_the_values_of_batches_measured_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(epoch_metrics, "UPDATE_EVERY", 3)  # 7 batches: two full updates and a remainder
    loss_and_metrics = task_loss_and_metrics(Task.MULTICLASS, 10)
    metrics, confusion = loss_and_metrics.metrics.clone(prefix="test/"), loss_and_metrics.confusion
    epoch = loss_and_metrics.epoch_metrics("test", metrics, MeanLoss(), confusion)
    accuracy, top5 = (MulticlassAccuracy(10, top_k=k, average="micro") for k in (1, 5))
    reference_loss, reference_confusion = MeanLoss(), MulticlassConfusionMatrix(10)
    for scores, target in batches(7, 10):
        loss = loss_and_metrics.batch_loss(scores, target, epoch)
        accuracy.update(scores, target), top5.update(scores, target)
        reference_loss.update(loss, len(target)), reference_confusion.update(scores, target)
    values = epoch.compute_and_reset()
    assert values["test/loss"].item() == pytest.approx(reference_loss.compute().item(), rel=1e-6)
    assert values["test/acc"].item() == pytest.approx(accuracy.compute().item())
    assert values["test/top5"].item() == pytest.approx(top5.compute().item())
    assert torch.equal(epoch.confusion_matrix(), reference_confusion.compute())
    assert metrics["acc"].total.item() == 0 and epoch.mean_loss.samples.item() == 0  # reset for the next epoch


def test_a_checkpoint_taken_between_updates_saves_every_batch_trained_so_far() -> None:
    module = SupervisedModule(nn.Linear(3, 4), task="multiclass", num_outputs=4)
    module.train_metrics.persistent(True)
    rng = torch.Generator().manual_seed(0)
    data = [(torch.randn(5, 3, generator=rng), torch.randint(0, 4, (5,), generator=rng)) for _ in range(5)]
    losses = [module.training_step(batch, index) for index, batch in enumerate(data)]
    assert not any(outputs.requires_grad for outputs, *_ in module.epoch_metrics["train"].pending)  # no graph kept
    resumed = SupervisedModule(nn.Linear(3, 4), task="multiclass", num_outputs=4)
    resumed.load_state_dict(module.state_dict())  # 5 batches, fewer than one update holds
    assert resumed.train_loss.samples.item() == 25
    mean = resumed.train_loss.total / resumed.train_loss.samples
    assert mean.item() == pytest.approx(torch.stack(losses).mean().item())
    assert resumed.train_metrics["acc"].total.item() == 25


def test_threshold_accuracy_equals_torchmetrics_binary_accuracy_on_probabilities() -> None:
    ours, reference = ThresholdAccuracy(), BinaryAccuracy()
    rng = torch.Generator().manual_seed(1)
    for n in (5, 8, 3):
        probabilities = torch.rand(n, 1, generator=rng)
        target = torch.randint(0, 2, (n, 1), generator=rng).float()
        ours.update(probabilities, target)
        reference.update(probabilities, target)
    assert ours.compute().item() == pytest.approx(reference.compute().item())


def test_mean_loss_weighs_each_batch_by_its_size_and_keeps_no_graph() -> None:
    metric = MeanLoss()
    weight = nn.Parameter(torch.tensor(2.0))
    for loss, size in [(weight * 1.0, 4), (weight * 4.0, 1)]:
        metric.update(loss, size)
    assert metric.compute().item() == pytest.approx((2.0 * 4 + 8.0 * 1) / 5)
    assert not metric.total.requires_grad


def test_top_k_above_the_tallied_ranks_is_refused() -> None:
    with pytest.raises(ValueError, match="top_k must be between 1 and ranks"):
        TopKAccuracy(top_k=5, ranks=3)


def test_watch_reports_the_first_non_finite_loss_among_steps_gathered_several_times() -> None:
    watch, layer = NonFiniteWatch(), nn.Linear(2, 1)
    for step in range(300):  # gathered into one tensor every 32 steps
        watch.observe(torch.tensor(math.inf if step in (250, 260) else 0.5), step)
    assert watch.first_non_finite(layer.named_parameters()) == ("train/loss", math.inf, 250)
    watch.observe(torch.tensor(0.5), 300)
    assert watch.first_non_finite(layer.named_parameters()) is None  # each read covers the steps since the last


def test_watch_names_trained_weights_the_latest_step_made_non_finite_and_skips_frozen_ones() -> None:
    # a non-finite gradient at the last step before a read: every loss observed is finite, its update is not
    watch = NonFiniteWatch()
    frozen, trained = nn.Linear(2, 2).requires_grad_(False), nn.Linear(2, 1)
    net = nn.Sequential(frozen, trained)
    for step in range(5):
        watch.observe(torch.tensor(0.5, requires_grad=True), step)
    with torch.no_grad():
        frozen.weight.fill_(math.nan)  # not trained: no step of this run wrote it
        trained.bias.fill_(math.nan)
    name, value, step = watch.first_non_finite(net.named_parameters())
    assert (name, math.isnan(value), step) == ("the norm of 1.bias", True, 4)


def test_float16_weights_whose_norm_passes_float16s_range_read_as_finite_beside_float64_ones() -> None:
    watch, net = NonFiniteWatch(), nn.Sequential(nn.Linear(1000, 1000).half(), nn.Linear(2, 2).double())
    with torch.no_grad():
        net[0].weight.fill_(100.0)  # each value finite; the norm, 1e5, is not a float16
    watch.observe(torch.tensor(0.5), 0)
    assert watch.first_non_finite(net.named_parameters()) is None


def test_a_second_read_before_another_step_reads_nothing() -> None:
    watch, layer = NonFiniteWatch(), nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.fill_(math.nan)
    assert watch.first_non_finite(layer.named_parameters()) is None
