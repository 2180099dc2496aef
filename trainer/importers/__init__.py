"""``gan-trainer import``: reference checkpoints into GAN Studio model files.

Checkpoints are read with ``torch.load(weights_only=True, map_location="cpu")``: tensors and
plain containers only, never arbitrary objects. A file that needs more than that is refused.
The architecture is inferred by matching the checkpoint's keys and shapes against candidate
networks built on the meta device (no memory, no time); a refusal names the key or shape that
does not fit.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import torch

from trainer.modelfile import refused_pickle_message, save_model

#: ``--kind`` values; ``auto`` detects the kind from the keys.
KINDS = ("auto", "pix2pix", "cyclegan", "stargan", "stylegan")
KIND_HELP = {
    "auto": "detect the kind from the checkpoint's keys (default)",
    "pix2pix": "junyanz/pytorch-CycleGAN-and-pix2pix U-Net generator (latest_net_G.pth)",
    "cyclegan": "junyanz/pytorch-CycleGAN-and-pix2pix ResNet generator(s) (latest_net_G_A.pth, latest_net_G.pth)",
    "stargan": "yunjey/stargan generator (200000-G.ckpt)",
    "stylegan": "rosinality/stylegan2-pytorch generator (.pt: a training checkpoint, {'g_ema': ...} or a bare "
                "state dict)",
}
#: import options each kind takes (the CLI's --direction, --domains, --exclusive, --image-size)
OPTIONS = {"pix2pix": {"direction"}, "cyclegan": set(), "stargan": {"domains", "exclusive", "image_size"},
           "stylegan": set()}


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
        raise CheckpointImportError(refused_pickle_message(path, "checkpoint")) from None
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


def few(keys, n: int = 4) -> str:
    """The first ``n`` of ``keys``, comma-separated, with the number left out."""
    keys = [str(k) for k in keys]
    return ", ".join(keys[:n]) + (f" (and {len(keys) - n} more)" if len(keys) > n else "")


def is_tensor_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def as_state_dict(obj, path) -> dict:
    if is_tensor_dict(obj):
        return clean_state_dict(obj)
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "G", "netG"):
            if isinstance(obj.get(key), dict):
                return as_state_dict(obj[key], path)
        if not obj:
            raise CheckpointImportError(f"{path}: an empty dict, no state dict of tensors")
        key, value = next((k, v) for k, v in obj.items() if not isinstance(v, torch.Tensor))
        from trainer.importers import rosinality
        hint = " (a rosinality StyleGAN2 checkpoint: import it with --kind stylegan or auto)" \
            if rosinality.generator_state(obj) else ""
        raise CheckpointImportError(f"{path}: not a state dict of tensors: key {key!r} holds a "
                                    f"{type(value).__name__} (keys: {few(obj)}){hint}")
    raise CheckpointImportError(f"{path}: not a state dict of tensors (found {type(obj).__name__})")


def require(state: dict, key: str, path, what: str, dim: int | None = None) -> torch.Tensor:
    """``state[key]``, or a refusal naming the missing key (and the keys there are)."""
    if key not in state:
        raise CheckpointImportError(f"{path}: not a {what}: it has no key {key} (its first keys: {few(state)})")
    value = state[key]
    if dim is not None and value.dim() != dim:
        raise CheckpointImportError(f"{path}: not a {what}: {key} has shape {tuple(value.shape)}, "
                                    f"expected {dim} dimensions")
    return value


def check_channels(path, key: str, shape, channels: int, side: str) -> None:
    """Images have 1 (greyscale) or 3 (RGB) channels; anything else (Lab's 2, RGBA's 4) is refused."""
    if channels not in (1, 3):
        raise CheckpointImportError(f"{path}: {key} has shape {tuple(shape)}: {channels} channels {side}; "
                                    "only 1-channel (greyscale) and 3-channel (RGB) image models are imported")


def shapes(state: dict) -> dict:
    return {k: tuple(v.shape) for k, v in state.items()}


def mismatch(cls, kwargs: dict, state: dict) -> str | None:
    """None when ``cls(**kwargs)`` has exactly ``state``'s keys and shapes; else what differs,
    naming the keys and shapes."""
    try:
        with torch.device("meta"):
            net = cls(**kwargs)
    except (ValueError, TypeError, RuntimeError) as e:
        return f"no such network ({e})"
    want, have = shapes(net.state_dict()), shapes(state)
    missing = [k for k in want if k not in have]
    unexpected = [k for k in have if k not in want]
    wrong = [k for k in want if k in have and want[k] != have[k]]
    parts = []
    if missing:
        parts.append(f"missing key{'s' if len(missing) > 1 else ''} {few(missing, 3)}")
    if unexpected:
        parts.append(f"unexpected key{'s' if len(unexpected) > 1 else ''} {few(unexpected, 3)}")
    parts += [f"{k} has shape {have[k]} where the network has {want[k]}" for k in wrong[:2]]
    if len(wrong) > 2:
        parts.append(f"{len(wrong) - 2} more shapes differ")
    return "; ".join(parts) or None


def matches(cls, kwargs: dict, state: dict) -> bool:
    return mismatch(cls, kwargs, state) is None


def best_match(cls, candidates, state: dict) -> tuple[dict | None, str]:
    """The first of ``candidates`` (constructor kwargs) that matches ``state`` exactly, else
    (None, the mismatch of the closest one: the fewest differing keys)."""
    best = None
    for kwargs in candidates:
        problem = mismatch(cls, kwargs, state)
        if problem is None:
            return kwargs, ""
        try:
            with torch.device("meta"):
                want = shapes(cls(**kwargs).state_dict())
        except (ValueError, TypeError, RuntimeError):
            continue
        have = shapes(state)
        distance = len(set(want) ^ set(have)) + sum(want[k] != have[k] for k in set(want) & set(have))
        if best is None or distance < best[0]:
            best = (distance, problem)
    return None, best[1] if best else "no candidate network"


def _discriminator_hint(state: dict) -> str:
    keys = set(state)
    if "model.0.weight" in keys and "model.1.weight" not in keys or "net.0.weight" in keys \
            or "conv1.weight" in keys and "main.0.weight" in keys or any(k.startswith("convs.0.0.") for k in keys):
        return "; this looks like a discriminator: import the generator (…_net_G.pth, …-G.ckpt, g_ema)"
    return ""


def import_checkpoint(path, out, kind: str = "auto", **options) -> Path:
    """Convert ``path`` into a model file at ``out``; ``kind`` auto-detects from the keys.
    ``options``: ``direction`` (pix2pix), ``domains``, ``exclusive`` (True: the domains are one
    exclusive category; a list: those domains are) and ``image_size`` (StarGAN)."""
    import argparse

    from trainer.importers import junyanz, rosinality, stargan

    importers = {"pix2pix": junyanz.import_pix2pix, "cyclegan": junyanz.import_cyclegan,
                 "stargan": stargan.import_stargan, "stylegan": rosinality.import_stylegan}
    path = Path(path)
    if kind not in KINDS:
        raise CheckpointImportError(f"unknown checkpoint kind {kind!r}; known: {', '.join(KINDS)}")
    options = {k: v for k, v in options.items() if v is not None and v is not False}
    obj = safe_load(path, allowed_globals=[argparse.Namespace])  # rosinality files carry their args
    if kind == "stylegan" or (kind == "auto" and rosinality.generator_state(obj)):
        kind, state = "stylegan", obj
    else:
        state = as_state_dict(obj, path)
    if kind == "auto":
        kind = junyanz.detect(state) or stargan.detect(state)
        if kind is None:
            raise CheckpointImportError(
                f"{path}: unrecognised checkpoint: none of the keys of a pix2pix U-Net (model.model.0.weight), "
                "a CycleGAN ResNet (model.1.weight, model.N.conv_block.*), a StarGAN generator (main.0.weight) or "
                f"a StyleGAN2 generator (style.1.weight); its first keys: {few(state)}{_discriminator_hint(state)}")
    unused = sorted(set(options) - OPTIONS[kind])
    if unused:
        names = ", ".join("--" + u.replace("_", "-") for u in unused)
        raise CheckpointImportError(f"{path}: {names} does not apply to a {kind} checkpoint")
    try:
        tensors, card = importers[kind](state, path, **options)
    except (KeyError, IndexError, AttributeError, TypeError) as e:  # a layout no check above foresaw
        raise CheckpointImportError(f"{path}: not a {kind} checkpoint GAN Studio can read: reading its keys failed "
                                    f"({type(e).__name__}: {e}); its first keys: "
                                    f"{few(state) if isinstance(state, dict) else type(state).__name__}") from None
    card.setdefault("training", {})["imported_from"] = path.name
    return save_model(out, tensors, card)
