"""Checkpoints of rosinality/stylegan2-pytorch (``.pt``): dicts with ``g_ema`` (else ``g``), ``d``,
optimiser states, ``args`` (an argparse.Namespace, the only class allowed to load) and sometimes
``latent_avg``. Size, style_dim, n_mlp and channel multiplier are inferred from the keys."""
from __future__ import annotations

from pathlib import Path

import torch

from trainer.importers import CheckpointImportError, clean_state_dict, matches
from trainer.nets.stylegan import StyleGenerator


def detect(obj) -> bool:
    return isinstance(obj, dict) and any(isinstance(obj.get(k), dict) and "style.1.weight" in obj[k]
                                         for k in ("g_ema", "g"))


def import_stylegan(obj: dict, path: Path, **_):
    key = "g_ema" if isinstance(obj.get("g_ema"), dict) else "g"
    state = clean_state_dict(obj[key])
    style_dim = state["style.1.weight"].shape[0]
    n_mlp = len({k.split(".")[1] for k in state if k.startswith("style.")})
    size = 2 ** (len({k.split(".")[1] for k in state if k.startswith("to_rgbs.")}) + 2)
    cm = 1
    if size >= 64:
        cm = max(1, state["convs.6.conv.weight"].shape[1] // 256)
    channel_max = state["input.input"].shape[1]
    args = {"size": size, "style_dim": style_dim, "n_mlp": n_mlp, "channel_multiplier": cm,
            "channel_max": channel_max}
    if not matches(StyleGenerator, args, state):
        raise CheckpointImportError(f"{path}: a StyleGAN2 generator ({key}) whose keys and shapes match no "
                                    f"generator of size {size}, style_dim {style_dim}, n_mlp {n_mlp}")
    tensors = {f"G.{k}": v.float() if v.is_floating_point() else v for k, v in state.items()}
    latent_avg = obj.get("latent_avg")
    if isinstance(latent_avg, torch.Tensor):
        tensors["latent_avg"] = latent_avg.float().reshape(1, -1)
    card = {"method": "stylegan", "task": "style", "nets": {"G": {"name": "stylegan_G", "args": args}},
            "image_size": size, "channels": 3, "value_range": [-1, 1],
            "training": {"source": "rosinality/stylegan2-pytorch", "generator": key}}
    return tensors, card
