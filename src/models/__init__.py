"""Plain ``nn.Module`` networks: each takes ``input_shape`` and ``num_outputs`` and knows nothing of data sets."""

from src.models.cnn import CNN
from src.models.mlp import MLP
from src.models.perceptron import Perceptron
from src.models.resnet import ResNet
from src.models.shapes import ShapeError
from src.models.speedrun_net import SpeedrunNet
from src.models.two_layer import TwoLayerNet

__all__ = ["CNN", "MLP", "Perceptron", "ResNet", "ShapeError", "SpeedrunNet", "TwoLayerNet"]
