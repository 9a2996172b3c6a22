"""The models by name: :func:`create` builds one of :func:`list_models`."""

import inspect
from collections.abc import Callable

from torch import nn

from analogsim.errors import SpecError
from analogsim.models.mlp import mlp, rl_tfc, rl_tfc_bn
from analogsim.models.resnets import resnet18_cifar, resnet20
from analogsim.models.small_cnns import cnn_s, cnn_s_bn, lenet5, lenet5_bn
from analogsim.models.transformers import causal_lm_tiny, vit_tiny

_MODELS: dict[str, Callable[..., nn.Module]] = {
    "causal_lm_tiny": causal_lm_tiny,
    "cnn_s": cnn_s,
    "cnn_s_bn": cnn_s_bn,
    "lenet5": lenet5,
    "lenet5_bn": lenet5_bn,
    "mlp": mlp,
    "resnet18_cifar": resnet18_cifar,
    "resnet20": resnet20,
    "rl_tfc": rl_tfc,
    "rl_tfc_bn": rl_tfc_bn,
    "vit_tiny": vit_tiny,
}


def list_models() -> list[str]:
    """The names :func:`create` accepts, sorted."""
    return sorted(_MODELS)


def create(name: str, **kwargs: object) -> nn.Module:
    """Build the model called ``name`` (in training mode, freshly initialised).

    Args:
        name: one of :func:`list_models`.
        **kwargs: the keyword arguments of that model's function in this package (e.g.
            ``in_features`` for ``mlp``, ``input_shape`` for ``lenet5``).

    Raises:
        SpecError: an unknown name, an argument the model does not take, or a bad value.
    """
    if name not in _MODELS:
        raise SpecError(f"unknown model {name!r}; expected one of {', '.join(list_models())}")
    builder = _MODELS[name]
    accepted = inspect.signature(builder).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise SpecError(
            f"model {name!r} takes no argument {', '.join(map(repr, unknown))}; expected some of "
            f"{', '.join(accepted)}"
        )
    return builder(**kwargs)
