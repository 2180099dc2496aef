"""Reading reference checkpoints (``gan-trainer import``): the shared helpers of the per-format
readers (:mod:`.junyanz`, :mod:`.stargan`, :mod:`.rosinality`) and :class:`ImportKind`, the import
hook a method declares (``Method.import_kinds``). The command itself, which picks the kind, is
:func:`trainer.conversion.import_checkpoint`.

Checkpoints are read with ``torch.load(weights_only=True, map_location="cpu")``
(:func:`safe_load`): tensors and plain containers only, never arbitrary objects. A file that needs
more than that is refused. The architecture is inferred by matching the checkpoint's keys and
shapes against candidate networks built on the meta device (no memory, no time); a refusal names
the key or shape that does not fit (:class:`~trainer.errors.CheckpointImportError`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from trainer.errors import CheckpointImportError
from trainer.nets.weights import safe_load

__all__ = ["ImportKind", "CheckpointImportError", "safe_load", "clean_state_dict", "few", "is_tensor_dict",
           "as_state_dict", "require", "check_channels", "shapes", "mismatch", "matches", "best_match",
           "discriminator_hint"]


@dataclass(frozen=True)
class ImportKind:
    """One ``--kind`` of ``gan-trainer import``, declared by the method that owns the models it makes.

    ``read(state, path, **options) -> (tensors, card)`` builds the model file's tensors and card
    (the card without ``method``: the importer fills in the owning method's name) and raises
    :class:`~trainer.errors.CheckpointImportError` naming the key or shape that does not fit.
    ``state`` is the checkpoint's cleaned state dict of tensors, or with ``raw`` the loaded object
    itself (a file that keeps its generator under a key, with other objects beside it).
    ``detect(state) -> bool`` recognises the kind for ``--kind auto`` (None: never auto-detected);
    ``signature`` says in a few words what it looks for (for the refusal of an unrecognised file);
    ``options``: the import options it takes (``direction``, ``domains``, ``exclusive``,
    ``image_size``); ``help``: one line for ``--help``. Calling it calls ``read``."""
    read: Callable
    help: str
    options: frozenset = frozenset()
    detect: Callable | None = None
    signature: str = ""
    raw: bool = False

    def __call__(self, state, path, **options):
        return self.read(state, path, **options)


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
        raise CheckpointImportError(f"{path}: not a state dict of tensors: key {key!r} holds a "
                                    f"{type(value).__name__} (keys: {few(obj)})")
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


def discriminator_hint(state: dict) -> str:
    """A hint for a refused file that looks like a discriminator (else "")."""
    keys = set(state)
    if "model.0.weight" in keys and "model.1.weight" not in keys or "net.0.weight" in keys \
            or "conv1.weight" in keys and "main.0.weight" in keys or any(k.startswith("convs.0.0.") for k in keys):
        return "; this looks like a discriminator: import the generator (…_net_G.pth, …-G.ckpt, g_ema)"
    return ""
