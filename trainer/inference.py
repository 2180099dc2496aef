"""Loading a model file as its method's Translator: :func:`load`.

Each method's Translator lives in its method's module (``Method.Translator``), the base class and
its helpers in :mod:`trainer.translator`, the controls in :mod:`trainer.controls`; those shared
names stay importable from here for older scripts.
"""
from __future__ import annotations

from trainer.controls import SEED_MAX, Control, ControlError
from trainer.device import check_inference_precision
from trainer.errors import ModelFileError
from trainer.modelfile import load_model
from trainer.nets.inference_cache import mark_inference_only
from trainer.registry import method_of_card
from trainer.translator import (LUMA, TEST_MODES, Translator, build_net, input_channels, match_channels,
                                set_norm_mode, upscale_tiled, upscale_tiled_tensor)

__all__ = ["load", "Translator", "Control", "ControlError", "SEED_MAX", "build_net", "input_channels",
           "match_channels", "LUMA", "TEST_MODES", "set_norm_mode", "upscale_tiled", "upscale_tiled_tensor"]


def load(path, device="cpu", precision: str = "fp32") -> Translator:
    """The model file at ``path`` as a Translator for its method
    (``registry.method_of_card(card).Translator(card, tensors, device)``), its nets on ``device``
    ("cpu", "cuda", "cuda:1", "mps" or a torch.device), running in ``precision`` ("fp32", the
    default here, so that scripts and scores compare bit for bit; "auto", "bf16", "fp16":
    :meth:`Translator.set_precision`). Raises :class:`~trainer.errors.ModelFileError` for a file
    that is no usable model file or whose method this version does not have, ValueError for an
    unknown precision (naming the choices) or fp16 on the CPU."""
    check_inference_precision(precision)  # refused before the file is read
    tensors, card = load_model(path)
    try:
        method = method_of_card(card)
    except ValueError as e:
        raise type(e)(f"{path}: {e}") from None
    try:
        translator = method.Translator(card, tensors, device)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}") from None
    for net in translator.generators():  # weights made once in the forms some layers compute with
        mark_inference_only(net)
    translator.set_precision(precision)
    return translator
