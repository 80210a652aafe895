"""Small shared pieces: activations by name and a dense stack from a list of sizes."""

from __future__ import annotations

from torch import nn

from vaelab.errors import ConfigError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
}


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ConfigError(
            f"option 'activation' got {name!r}; choose one of {', '.join(ACTIVATIONS)}."
        ) from None


def dense_stack(
    in_features: int,
    sizes: list[int],
    act: str = "relu",
    batch_norm: bool = False,
    dropout: float = 0.0,
) -> tuple[nn.Sequential, int]:
    """Linear -> [BatchNorm] -> activation -> [Dropout] per size; returns (stack, out_features)."""
    layers: list[nn.Module] = []
    width = in_features
    for size in sizes:
        layers.append(nn.Linear(width, size))
        if batch_norm:
            layers.append(nn.BatchNorm1d(size))
        layers.append(activation(act))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    return nn.Sequential(*layers), width
