"""Weight initialisation as in the reference implementations (DCGAN's normal(0, 0.02) by default),
and the spreading of trained weights over more inputs (a layer widened, same function)."""
import torch
from torch import nn


def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """Initialise conv and linear weights with ``normal``, ``xavier``, ``kaiming`` or ``orthogonal``;
    biases to zero; batch-norm scales to normal(1, gain)."""
    if init_type not in ("normal", "xavier", "kaiming", "orthogonal"):
        raise ValueError(f"unknown init_type {init_type!r}: choose normal, xavier, kaiming or orthogonal")

    def init_one(m: nn.Module) -> None:
        name = type(m).__name__
        weight = getattr(m, "weight", None)
        if weight is not None and ("Conv" in name or "Linear" in name):
            if init_type == "normal":
                nn.init.normal_(weight, 0.0, init_gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(weight, gain=init_gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(weight, gain=init_gain)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif "BatchNorm2d" in name and weight is not None:
            nn.init.normal_(weight, 1.0, init_gain)
            nn.init.zeros_(m.bias)

    net.apply(init_one)
    return net


def spread_columns(t: torch.Tensor, inputs: int, power: int = 1) -> torch.Tensor | None:
    """A linear weight ``t`` (out, in) for a layer reading each of its ``in`` inputs ``inputs // in``
    times over (its average: each copy weighs ``1 / k``, so the layer computes what it did), or
    None if ``inputs`` is not a multiple of ``in``. ``power`` 2 spreads Adam's second moment
    (the square of a gradient that is ``1 / k`` of the old one)."""
    if t.dim() != 2 or inputs % t.shape[1] or inputs == t.shape[1]:
        return None
    k = inputs // t.shape[1]
    return t.repeat_interleave(k, dim=1) / k ** power
