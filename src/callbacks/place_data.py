"""Passes the device and rank down to the data module once Lightning has launched the processes."""

import lightning as L


class PlaceData(L.Callback):
    """Tells the data module its device and rank once Lightning has launched the processes and before it asks for
    loaders, as the scratch engine does: the data module never reads the trainer. ``train.py`` adds it; a
    Trainer of your own that fits these data modules on a GPU or on several processes needs it too."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.datamodule is not None:
            trainer.datamodule.set_placement(trainer.strategy.root_device, trainer.global_rank, trainer.world_size)
