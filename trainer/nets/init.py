"""Weight initialisation as in the reference implementations (DCGAN's normal(0, 0.02) by default)."""
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
