"""Reference checkpoints in and out: ``gan-trainer import`` (:func:`import_checkpoint`) and
``gan-trainer export --format`` (:func:`export_reference`). Each method declares the kinds it
imports (``Method.import_kinds``) and the formats it writes (``Method.export_formats``); this
module picks by the kind asked for (or detected) and by the model's method."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from trainer import registry
from trainer.errors import CheckpointImportError, ExportRefused
from trainer.exporters import ReferenceExport, write
from trainer.importers import as_state_dict, discriminator_hint, few, safe_load
from trainer.modelfile import load_model, save_model
from trainer.rundir import RunDir
from trainer.run import export_run

__all__ = ["KINDS", "FORMATS", "kinds", "import_checkpoint", "load_source", "plan", "export_reference",
           "CheckpointImportError", "ExportRefused"]


def kinds() -> dict[str, str]:
    """``--kind`` name -> one line of help, ``auto`` first, then each method's kinds."""
    return {"auto": "detect the kind from the checkpoint's keys (default)",
            **{k: reader.help for k, (_, reader) in registry.import_kinds().items()}}


#: ``--kind`` values; ``auto`` detects the kind from the keys
KINDS = tuple(kinds())
#: ``--format`` values
FORMATS = tuple(registry.export_formats())


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def import_checkpoint(path, out, kind: str = "auto", **options) -> Path:
    """Convert the reference checkpoint ``path`` into a model file at ``out`` (returned); ``kind``
    (:data:`KINDS`) auto-detects from the keys. ``options``: ``direction`` (pix2pix), ``domains``,
    ``exclusive`` (True: the domains are one exclusive category; a list: those domains are) and
    ``image_size`` (StarGAN); an option the kind does not take is refused. Raises
    :class:`~trainer.errors.CheckpointImportError` naming the key or shape that does not fit, a
    tensor that is not finite, or ``out`` being ``path`` itself."""
    found = registry.import_kinds()
    path, out = Path(path), Path(out)
    if out.resolve() == path.resolve():
        raise CheckpointImportError(f"-o {out}: the checkpoint being imported; name a new .safetensors file "
                                    "(nothing written)")
    if kind != "auto" and kind not in found:
        raise CheckpointImportError(f"unknown checkpoint kind {kind!r}; known: {', '.join(('auto', *found))}")
    options = {k: v for k, v in options.items() if v is not None and v is not False}
    obj = safe_load(path, allowed_globals=[argparse.Namespace])  # rosinality files carry their args
    if kind == "auto":  # kinds that read the loaded object itself come first: it may hold more than tensors
        kind = next((k for k, (_, r) in found.items() if r.raw and r.detect is not None and r.detect(obj)), "auto")
    if kind != "auto" and found[kind][1].raw:
        state = obj
    else:
        try:
            state = as_state_dict(obj, path)
        except CheckpointImportError as e:
            raw = [k for k, (_, r) in found.items() if r.raw and r.detect is not None and r.detect(obj)]
            if not raw:
                raise
            what = found[raw[0]][1].help.split(" (")[0]
            raise CheckpointImportError(f"{e} (a {what}: import it with --kind {raw[0]} or auto)") from None
    if kind == "auto":
        kind = next((k for k, (_, r) in found.items() if not r.raw and r.detect is not None and r.detect(state)), None)
        if kind is None:
            looks = _listed([r.signature for _, r in found.values() if r.signature])
            raise CheckpointImportError(
                f"{path}: unrecognised checkpoint: none of the keys of {looks}; its first keys: "
                f"{few(state)}{discriminator_hint(state)}")
    method, reader = found[kind]
    unused = sorted(set(options) - set(reader.options))
    if unused:
        names = ", ".join("--" + u.replace("_", "-") for u in unused)
        raise CheckpointImportError(f"{path}: {names} does not apply to a {kind} checkpoint")
    try:
        tensors, card = reader(state, path, **options)
    except (KeyError, IndexError, AttributeError, TypeError) as e:  # a layout no check above foresaw
        raise CheckpointImportError(f"{path}: not a {kind} checkpoint GAN Studio can read: reading its keys failed "
                                    f"({type(e).__name__}: {e}); its first keys: "
                                    f"{few(state) if isinstance(state, dict) else type(state).__name__}") from None
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:  # a diverged or damaged training: its translations would be black
        raise CheckpointImportError(f"{path}: {len(bad)} of its {len(tensors)} tensors hold NaN or infinite values "
                                    f"(first: {bad[0]}): a diverged or damaged checkpoint; nothing written")
    card = {"method": method.name, **card}
    card.setdefault("training", {})["imported_from"] = path.name
    return save_model(out, tensors, card)


def load_source(path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, card) of a model file, or of a run directory's latest checkpoint."""
    path = Path(path)
    if path.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            model = export_run(RunDir(path), Path(tmp) / "model.safetensors")
            return load_model(model)
    return load_model(path)


def plan(tensors: dict, card: dict, fmt: str, out) -> ReferenceExport:
    """The files of ``fmt`` for a model (no values are read: meta tensors work): its method's
    planner for that format. Raises ValueError for an unknown format and
    :class:`~trainer.errors.ExportRefused` for a model the format cannot hold."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown reference format {fmt!r}; choose one of {', '.join(FORMATS)}")
    method = card.get("method")
    try:
        formats = registry.method_of_card(card).export_formats
    except ValueError:
        formats = {}
    if fmt not in formats:
        fits = list(formats)
        hint = f"; its format is {fits[0]}" if fits else \
            "; no reference format holds it (gan-trainer export MODEL --onnx FILE exports any generator)"
        raise ExportRefused(f"a {method} model cannot be written in the {fmt} format{hint}")
    return formats[fmt](tensors, card, Path(out))


def export_reference(source, out, fmt: str) -> ReferenceExport:
    """Write ``source`` (a model file or run directory) as ``fmt`` reference checkpoint(s) at ``out``;
    the returned export's ``notes`` are the note files it wrote (an existing one is left alone)."""
    tensors, card = load_source(source)
    return write(plan(tensors, card, fmt, out))
