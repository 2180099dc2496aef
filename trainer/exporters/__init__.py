"""``gan-trainer export --format``: a GAN Studio model as the reference implementation's checkpoint.

- ``junyanz``: junyanz/pytorch-CycleGAN-and-pix2pix ``latest_net_G.pth`` (pix2pix) or
  ``latest_net_G_A.pth`` and ``latest_net_G_B.pth`` (CycleGAN), plain state dicts;
- ``stargan``: yunjey/stargan ``200000-G.ckpt``, a plain state dict;
- ``rosinality``: rosinality/stylegan2-pytorch ``.pt``, ``{"g_ema": state_dict, "latent_avg": w}``.

GAN Studio's networks are the reference networks module for module, so the state dicts are ours
unchanged, with the reference's keys (``noises.noise_N`` included). A model whose generator the
reference cannot build (BicycleGAN's latent input, a residual CycleGAN generator, StarGAN's
attention mask, a StyleGAN channel table of its own, ...) is refused with the reason. Each
export also says how the reference builds the network (its command-line options).
"""
from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from trainer.modelfile import load_model
from trainer.rundir import atomic_write

FORMATS = ("junyanz", "stargan", "rosinality")
FORMAT_METHODS = {"junyanz": ("pix2pix", "cyclegan"), "stargan": ("stargan",), "rosinality": ("stylegan",)}


class ExportRefused(ValueError):
    """A model that has no equivalent in the requested reference format; the message says why."""


@dataclass
class ReferenceExport:
    """What an export writes: ``files`` (path -> object for ``torch.save``), ``notes`` (text files
    written only where none exists yet, such as junyanz's ``train_opt.txt``) and ``options`` (how
    the reference code builds the network, for the user)."""
    files: dict[Path, object]
    notes: dict[Path, str] = field(default_factory=dict)
    options: str = ""


def load_source(path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, card) of a model file, or of a run directory's latest checkpoint."""
    path = Path(path)
    if path.is_dir():
        from trainer.rundir import RunDir
        from trainer.run import export_run
        with tempfile.TemporaryDirectory() as tmp:
            model = export_run(RunDir(path), Path(tmp) / "model.safetensors")
            return load_model(model)
    return load_model(path)


def plan(tensors: dict, card: dict, fmt: str, out) -> ReferenceExport:
    """The files of ``fmt`` for a model (no values are read: meta tensors work), or ExportRefused."""
    from trainer.exporters import junyanz, rosinality, stargan

    if fmt not in FORMATS:
        raise ValueError(f"unknown reference format {fmt!r}; choose one of {', '.join(FORMATS)}")
    method = card.get("method")
    if method not in FORMAT_METHODS[fmt]:
        fits = [f for f, methods in FORMAT_METHODS.items() if method in methods]
        hint = f"; its format is {fits[0]}" if fits else \
            "; no reference format holds it (gan-trainer export MODEL --onnx FILE exports any generator)"
        raise ExportRefused(f"a {method} model cannot be written in the {fmt} format{hint}")
    planner = {"junyanz": junyanz.plan, "stargan": stargan.plan, "rosinality": rosinality.plan}[fmt]
    return planner(tensors, card, Path(out))


def net_state(tensors: dict, card: dict, name: str) -> dict:
    """The state dict of net ``name`` (``G``, ``G_A``, ...) in its network's own key order, checked
    key for key and shape for shape against that network (built on the meta device)."""
    from trainer.modelfile import load_strict, subdict
    from trainer.nets import build
    spec = card["nets"][name]
    with torch.device("meta"):
        net = build(spec["name"], **spec["args"])
    state = subdict(tensors, name)
    load_strict(net, {k: v.to("meta") for k, v in state.items()}, f"model file net {name}")  # keys, shapes
    return {k: state[k].detach().contiguous() for k in net.state_dict()}


def export_reference(source, out, fmt: str) -> ReferenceExport:
    """Write ``source`` (a model file or run directory) as ``fmt`` reference checkpoint(s) at ``out``;
    the returned export's ``notes`` are the note files it wrote (an existing one is left alone)."""
    tensors, card = load_source(source)
    export = plan(tensors, card, fmt, out)
    for path, obj in export.files.items():
        buf = io.BytesIO()
        torch.save(obj, buf)
        atomic_write(path, buf.getvalue())
    written = {}
    for path, text in export.notes.items():
        if not path.exists():  # never over a training's own train_opt.txt
            atomic_write(path, text)
            written[path] = text
    export.notes = written
    return export
