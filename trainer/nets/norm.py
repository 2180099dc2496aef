"""Normalisation layers by name, as the reference implementation builds them."""
import functools

from torch import nn


NORMS = ("batch", "instance", "none")


def norm_layer(name: str):
    """Return a constructor ``f(num_features) -> nn.Module`` for ``batch``, ``instance`` or ``none``.

    Instance norm carries no affine parameters and no running statistics (the junyanz
    default), so it adds no state-dict keys; batch norm adds weight, bias and running stats.
    """
    if name == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if name == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if name == "none":
        return lambda num_features: nn.Identity()
    raise ValueError(f"unknown norm {name!r}: choose {', '.join(NORMS[:-1])} or {NORMS[-1]}")


def uses_bias(name: str) -> bool:
    """Convolutions before a batch norm carry no bias (the norm's shift replaces it)."""
    return name != "batch"
