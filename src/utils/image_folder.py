"""Read a folder of images into one batch shaped and normalized like the run's data."""

from pathlib import Path

import torch
from omegaconf import DictConfig
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as TF

from src.errors import RunError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


def _decode(path: Path, mode: ImageReadMode) -> torch.Tensor:
    try:
        return decode_image(str(path), mode=mode)
    except RuntimeError as err:
        raise RunError(f"{path} is not a readable image ({str(err).splitlines()[0]}); remove or replace it") from None


def load_image_folder(folder: Path, data_cfg: DictConfig) -> tuple[list[Path], torch.Tensor]:
    """Every image in ``folder`` (sorted by name), resized to the run's input shape, in its channels and scale."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    if not paths:
        raise RunError(f"images={folder} holds no {sorted(IMAGE_SUFFIXES)} files")
    if "mean" not in data_cfg:
        raise RunError(f"this run trained on data with input_shape {list(data_cfg.input_shape)}, not on images")
    channels, height, width = data_cfg.input_shape
    mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
    images = torch.stack([TF.resize(_decode(path, mode), [height, width], antialias=True) for path in paths])
    mean = torch.tensor(list(data_cfg.mean)).view(1, -1, 1, 1)
    std = torch.tensor(list(data_cfg.std)).view(1, -1, 1, 1)
    return paths, (images.float() / 255 - mean) / std
