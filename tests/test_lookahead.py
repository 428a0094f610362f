"""The Lookahead callback: the trained weights jump onto the slow copy on its schedule, and end on it."""

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from src.callbacks import Lookahead
from src.training.metrics import MeanLoss


class Constant(L.LightningModule):
    """One weight that SGD with lr 1 moves by exactly -1 per step (loss = w), so each step's value is known."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.values: list[float] = []

    def training_step(self, batch, batch_idx):
        return self.w * 1.0  # gradient 1

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.values.append(float(self.w.detach()))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1.0)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.zeros(10, 1)), batch_size=1)


def fit_with(lookahead: Lookahead, module: L.LightningModule, epochs: int, root) -> None:
    """A Trainer with nothing but the callback."""
    trainer = L.Trainer(
        max_epochs=epochs,
        callbacks=[lookahead],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    trainer.fit(module)


def test_weights_follow_the_slow_copy_on_the_cubic_schedule_and_end_on_it(tmp_path) -> None:
    module = Constant()
    lookahead = Lookahead(every_n_steps=5, final_decay=0.5)
    # Lightning runs the callback's hook before the module's: values[i] is the weight after step i + 1, Lookahead done
    fit_with(lookahead, module, epochs=2, root=tmp_path)
    # steps 1-4 plain SGD; at step 5 the slow copy (0) moves toward -5 by 1 - decay, and the weight jumps onto it
    decay = 0.5 * (5 / 20) ** 3
    assert module.values[:6] == [-1.0, -2.0, -3.0, -4.0, -5.0 * (1 - decay), -5.0 * (1 - decay) - 1]
    # the last step (20) copies the slow weights into the network: weight and slow copy agree
    assert float(module.w) == float(lookahead.slow["w"])
    assert float(module.w) > -20.0  # the slow copy lags plain SGD, which would end at -20
    restored = Lookahead()
    restored.load_state_dict(lookahead.state_dict())
    assert torch.equal(restored.slow["w"], lookahead.slow["w"])


class ConstantWithMetric(Constant):
    """The same weight, and a metric whose running sum the module saves with its weights."""

    def __init__(self) -> None:
        super().__init__()
        self.mean_loss = MeanLoss()
        self.mean_loss.persistent(True)
        self.losses: list[float] = []

    def training_step(self, batch, batch_idx):
        loss = self.w * 1.0
        self.mean_loss.update(loss, 1)
        self.losses.append(float(loss))
        return loss


def test_metric_sums_saved_with_the_module_are_left_out_of_the_slow_copy(tmp_path) -> None:
    module, lookahead = ConstantWithMetric(), Lookahead(every_n_steps=5, final_decay=0.5)
    fit_with(lookahead, module, epochs=1, root=tmp_path)
    assert list(lookahead.slow) == ["w"]
    assert module.mean_loss.total.item() == sum(module.losses)  # not pulled toward an old copy every 5 steps
