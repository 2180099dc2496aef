"""Tensors made from a layer's weight once, for nets that only run inference.

Layers that compute with a form of their weight made at the call (trainer.nets.small_conv's
matrix, trainer.nets.resize_conv's phase kernels) make it at every call while a net may train:
PyTorch's fused optimisers update weights in place without bumping their version counters
(``torch.optim.Adam(fused=True)``: ``_version`` stays 0), so no key could see the change. A net
loaded for inference (:func:`trainer.inference.load`) is marked with :func:`mark_inference_only`;
there the tensors are made once per weight storage, version, dtype, device and what the layer adds
to the key (a memory format, the bias), and kept on the layer (not in its state dict).
"""
from typing import Callable

import torch
from torch import nn

_MARK = "_inference_only"


def mark_inference_only(net: nn.Module) -> None:
    """Mark every module of ``net`` as run for inference only: its weights change only through
    tracked in-place operations, ``.to()`` or new tensors (never a fused optimiser)."""
    for m in net.modules():
        m.__dict__[_MARK] = True


def inference_only(module: nn.Module) -> bool:
    """Whether ``module`` was marked by :func:`mark_inference_only`."""
    return bool(module.__dict__.get(_MARK))


def version(t: torch.Tensor) -> int | None:
    """``t``'s version counter (bumped by each tracked in-place change), or None for a tensor made
    under ``torch.inference_mode()``, which has none (a model loaded there)."""
    return None if t.is_inference() else t._version


def derived(module: nn.Module, name: str, make: Callable[[], object], *key) -> object:
    """``make()``, a tensor (or tuple of tensors) computed from ``module.weight``: on a module
    marked inference-only and while no gradient is recorded for the weight, made once per the
    weight's storage, version, dtype and device and ``key``, and cached on the module as ``name``
    (made outside inference mode, so that a later backward through the frozen net, a latent
    projection, may use it); else made at every call (with its gradient where one is recorded)."""
    w = module.weight
    if not inference_only(module) or (torch.is_grad_enabled() and w.requires_grad):
        return make()
    full_key = (w.data_ptr(), version(w), w.dtype, w.device, *key)
    slot = "_derived_" + name
    cached = module.__dict__.get(slot)
    if cached is None or cached[0] != full_key:
        with torch.inference_mode(False), torch.no_grad():  # an ordinary tensor: a later backward may save it
            cached = (full_key, make())
        module.__dict__[slot] = cached
    return cached[1]
