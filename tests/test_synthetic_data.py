"""Synthetic data: seeded splits, the promised relationships, and declared metadata checked against the data."""

import pytest
import torch

from src.datamodules import LinearDataModule, XORDataModule
from src.datamodules.base import split_indices


def linear(**kwargs) -> LinearDataModule:
    args = {"task": "regression", "input_shape": [1], "num_outputs": 1, "batch_size": 32, "seed": 0, **kwargs}
    data = LinearDataModule(**args)
    data.setup()
    return data


def xor(**kwargs) -> XORDataModule:
    args = {"task": "binary", "input_shape": [2], "num_outputs": 1, "batch_size": 4, "seed": 0, **kwargs}
    data = XORDataModule(**args)
    data.setup()
    return data


def test_linear_splits_have_the_configured_sizes_and_do_not_overlap() -> None:
    train, val, test = linear(n=1000).splits
    assert [len(s) for s in (train, val, test)] == [800, 100, 100]
    rows = torch.cat([s.tensors[0] for s in (train, val, test)])
    assert len(torch.unique(rows, dim=0)) == 1000


def test_linear_data_follows_y_equals_2x_plus_3() -> None:
    x, y = linear(n=2000, noise=0.05).splits[0].tensors
    design = torch.cat([x, torch.ones_like(x)], dim=1)
    w, b = torch.linalg.lstsq(design, y).solution.squeeze().tolist()
    assert w == pytest.approx(2.0, abs=0.02) and b == pytest.approx(3.0, abs=0.02)


def test_linear_input_dimension_comes_from_input_shape() -> None:
    x, y = linear(input_shape=[3], noise=0.0, weight=[1.0, -1.0, 0.5], bias=0.0).splits[0].tensors
    assert x.shape[1:] == (3,)
    torch.testing.assert_close(y.squeeze(1), x @ torch.tensor([1.0, -1.0, 0.5]))


def test_same_seed_same_data_other_seed_other_data() -> None:
    first, again, other = linear(seed=1), linear(seed=1), linear(seed=2)
    torch.testing.assert_close(first.splits[0].tensors[0], again.splits[0].tensors[0])
    assert not torch.equal(first.splits[0].tensors[0], other.splits[0].tensors[0])


def test_train_loader_shuffles_reproducibly_from_the_seed() -> None:
    def first_batch() -> torch.Tensor:
        return next(iter(linear(seed=3, batch_size=8).train_dataloader()))[0]

    torch.testing.assert_close(first_batch(), first_batch())
    assert not torch.equal(first_batch(), linear(seed=3).splits[0].tensors[0][:8])


def test_xor_table_is_the_truth_table_in_every_split() -> None:
    for x, y in (s.tensors for s in xor().splits):
        assert x.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
        assert y.squeeze(1).tolist() == [0, 1, 1, 0]


def test_xor_clouds_label_is_the_xor_of_the_nearest_corner() -> None:
    x, y = xor(variant="clouds", n=500, noise=0.1).splits[0].tensors
    corner = (x > 0.5).long()
    assert torch.equal(y.squeeze(1).long(), corner[:, 0] ^ corner[:, 1])
    assert len(x) == 400


def test_declared_input_shape_must_match_the_data() -> None:
    with pytest.raises(ValueError, match=r"declares input_shape \[3\], the data has \[2\]"):
        xor(input_shape=[3])


def test_declared_task_must_match_the_data_set() -> None:
    with pytest.raises(ValueError, match=r"is a binary data set; its config declares task='multiclass'"):
        xor(task="multiclass")


def test_unknown_task_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown task 'ranking'.*'regression', 'binary', 'multiclass'"):
        linear(task="ranking")


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.8, 0.1, 0.2), (1.0, 0.0, 0.0)])
def test_bad_split_fractions_are_refused(fractions: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="three positive fractions"):
        split_indices(100, fractions, seed=0)


def test_batch_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size must be >= 1, got batch_size=0"):
        linear(batch_size=0)
