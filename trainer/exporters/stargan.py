"""StarGAN models as yunjey/stargan generator checkpoints (``200000-G.ckpt``): a plain state dict,
instance-norm running statistics included, as the reference's Generator holds them."""
from __future__ import annotations

from pathlib import Path

from trainer.exporters import ExportRefused, ReferenceExport, net_state


def plan(tensors: dict, card: dict, out: Path, import_kind: str) -> ReferenceExport:
    """The generator as ``out``, with the options of yunjey's ``main.py --mode test`` and the
    ``gan-trainer import --kind import_kind`` command that brings it back at its size; raises
    :class:`~trainer.errors.ExportRefused` for a generator the reference cannot build."""
    spec = card["nets"]["G"]
    a = spec["args"]
    if spec["name"] != "stargan_G":
        raise ExportRefused(f"refused: generator {spec['name']!r} has no equivalent in yunjey/stargan")
    if a.get("attention"):
        raise ExportRefused("refused: a StarGAN generator with an attention mask (GANimation: output = A * input "
                            "+ (1 - A) * colour); yunjey/stargan's Generator has no attention layer and outputs the "
                            "colour image alone. Export it to ONNX instead (--onnx FILE), or keep the model file")
    domains, classes = list(card.get("domains", [])), list(card.get("classes", []))
    size = int(card.get("image_size", 128))
    opts = [f"--g_conv_dim {a.get('conv_dim', 64)}", f"--g_repeat_num {a.get('repeat_num', 6)}",
            f"--image_size {size}"]
    if classes:
        opts.insert(0, f"--dataset Both --c_dim {len(domains)} --c2_dim {len(classes)}")
    else:
        opts.insert(0, f"--c_dim {a.get('c_dim', 5)}")
    if domains:
        opts.append("--selected_attrs " + " ".join(domains))
    back = f"; to import it back: gan-trainer import {out.name} --kind {import_kind} --image-size {size}" + (
        " --domains " + " ".join(domains) if domains else "")
    return ReferenceExport({out: net_state(tensors, card, "G")}, {},
                           "python main.py --mode test " + " ".join(opts) + back)
