"""Test-time dropout drawn from a render's own seeded generator, not from PyTorch's global one.

pix2pix keeps dropout on at test time as its only noise (Isola et al. 2017, section 3.1.1: "we
provide noise only in the form of dropout, applied on several layers of our generator at both
training and test time"); the ``paper`` mode of :class:`trainer.methods.pix2pix.ImageTranslator`
seeds it from the ``seed`` control. Seeding the global generator made two renders on two threads
at once (two studio pages, or a script's threads) draw from the same stream in turn: each got
another mask than it would alone. Here each render holds a ``torch.Generator`` of its own, on the
calling thread only, and every dropout layer of a net passed to :func:`attach` draws from it.

For the same seed the masks are bit for bit those of ``torch.manual_seed(seed)`` followed by
``F.dropout`` on the CPU (the same Bernoulli draws in the same order); on CUDA, where ``F.dropout``
runs a fused kernel of its own, they are other draws, equally seeded.
"""
from __future__ import annotations

import contextlib
import functools
import threading

import torch
from torch import nn

_render = threading.local()  # .generator: the torch.Generator of the render running on this thread


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str = "cpu"):
    """While the block runs on this thread, the dropout layers of :func:`attach`-ed nets draw their
    masks from ``torch.Generator(device).manual_seed(seed)`` (``seed``: an int >= 0); other threads
    and the global generator are untouched. Nests (the inner seed wins until its block ends).
    On Apple MPS the generator is a CPU one (seeded MPS generators are not available in every
    torch build): the masks are drawn on the CPU and moved to the layer's device."""
    device = torch.device(device)
    generator = torch.Generator(device=device if device.type != "mps" else "cpu").manual_seed(int(seed))
    before = getattr(_render, "generator", None)
    _render.generator = generator
    try:
        yield generator
    finally:
        _render.generator = before


def attach(net: nn.Module) -> None:
    """Every ``nn.Dropout`` of ``net`` draws from the :func:`seeded` generator of the thread that
    runs it, when there is one and the layer is in training mode (dropout on); otherwise it is the
    layer's own forward. Attaching twice changes nothing."""
    for m in net.modules():
        if isinstance(m, nn.Dropout) and "_seeded" not in m.__dict__:
            m.__dict__["_seeded"] = True
            m.forward = functools.partial(_forward, m, m.forward)


def _forward(layer: nn.Dropout, forward, x: torch.Tensor) -> torch.Tensor:
    generator = getattr(_render, "generator", None)
    if generator is None or not layer.training or layer.p == 0:
        return forward(x)
    if layer.p == 1:
        return torch.zeros_like(x)
    keep = 1 - layer.p
    if generator.device == x.device:
        noise = torch.empty_like(x).bernoulli_(keep, generator=generator).div_(keep)  # as F.dropout's CPU kernel
    else:  # an MPS render draws on its CPU generator (seeded's note), and the mask moves to x's device
        noise = torch.empty(x.shape, dtype=x.dtype, device=generator.device)
        noise = noise.bernoulli_(keep, generator=generator).div_(keep).to(x.device)
    return x.mul_(noise) if layer.inplace else x * noise
