"""Padding layers that keep their input's dtype under autocast.

CPU autocast lists ``reflection_pad2d`` and ``replication_pad2d`` among the float32 ops, so in a
bf16 step every pad of a ResNet block casts its bf16 input up to float32, pads, and the next
convolution casts it back down (and the backward casts both ways again). A pad only copies values,
so padding in the input's own dtype gives the same numbers with neither cast; these subclasses do
that and are otherwise ``nn.ReflectionPad2d`` / ``nn.ReplicationPad2d`` (no parameters, so no
state-dict keys; without autocast they are the plain modules).
"""
import torch
from torch import nn


class _InputDtype:
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        if device in ("cpu", "cuda") and torch.is_autocast_enabled(device):
            with torch.autocast(device, enabled=False):
                return super().forward(x)
        return super().forward(x)


class ReflectionPad2d(_InputDtype, nn.ReflectionPad2d):
    """``nn.ReflectionPad2d`` (N, C, H, W) -> (N, C, H + top + bottom, W + left + right), in x's dtype."""


class ReplicationPad2d(_InputDtype, nn.ReplicationPad2d):
    """``nn.ReplicationPad2d`` in x's dtype (see :class:`ReflectionPad2d`)."""
