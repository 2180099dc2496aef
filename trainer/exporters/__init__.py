"""Writing reference checkpoints (``gan-trainer export --format``): the shared parts of the
per-format planners, which a method declares in ``Method.export_formats``:

- :mod:`.junyanz`: junyanz/pytorch-CycleGAN-and-pix2pix ``latest_net_G.pth`` (a U-Net generator) or
  ``latest_net_G_A.pth`` and ``latest_net_G_B.pth`` (ResNet generators), plain state dicts;
- :mod:`.stargan`: yunjey/stargan ``200000-G.ckpt``, a plain state dict;
- :mod:`.rosinality`: rosinality/stylegan2-pytorch ``.pt``, ``{"g_ema": state_dict, "latent_avg": w}``.

GAN Studio's networks are the reference networks module for module, so the state dicts are ours
unchanged, with the reference's keys (``noises.noise_N`` included). A model whose generator the
reference cannot build (a latent input, a residual ResNet generator, StarGAN's attention mask, a
StyleGAN channel table of its own, ...) is refused with the reason
(:class:`~trainer.errors.ExportRefused`). Each export also says how the reference builds the
network (its command-line options). The command, which picks the planner by the model's method,
is :func:`trainer.conversion.export_reference`.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import torch

from trainer.errors import ExportRefused
from trainer.modelfile import load_strict, subdict
from trainer.nets import build
from trainer.rundir import atomic_write

__all__ = ["ExportRefused", "ReferenceExport", "net_state", "write"]


@dataclass
class ReferenceExport:
    """What an export writes: ``files`` (path -> object for ``torch.save``), ``notes`` (text files
    written only where none exists yet, such as junyanz's ``train_opt.txt``) and ``options`` (how
    the reference code builds the network, for the user)."""
    files: dict[Path, object]
    notes: dict[Path, str] = field(default_factory=dict)
    options: str = ""


def net_state(tensors: dict, card: dict, name: str) -> dict:
    """The state dict of net ``name`` (``G``, ``G_A``, ...) in its network's own key order, checked
    key for key and shape for shape against that network (built on the meta device); a
    :class:`~trainer.errors.ModelFileError` names a key or shape that does not fit."""
    spec = card["nets"][name]
    with torch.device("meta"):
        net = build(spec["name"], **spec["args"])
    state = subdict(tensors, name)
    load_strict(net, {k: v.to("meta") for k, v in state.items()}, f"model file net {name}")  # keys, shapes
    return {k: state[k].detach().contiguous() for k in net.state_dict()}


def write(export: ReferenceExport) -> ReferenceExport:
    """Write ``export``'s files (atomically) and those of its notes whose file does not exist yet
    (never over a training's own train_opt.txt); returns it with ``notes`` = the notes written."""
    for path, obj in export.files.items():
        buf = io.BytesIO()
        torch.save(obj, buf)
        atomic_write(path, buf.getvalue())
    written = {}
    for path, text in export.notes.items():
        if not path.exists():
            atomic_write(path, text)
            written[path] = text
    export.notes = written
    return export
