"""The model file: one ``.safetensors`` file holding a generator's weights and its model card
(JSON under the metadata key ``gan_studio``). Loading never unpickles: a pickle-based
checkpoint is refused with a pointer to ``gan-trainer import``."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save as save_bytes

from trainer.rundir import atomic_write

CARD_KEY = "gan_studio"
FORMAT_VERSION = 1
PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")


class ModelFileError(ValueError):
    """A file that is not a usable GAN Studio model file; the message says why and what to do."""


INT8_SCALE = ":int8_scale"  # suffix of the key that holds an int8 tensor's per-channel scales
INT8_MIN_NUMEL = 1024  # smaller floating tensors (biases, norms, statistics) stay float16


def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 with one float32 scale per output channel, w ~= q * scale. The channel axis
    is the first longer than 1 (dim 0 of a convolution; dim 1 of StyleGAN's (1, out, in, k, k)
    modulated weights); the scale keeps w's rank, so it broadcasts."""
    w = w.detach().float()
    axis = next((i for i, n in enumerate(w.shape) if n > 1), 0)
    scale = w.abs().amax(dim=[i for i in range(w.dim()) if i != axis], keepdim=True).clamp_min(1e-30) / 127
    return torch.round(w / scale).clamp_(-127, 127).to(torch.int8), scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.float()


def save_model(path, tensors: dict[str, torch.Tensor], card: dict, dtype: torch.dtype | None = None) -> Path:
    """Write ``tensors`` and ``card`` atomically. ``dtype`` float16 or bfloat16 stores floating
    tensors smaller; int8 stores each weight of at least ``INT8_MIN_NUMEL`` values as int8 with
    a scale per output channel (``KEY:int8_scale``) and the rest as float16, about a quarter of
    float32. All come back as float32 on load."""
    out = {}
    for k, v in tensors.items():
        v = v.detach().to("cpu")
        if k.endswith(INT8_SCALE):
            raise ValueError(f"tensor name {k!r} ends with the reserved suffix {INT8_SCALE!r}")
        if dtype == torch.int8 and v.is_floating_point() and v.dim() >= 2 and v.numel() >= INT8_MIN_NUMEL:
            v, out[k + INT8_SCALE] = quantize_int8(v)
        elif dtype is not None and v.is_floating_point():
            v = v.to(torch.float16 if dtype == torch.int8 else dtype)
        out[k] = v.contiguous().clone()
    card = {"format": FORMAT_VERSION, **card}
    if dtype is not None:
        card["stored_dtype"] = str(dtype).replace("torch.", "")
    path = Path(path)
    atomic_write(path, save_bytes(out, metadata={CARD_KEY: json.dumps(card)}))
    return path


def _sniff(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 0 < n < 100_000_000 and head[8:9] == b"{":
            return "safetensors"
    if head[:2] == b"PK":
        return "zip"  # torch.save's zip format (a pickle inside)
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


def read_card(path) -> dict:
    """The model card alone (reads only the file's header)."""
    path = _check(path)
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFileError(f"{path}: truncated or corrupt model file (its header is unreadable)") from None
    meta = header.get("__metadata__") or {}
    if CARD_KEY not in meta:
        raise ModelFileError(f"{path}: a safetensors file without a GAN Studio model card "
                             "(import reference checkpoints with `gan-trainer import`)")
    try:
        return json.loads(meta[CARD_KEY])
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: the model card is not valid JSON") from None


def _check(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    kind = _sniff(path)
    if kind in ("zip", "pickle") or (kind != "safetensors" and path.suffix.lower() in PICKLE_SUFFIXES):
        raise ModelFileError(
            f"{path}: a PyTorch pickle checkpoint, which GAN Studio never loads directly (unpickling can "
            f"run code). Convert it first: gan-trainer import {path} -o model.safetensors")
    if kind != "safetensors":
        raise ModelFileError(f"{path}: not a model file (expected a .safetensors file written by GAN Studio)")
    return path


def load_model(path, device="cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, card) of a model file; floating tensors come back as float32."""
    path = _check(path)
    card = read_card(path)
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as e:
        raise ModelFileError(f"{path}: corrupt safetensors file ({e})") from None
    scales = {k[:-len(INT8_SCALE)]: tensors.pop(k) for k in [k for k in tensors if k.endswith(INT8_SCALE)]}
    for k, scale in scales.items():
        q = tensors.get(k)
        if (q is None or q.dtype != torch.int8 or scale.dim() != q.dim() or not scale.is_floating_point()
                or any(a not in (1, b) for a, b in zip(scale.shape, q.shape))
                or sum(a > 1 for a in scale.shape) > 1 or not torch.isfinite(scale).all()):
            raise ModelFileError(f"{path}: corrupt model file: the int8 scales {k}{INT8_SCALE} do not match "
                                 f"an int8 tensor {k} (re-export the model)")
        tensors[k] = dequantize_int8(q, scale)
    unscaled = [k for k, v in tensors.items() if v.dtype == torch.int8]
    if unscaled:
        raise ModelFileError(f"{path}: corrupt model file: int8 tensor {unscaled[0]} has no scales "
                             "(re-export the model)")
    tensors = {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}
    return tensors, card


def subdict(tensors: dict, prefix: str) -> dict:
    """The entries under ``prefix.`` with the prefix removed (``G.``, ``G_A.``, ...)."""
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def load_strict(module: torch.nn.Module, state: dict, what: str) -> None:
    """``load_state_dict(strict=True)`` with an error that lists missing and unexpected keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(own[k].shape)})"
             for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        def show(items):
            return ", ".join(items[:6]) + (f" and {len(items) - 6} more" if len(items) > 6 else "")
        parts = []
        if missing:
            parts.append(f"missing keys: {show(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {show(unexpected)}")
        if wrong:
            parts.append(f"wrong shapes: {show(wrong)}")
        raise ModelFileError(f"{what} does not match its network; " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


def format_card(card: dict) -> str:
    """The card as readable lines for ``gan-trainer inspect``."""
    if card.get("kind") == "evaluator":
        return format_evaluator_card(card)
    lines = []
    for key in ("method", "task", "image_size", "channels", "direction", "directions", "domains", "classes", "preset"):
        if key in card and card[key] not in (None, "", []):
            lines.append(f"{key:12s} {card[key]}")
    for name, net in card.get("nets", {}).items():
        lines.append(f"{'net ' + name:12s} {net['name']}({', '.join(f'{k}={v}' for k, v in net['args'].items())})")
    for section in ("training", "metrics", "inference"):
        if card.get(section):
            lines.append(f"{section}:")
            lines += [f"  {k:22s} {v}" for k, v in card[section].items()]
    if card.get("eval"):
        lines.append(f"eval ({card['eval'].get('data', '')}, {card['eval'].get('date', '')}):")
        lines += [f"  {k:34s} {v:.4f}" if isinstance(v, float) else f"  {k:34s} {v}"
                  for k, v in flatten(card["eval"].get("metrics", {})).items()]
    return "\n".join(lines)


def format_evaluator_card(card: dict) -> str:
    """An evaluator's card: what it scores, how it was trained, its held-out accuracy."""
    net = card.get("net", {})
    lines = [f"{'kind':12s} evaluator of {card.get('dataset', '?')}",
             f"{'notes':12s} {card.get('notes', '')}",
             f"{'input_size':12s} {card.get('input_size', '?')}",
             f"{'heads':12s} " + ", ".join(f"{k}({v})" for k, v in net.get("heads", {}).items())]
    for section in ("trained", "held_out", "held_out_nuisance"):
        if card.get(section):
            lines.append(f"{section}:")
            lines += [f"  {k:22s} {v:.4f}" if isinstance(v, float) and section != "trained" else f"  {k:22s} {v}"
                      for k, v in card[section].items()]
    return "\n".join(lines)


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested metrics as one level: ``{"AtoB": {"l1": x}}`` -> ``{"AtoB.l1": x}``."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
