"""Every model on every input shape it supports, the shapes it refuses, and the architecture facts it promises; every
model config with every data config, so a new file of either is tested with no edit here."""

import pytest
import torch
from torch import nn

from src.config import builders
from src.config.resolvers import PROJECT_ROOT
from src.errors import ConfigError
from src.models import CNN, MLP, Perceptron, ResNet, ShapeError, SpeedrunNet, TwoLayerNet
from src.models.speedrun_net import SpeedrunBatchNorm

VECTOR_MODELS = [Perceptron, TwoLayerNet, MLP]
IMAGE_MODELS = [CNN, ResNet, SpeedrunNet]
VECTOR_SHAPES = [(1,), (2,), (1, 28, 28), (3, 32, 32)]
IMAGE_SHAPES = [(1, 28, 28), (3, 32, 32)]


@pytest.mark.parametrize("shape", VECTOR_SHAPES)
@pytest.mark.parametrize("model_cls", VECTOR_MODELS)
def test_vector_models_take_any_shape_flattened(model_cls: type[nn.Module], shape: tuple[int, ...]) -> None:
    model = model_cls(input_shape=list(shape), num_outputs=3)
    assert model(torch.randn(5, *shape)).shape == (5, 3)


@pytest.mark.parametrize("shape", IMAGE_SHAPES)
@pytest.mark.parametrize("model_cls", IMAGE_MODELS)
def test_image_models_output_one_row_per_image(model_cls: type[nn.Module], shape: tuple[int, ...]) -> None:
    model = model_cls(input_shape=list(shape), num_outputs=10).eval()
    assert model(torch.randn(2, *shape)).shape == (2, 10)


@pytest.mark.parametrize("model_cls", IMAGE_MODELS)
def test_image_models_refuse_vector_input_and_say_what_fits(model_cls: type[nn.Module]) -> None:
    with pytest.raises(ShapeError, match=r"needs image input.*got input_shape \[1\].*data=mnist or data=cifar10"):
        model_cls(input_shape=[1], num_outputs=1)


def test_cnn_refuses_images_too_small_for_its_pooling() -> None:
    with pytest.raises(ShapeError, match=r"height and width must be >= 8"):
        CNN(input_shape=[1, 4, 4], num_outputs=2)


def test_two_layer_with_identity_is_exactly_one_linear_map() -> None:
    net = TwoLayerNet(input_shape=[2], num_outputs=1, hidden_size=8, activation="identity")
    first, second = net.net[1], net.net[3]
    weight = second.weight @ first.weight
    bias = second.weight @ first.bias + second.bias
    x = torch.randn(16, 2)
    torch.testing.assert_close(net(x), x @ weight.T + bias)


def test_mlp_depth_width_batch_norm_and_dropout_follow_the_arguments() -> None:
    mlp = MLP(input_shape=[1, 28, 28], num_outputs=10, hidden_sizes=[100, 50, 25], dropout=0.2, batch_norm=True)
    linears = [m for m in mlp.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 100), (100, 50), (50, 25), (25, 10)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in mlp.modules()) == 3
    assert sum(isinstance(m, nn.Dropout) for m in mlp.modules()) == 3


@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh", "sigmoid", "leaky_relu", "identity"])
def test_every_documented_activation_builds(activation: str) -> None:
    assert MLP(input_shape=[2], num_outputs=1, activation=activation)(torch.randn(3, 2)).shape == (3, 1)


def test_unknown_activation_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match=r"unknown activation 'swish'.*'leaky_relu'"):
        MLP(input_shape=[2], num_outputs=1, activation="swish")


def test_cnn_has_three_conv_blocks_with_batch_norm_and_pooling() -> None:
    cnn = CNN(input_shape=[3, 32, 32], num_outputs=10)
    assert len(cnn.features) == 3
    for block in cnn.features:
        kinds = [type(m) for m in block]
        assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d]


def test_default_resnet_is_cifar_resnet18() -> None:
    resnet = ResNet(input_shape=[3, 32, 32], num_outputs=10)
    assert sum(p.numel() for p in resnet.parameters()) == 11_173_962  # the published CIFAR ResNet-18 size
    assert resnet.stem[0].kernel_size == (3, 3) and not any(isinstance(m, nn.MaxPool2d) for m in resnet.modules())
    projections = [b for b in resnet.stages if not isinstance(b.shortcut, nn.Identity)]
    assert len(projections) == 3  # one at the start of every stage that halves resolution and doubles width


def test_resnet_depth_and_width_are_configurable_and_take_one_channel() -> None:
    resnet = ResNet(input_shape=[1, 28, 28], num_outputs=10, blocks_per_stage=[1, 1, 1], base_width=16)
    assert len(resnet.stages) == 3 and resnet.head[-1].in_features == 64
    assert resnet(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_speedrun_net_groups_follow_the_widths_and_convolutions_start_as_identities() -> None:
    assert sum(p.numel() for p in SpeedrunNet([3, 32, 32], 10).parameters() if p.requires_grad) == 1_972_000
    net = SpeedrunNet(input_shape=[3, 32, 32], num_outputs=10, widths=[8, 16], stem_width=4)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 4), (4, 8), (8, 8), (8, 16), (16, 16)]
    assert sum(isinstance(m, nn.MaxPool2d) for m in net.modules()) == 2
    for conv in convs:  # dirac_init: the first in_channels filters pass their input channel through
        x = torch.randn(1, conv.in_channels, 5, 5)
        torch.testing.assert_close(conv(x)[:, : conv.in_channels], x)


def test_speedrun_batch_norm_keeps_its_scale_and_moves_its_bias_bias_lr_scale_times_as_far() -> None:
    x, weights = torch.randn(8, 3, 4, 4), torch.arange(1.0, 4.0).view(1, 3, 1, 1)
    moved = {}
    for scale in (1.0, 64.0):
        norm = SpeedrunBatchNorm(3, momentum=0.4, learn_scale=False, bias_lr_scale=scale)
        (norm(x) * weights).sum().backward()
        torch.optim.SGD(norm.parameters(), lr=0.01).step()
        assert norm.weight.grad is None and torch.equal(norm.weight, torch.ones(3))
        moved[scale] = norm.bias.detach() * norm.bias_multiplier
    assert moved[1.0].abs().min() > 0
    torch.testing.assert_close(moved[64.0], 64 * moved[1.0])


def test_speedrun_net_divides_its_logits_by_the_temperature() -> None:
    plain = SpeedrunNet([1, 8, 8], 3, widths=[4], stem_width=4, logit_temperature=1.0).eval()
    cooled = SpeedrunNet([1, 8, 8], 3, widths=[4], stem_width=4).eval()
    cooled.load_state_dict(plain.state_dict())
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(cooled(x) * 9, plain(x))


MODEL_CONFIGS = sorted(path.stem for path in (PROJECT_ROOT / "configs" / "model").glob("*.yaml"))
DATA_CONFIGS = sorted(path.stem for path in (PROJECT_ROOT / "configs" / "data").glob("*.yaml"))


@pytest.mark.parametrize("data", DATA_CONFIGS)
@pytest.mark.parametrize("model", MODEL_CONFIGS)
def test_every_model_config_builds_for_every_data_config_or_names_the_pair(make_cfg, model: str, data: str) -> None:
    cfg = make_cfg(f"model={model}", f"data={data}")
    try:
        net = builders.build_model(cfg).eval()
    except ConfigError as err:  # only image models refuse, and only vector data
        assert len(cfg.data.input_shape) == 1, err
        assert str(err).startswith(f"model={model} does not fit data={data}: ") and "data=mnist or data=cifar10" in str(
            err
        )
        return
    outputs = net(torch.randn(2, *cfg.data.input_shape))
    assert outputs.shape == (2, cfg.data.num_outputs)
