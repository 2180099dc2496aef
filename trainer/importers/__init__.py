"""``gan-trainer import``: reference checkpoints into GAN Studio model files.

Checkpoints are read with ``torch.load(weights_only=True, map_location="cpu")``: tensors and
plain containers only, never arbitrary objects. A file that needs more than that is refused.
The architecture is inferred by matching the checkpoint's keys and shapes against candidate
networks built on the meta device (no memory, no time).
"""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import torch

from trainer.modelfile import save_model


class CheckpointImportError(ValueError):
    """A checkpoint that cannot be imported; the message says why."""


def safe_load(path, allowed_globals=()) -> object:
    """``torch.load(weights_only=True)`` with clear errors; ``allowed_globals`` are extra classes
    the unpickler may build (``argparse.Namespace`` for rosinality files)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointImportError(f"{path}: no such file")
    try:
        if allowed_globals:
            with torch.serialization.safe_globals(list(allowed_globals)):
                return torch.load(path, map_location="cpu", weights_only=True)
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found:
            what = f" (it references {found.group(1)})"
            raise CheckpointImportError(
                f"{path}: refused — this checkpoint needs more than tensors to load{what}; unpickling it "
                "could run code. Only plain state dicts of tensors are imported.") from None
        raise CheckpointImportError(f"{path}: not a readable PyTorch checkpoint (corrupt or another format)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise CheckpointImportError(f"{path}: not a readable PyTorch checkpoint ({e})") from None


def clean_state_dict(state: dict) -> dict:
    """Strip ``module.`` (DataParallel/DDP) and ``_orig_mod.`` (torch.compile) prefixes."""
    out = {}
    for k, v in state.items():
        for prefix in ("module.", "_orig_mod."):
            while k.startswith(prefix):
                k = k[len(prefix):]
        out[k.replace("._orig_mod.", ".").replace(".module.", ".")] = v
    return out


def as_state_dict(obj, path) -> dict:
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return clean_state_dict(obj)
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "G", "netG"):
            if isinstance(obj.get(key), dict):
                return as_state_dict(obj[key], path)
    raise CheckpointImportError(f"{path}: not a state dict of tensors (found {type(obj).__name__})")


def shapes(state: dict) -> dict:
    return {k: tuple(v.shape) for k, v in state.items()}


def matches(cls, kwargs: dict, state: dict) -> bool:
    with torch.device("meta"):
        net = cls(**kwargs)
    return shapes(net.state_dict()) == shapes(state)


def import_checkpoint(path, out, kind: str = "auto", **options) -> Path:
    """Convert ``path`` into a model file at ``out``; ``kind`` auto-detects from the keys."""
    import argparse

    from trainer.importers import junyanz, rosinality, stargan

    importers = {"pix2pix": junyanz.import_pix2pix, "cyclegan": junyanz.import_cyclegan,
                 "stargan": stargan.import_stargan, "stylegan": rosinality.import_stylegan}
    path = Path(path)
    if kind != "auto" and kind not in importers:
        raise CheckpointImportError(f"unknown checkpoint kind {kind!r}; known: auto, {', '.join(importers)}")
    obj = safe_load(path, allowed_globals=[argparse.Namespace])  # rosinality files carry their args
    if kind == "stylegan" or (kind == "auto" and rosinality.detect(obj)):
        kind, state = "stylegan", obj
    else:
        state = as_state_dict(obj, path)
    if kind == "auto":
        kind = junyanz.detect(state) or stargan.detect(state)
        if kind is None:
            raise CheckpointImportError(f"{path}: unrecognised checkpoint (first keys: {', '.join(list(state)[:4])})")
    tensors, card = importers[kind](state, path, **options)
    card.setdefault("training", {})["imported_from"] = path.name
    return save_model(out, tensors, card)
