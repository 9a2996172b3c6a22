"""The network architectures of the reproduced papers, in plain ``torch.nn``, by name.

:func:`create` builds one from :func:`list_models`. Each model takes a batch of any size, so the
simulator can fold chip instances into the batch dimension, and flattens images by itself.
Weights keep PyTorch's default initialisation (the transformers' embeddings: normal, std 0.02).
The Walking Noise models keep a bias in every layer, as the original does; the ResNets'
convolutions have none (BatchNorm follows each).

The small models are ``nn.Sequential`` whose modules run in the order they are listed, so a
module's position among the non-``Flatten`` modules, plus one for the input, is its Walking Noise
operator index (METHODS.md §10): e.g. ``lenet5_bn`` has 16 operators, 0 input, 1 C6, 2 BN, ….

- ``mlp``: the demo MLP for digits/MNIST (default 64-64-64-10).
- ``rl_tfc``, ``rl_tfc_bn``: Walking Noise RL_TFC, three hidden layers of 64 (models_noisy/mlp.py).
- ``lenet5``, ``lenet5_bn``: Walking Noise LeNet-5 (models_noisy/lenet.py).
- ``cnn_s``, ``cnn_s_bn``: Walking Noise CNN-S for keyword spotting (models_noisy/cnn_HE.py).
- ``resnet20``: the CIFAR ResNet-20 of He et al. 2016 §4.2 (S0).
- ``resnet18_cifar``: the CIFAR ResNet-18 (S3).
- ``vit_tiny``: a small vision transformer (7×7 patches, 2 blocks of width 64) for MNIST.
- ``causal_lm_tiny``: a small causal language model (GPT-style, 2 blocks of width 64) over
  the characters of ``stdlib_text``; it takes (B, T) token ids and gives (B, T, vocab) logits.
"""

from analogsim.models.mlp import mlp, rl_tfc, rl_tfc_bn
from analogsim.models.registry import create, list_models
from analogsim.models.resnets import CifarResNet, resnet18_cifar, resnet20
from analogsim.models.small_cnns import cnn_s, cnn_s_bn, lenet5, lenet5_bn
from analogsim.models.transformers import (
    CausalLanguageModel,
    VisionTransformer,
    causal_lm_tiny,
    vit_tiny,
)

__all__ = [
    "CausalLanguageModel",
    "CifarResNet",
    "VisionTransformer",
    "causal_lm_tiny",
    "cnn_s",
    "cnn_s_bn",
    "create",
    "lenet5",
    "lenet5_bn",
    "list_models",
    "mlp",
    "resnet18_cifar",
    "resnet20",
    "rl_tfc",
    "rl_tfc_bn",
    "vit_tiny",
]
