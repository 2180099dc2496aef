"""Checkpoints of rosinality/stylegan2-pytorch (``.pt``), in the layouts people have:

- a training checkpoint: a dict with ``g_ema`` (else ``g``), ``d``, optimiser states, ``args`` (an
  argparse.Namespace, the only class allowed to load) and sometimes ``latent_avg``;
- ``{"g_ema": state}`` alone (what convert_weight.py and most shared files hold);
- the generator's bare state dict.

Checkpoints of older versions lack the ``noises.noise_N`` buffers (the fixed noise maps); they
are filled in with seeded maps of the right sizes, and the card says so. Size, style_dim, n_mlp,
channel multiplier and channel_max are inferred from the keys."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from trainer.importers import CheckpointImportError, best_match, clean_state_dict, few, is_tensor_dict, require
from trainer.nets.stylegan import StyleGenerator

WHAT = "rosinality StyleGAN2 generator"


def generator_state(obj) -> tuple[str, dict] | None:
    """(where, the generator's cleaned state dict) when ``obj`` holds a StyleGAN2 generator: under
    ``g_ema``, under ``g``, or bare; else None."""
    if not isinstance(obj, dict):
        return None
    for key in ("g_ema", "g"):
        if is_tensor_dict(obj.get(key)):
            state = clean_state_dict(obj[key])
            if "style.1.weight" in state:
                return key, state
    if is_tensor_dict(obj):
        state = clean_state_dict(obj)
        if "style.1.weight" in state:
            return "state dict", state
    return None


def detect(obj) -> bool:
    return generator_state(obj) is not None


def noise_shapes(size: int) -> dict:
    """{noises.noise_i: shape} of a generator of ``size``: 4, 8, 8, 16, 16, ... px."""
    n = (int(math.log2(size)) - 2) * 2 + 1
    return {f"noises.noise_{i}": (1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)) for i in range(n)}


def import_generator(obj, path: Path, **_):
    """The StyleGAN2 generator ``obj`` holds (:func:`generator_state`): (tensors under ``G.`` plus
    ``latent_avg`` when the file has it, card without ``method``)."""
    found = generator_state(obj)
    if found is None:
        keys = few(obj) if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointImportError(f"{path}: not a {WHAT}: no key style.1.weight, neither at the top nor under "
                                    f"g_ema or g (its keys: {keys})")
    key, state = found
    style_dim = require(state, "style.1.weight", path, WHAT, dim=2).shape[0]
    channel_max = require(state, "input.input", path, WHAT, dim=4).shape[1]
    n_mlp = len({k.split(".")[1] for k in state if k.startswith("style.")})
    rgbs = {k.split(".")[1] for k in state if k.startswith("to_rgbs.")}
    if not rgbs:
        raise CheckpointImportError(f"{path}: not a {WHAT}: no key to_rgbs.0.* (its first keys: {few(state)})")
    size = 2 ** (len(rgbs) + 2)
    cm = 1
    if size >= 64:  # 256 * multiplier channels at 64 px
        cm = max(1, require(state, "convs.6.conv.weight", path, WHAT, dim=5).shape[1] // 256)
    filled = []
    if not any(k.startswith("noises.") for k in state):  # older versions did not save the noise buffers
        g = torch.Generator().manual_seed(0)
        state = {**state, **{k: torch.randn(s, generator=g) for k, s in noise_shapes(size).items()}}
        filled.append("noises")
    args = {"size": size, "style_dim": style_dim, "n_mlp": n_mlp, "channel_multiplier": cm,
            "channel_max": channel_max}
    found_args, problem = best_match(StyleGenerator, [args], state)
    if found_args is None:
        raise CheckpointImportError(f"{path}: a StyleGAN2 generator ({key}) whose keys and shapes match no "
                                    f"generator of size {size}, style_dim {style_dim}, n_mlp {n_mlp}, channel "
                                    f"multiplier {cm}: {problem}")
    tensors = {f"G.{k}": v.float() if v.is_floating_point() else v for k, v in state.items()}
    latent_avg = obj.get("latent_avg")
    if isinstance(latent_avg, torch.Tensor):
        if latent_avg.numel() != style_dim:
            raise CheckpointImportError(f"{path}: latent_avg has shape {tuple(latent_avg.shape)}, expected "
                                        f"{style_dim} values (style_dim)")
        tensors["latent_avg"] = latent_avg.float().reshape(1, -1)
    training = {"source": "rosinality/stylegan2-pytorch", "generator": key}
    if filled:
        training["filled_in"] = ("noises: the fixed noise maps were not in this (older) checkpoint; drawn "
                                 "with seed 0")
    card = {"task": "style", "nets": {"G": {"name": "stylegan_G", "args": args}},
            "image_size": size, "channels": 3, "value_range": [-1, 1], "training": training}
    return tensors, card
