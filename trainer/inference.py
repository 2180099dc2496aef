"""Loading a model file as its method's Translator: :func:`load`.

Each method's Translator lives in its method's module (``Method.Translator``), the base class and
its helpers in :mod:`trainer.translator`, the controls in :mod:`trainer.controls`; those shared
names stay importable from here for older scripts.
"""
from __future__ import annotations

from trainer.controls import SEED_MAX, Control, ControlError
from trainer.modelfile import load_model
from trainer.registry import method_of_card
from trainer.translator import (LUMA, TEST_MODES, Translator, build_net, input_channels, match_channels,
                                set_norm_mode, upscale_tiled, upscale_tiled_tensor)

__all__ = ["load", "Translator", "Control", "ControlError", "SEED_MAX", "build_net", "input_channels",
           "match_channels", "LUMA", "TEST_MODES", "set_norm_mode", "upscale_tiled", "upscale_tiled_tensor"]


def load(path, device="cpu") -> Translator:
    """The model file at ``path`` as a Translator for its method
    (``registry.method_of_card(card).Translator(card, tensors, device)``), its nets on ``device``
    ("cpu", "cuda", "cuda:1", "mps" or a torch.device). Raises
    :class:`~trainer.errors.ModelFileError` for a file that is no usable model file or whose
    method this version does not have."""
    tensors, card = load_model(path)
    try:
        method = method_of_card(card)
    except ValueError as e:
        raise type(e)(f"{path}: {e}") from None
    return method.Translator(card, tensors, device)
