"""What an ONNX export is made of: :class:`Graph` (a module, example inputs, their names and
dynamic axes) and the pieces the methods' ``Translator.onnx_graphs`` share: an image graph
(:class:`ImageGraph`, :func:`image_graph`) and the swap of batch statistics for per-image ones
(:func:`swap_modules`, :func:`per_image_norm`). Writing the graphs is
:mod:`trainer.onnx_export`'s job.

Every graph's images are float (N, C, H, W) in [-1, 1]; its output ``output`` is (N, 3, H', W')
in [-1, 1].
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from trainer.translator import input_channels, match_channels

__all__ = ["Graph", "swap_modules", "per_image_norm", "ImageGraph", "example_side", "image_graph"]


@dataclass
class Graph:
    """One ONNX graph to write: the module, example inputs, their names, dynamic axes as
    ``{input: {axis: multiple}}`` (0 = the batch), a line of documentation per input, and further
    metadata entries (JSON text) for what a caller needs to make the inputs."""
    suffix: str
    module: nn.Module
    example: tuple
    names: list[str]
    dynamic: dict[str, dict[int, int]]
    doc: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


def swap_modules(net: nn.Module, pick, make) -> nn.Module:
    """Replace every submodule ``m`` with ``pick(m)`` true by ``make(m)``, in place."""
    for name, m in list(net.named_modules()):
        for child_name, child in list(m.named_children()):
            if pick(child):
                setattr(m, child_name, make(child))
    return net


def per_image_norm(norm: nn.Module) -> nn.InstanceNorm2d:
    """A norm layer's affine parameters on each image's own statistics (batch statistics of a
    batch of one, as the studio runs pix2pix and StarGAN), without running statistics."""
    out = nn.InstanceNorm2d(norm.num_features, eps=norm.eps, affine=norm.affine, track_running_stats=False)
    if norm.affine:
        out.weight, out.bias = copy.deepcopy(norm.weight), copy.deepcopy(norm.bias)
    return out


class ImageGraph(nn.Module):
    """``image`` through ``nets`` in turn, channels matched as the studio matches them."""

    def __init__(self, *nets):
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, image):
        x = image
        for net in self.nets:
            x = net(match_channels(x, input_channels(net)))
        return match_channels(x, 3).clamp(-1, 1)


def example_side(multiple: int, image_size: int) -> int:
    """An example height: a multiple of ``multiple``, at least two of them (a dimension of size 1
    would be specialised by the exporter)."""
    return multiple * max(2, image_size // multiple)


def image_graph(suffix, module, channels, multiple, size, doc, extra=(), extra_names=(), extra_dynamic=None):
    side = example_side(multiple, size)
    example = (torch.zeros(2, channels, side, side).uniform_(-1, 1), *extra)
    dynamic = {"image": {0: 1, 2: multiple, 3: multiple}, **(extra_dynamic or {})}
    return Graph(suffix, module, example, ["image", *extra_names], dynamic,
                 {"image": f"(N, {channels}, H, W) in [-1, 1]; H and W multiples of {multiple}", **doc})
