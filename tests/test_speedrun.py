"""The speedrun switches: test-time flipping (one function for both engines, refused without images) and the
recipes' learning-rate schedule. Both engines flipping alike is in tests/test_engine_parity.py."""

import logging

import pytest
import torch
from hydra.utils import instantiate

from src.checks.values import check_test_time_augmentation
from src.errors import ConfigError
from src.training.schedulers import build_scheduler
from src.training.test_time_augmentation import evaluation_outputs
from tests.conftest import read_result
from train import train


def left_column_sum(images: torch.Tensor) -> torch.Tensor:
    """A 'network' that mirroring changes: one output, the sum of each image's leftmost pixel column."""
    return images[..., 0].sum(dim=(1, 2)).unsqueeze(1)


def test_flipped_evaluation_averages_the_outputs_for_each_image_and_its_mirror_image() -> None:
    x = torch.arange(12.0).view(2, 1, 2, 3)  # rows [0 1 2], [3 4 5] and [6 7 8], [9 10 11]
    torch.testing.assert_close(evaluation_outputs(left_column_sum, x, flip=False), torch.tensor([[3.0], [15.0]]))
    # mirrored, the leftmost column is the rightmost one: (0 + 3 + 2 + 5) / 2 and (6 + 9 + 8 + 11) / 2
    torch.testing.assert_close(evaluation_outputs(left_column_sum, x, flip=True), torch.tensor([[5.0], [17.0]]))
    with pytest.raises(ValueError, match=r"needs \(N, C, H, W\) image batches, got shape \(2, 6\)"):
        evaluation_outputs(left_column_sum, x.flatten(1), flip=True)


def test_shifted_evaluation_adds_reflect_padded_diagonal_translations_at_a_quarter_weight_each() -> None:
    x = torch.arange(9.0).view(1, 1, 3, 3)  # rows [0 1 2], [3 4 5], [6 7 8]
    batch = torch.cat([x, x + 10])  # a second image: every view's left column sums to 30 more
    # Reflect-padded by one pixel, the up-left view has rows [4 3 4], [1 0 1], [4 3 4] (left column 9), the
    # down-right view [4 5 4], [7 8 7], [4 5 4] (left column 15): 9 / 2 + 9 / 4 + 15 / 4.
    shifted = evaluation_outputs(left_column_sum, batch, flip=False, shift=1)
    torch.testing.assert_close(shifted, torch.tensor([[10.5], [40.5]]))
    # With flips, the mirror image (left column 15) and its shifted views (9 and 15) join at half the weight.
    both = evaluation_outputs(left_column_sum, batch, flip=True, shift=1)
    torch.testing.assert_close(both, torch.tensor([[(9 + 15) / 4 + (9 + 9 + 15 + 15) / 8], [42.0]]))


def test_test_time_flip_is_refused_for_vector_data_before_training(make_cfg) -> None:
    cfg = make_cfg("data=xor_clouds", "module.test_time_flip=true")
    expected = r"module\.test_time_flip=true .* needs image input .* not input_shape \[2\]; set module\.test_time_flip"
    with pytest.raises(ConfigError, match=expected):
        train(cfg)
    assert read_result(cfg)["status"] == "failed"
    with pytest.raises(ConfigError, match=r"module\.test_time_shift=28 is not smaller than the 28x28 images"):
        check_test_time_augmentation(make_cfg("data=mnist", "module.test_time_shift=28"))


def test_test_time_flip_warns_where_training_never_mirrors(make_cfg, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="src.checks.values"):
        check_test_time_augmentation(make_cfg("data=cifar10", "module.test_time_flip=true"))  # trained on flips: silent
        assert not caplog.records
        check_test_time_augmentation(make_cfg("data=mnist", "module.test_time_flip=true"))
    assert "data.augment.flip is off" in caplog.text


@pytest.mark.parametrize("experiment", ["cifar10_speedrun", "mnist_speedrun"])
def test_speedrun_lr_warms_up_then_decays_linearly_with_fixed_nesterov_momentum(make_cfg, experiment: str) -> None:
    cfg = make_cfg(f"experiment={experiment}")
    optimizer = instantiate(cfg.optimizer)([torch.zeros(1, requires_grad=True)])
    schedule = build_scheduler(instantiate(cfg.scheduler, _convert_="all"), optimizer, total_steps=100)["scheduler"]
    lrs, momenta = [], set()
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        momenta.add(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        schedule.step()
    peak = cfg.optimizer.lr
    assert lrs[0] == pytest.approx(peak / 5) and lrs[-1] == pytest.approx(0.07 * peak, rel=1e-4)
    assert lrs.index(max(lrs)) == 22 and max(lrs) == pytest.approx(peak)  # the 23rd of 100 steps
    rises, falls = torch.tensor(lrs[:23]).diff(), torch.tensor(lrs[22:]).diff()
    assert rises.min() > 0 > falls.max()
    torch.testing.assert_close(rises, rises.mean().expand(22))
    torch.testing.assert_close(falls, falls.mean().expand(77))
    assert momenta == {cfg.optimizer.momentum} and optimizer.defaults["nesterov"] and optimizer.defaults["fused"]
