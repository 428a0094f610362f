"""The FreezeAfter callback: the named parameters train for the first epochs only, the others throughout."""

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from src.callbacks import FreezeAfter
from src.errors import ConfigError


class TwoWeights(L.LightningModule):
    """Two weights that SGD with lr 1 moves by exactly -1 per step each (loss = a + b)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.zeros(()))
        self.b = nn.Parameter(torch.zeros(()))

    def training_step(self, batch, batch_idx):
        return self.a + self.b

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1.0, weight_decay=0.5)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.zeros(2, 1)), batch_size=1)  # two steps per epoch


def fit(module: L.LightningModule, callback: L.Callback, epochs: int, tmp_path, ckpt_path=None) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=epochs,
        callbacks=[callback],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, ckpt_path=ckpt_path)
    return trainer


def test_named_parameter_stops_moving_after_its_epochs_and_takes_no_weight_decay(tmp_path) -> None:
    module = TwoWeights()
    fit(module, FreezeAfter(["a"], epochs=2), epochs=3, tmp_path=tmp_path)
    after_four_steps = module.a.item()  # where it stood after epochs 0 and 1; epoch 2 left it there
    reference = TwoWeights()
    fit(reference, FreezeAfter(["a"], epochs=3), epochs=2, tmp_path=tmp_path / "reference")
    assert after_four_steps == reference.a.item() < 0.0
    assert module.b.item() < module.a.item()  # b trained for all six steps


def test_a_run_resumed_after_the_freeze_keeps_the_parameter_frozen(tmp_path) -> None:
    first = TwoWeights()
    trainer = fit(first, FreezeAfter(["a"], epochs=1), epochs=2, tmp_path=tmp_path)
    frozen_at = first.a.item()
    resumed = TwoWeights()
    fit(
        resumed,
        FreezeAfter(["a"], epochs=1),
        epochs=4,
        tmp_path=tmp_path / "resumed",
        ckpt_path=trainer.checkpoint_callback.best_model_path,
    )
    assert resumed.a.item() == frozen_at and resumed.b.item() < first.b.item()


def test_unknown_parameter_name_is_refused_with_the_names_there_are(tmp_path) -> None:
    message = r"^freeze_after: the module has no parameter c; name some of its parameters \(a, b\), or drop the"
    with pytest.raises(ConfigError, match=message):
        fit(TwoWeights(), FreezeAfter(["c"], epochs=1), epochs=1, tmp_path=tmp_path)
