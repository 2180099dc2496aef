"""``gan-trainer export MODEL --onnx FILE``: a model's generator(s) as ONNX graphs, through
``torch.onnx.export(..., dynamo=True)``, with the controls that are tensors as graph inputs. What
the graphs of a model are is its method's (``Translator.onnx_graphs``: an ``image`` (N, C, H, W)
in [-1, 1] for a translation; latents, target vectors and scalars where the method has them; a
pair of directions gives one file per direction); this module writes them.

The output ``output`` is (N, 3, H', W') in [-1, 1]. The batch is dynamic everywhere (1 to
:data:`MAX_BATCH`); height and width are dynamic wherever the network is fully convolutional, in
the multiples it needs, up to :data:`MAX_SIDE`. Test-time batch statistics become per-image
statistics without dropout (a graph is deterministic). The model's card is stored in the graph's
metadata (``gan_studio``), with a line of documentation per input (``inputs``) and what a graph
needs to make its inputs (a per-object BicycleGAN's ``region_colours``, its bank of object codes
as JSON rows).
"""
from __future__ import annotations

import inspect
import json
import os
import tempfile
import warnings
from pathlib import Path

import torch

from trainer.conversion import load_source
from trainer.errors import OnnxExportError
from trainer.exporters.onnx_graphs import Graph, ImageGraph, example_side, image_graph, per_image_norm, swap_modules
from trainer.registry import method_of_card
from trainer.translator import Translator

__all__ = ["export_onnx", "graphs", "write_graph", "dynamic_shapes", "output_paths", "OnnxExportError", "Graph",
           "ImageGraph", "example_side", "image_graph", "per_image_norm", "swap_modules", "INSTALL_HINT"]

INSTALL_HINT = "ONNX export needs the onnx and onnxscript packages: pip install 'gan-studio[onnx]'"
MAX_SIDE = 8192  # the largest height or width a graph accepts
MAX_BATCH = 4096


def graphs(t: Translator, latent: str = "z", mode: str | None = None, noise_mode: str = "stored",
           noise_seed: int = 0) -> list[Graph]:
    """The graphs of a loaded translator (its method's ``Translator.onnx_graphs``; its nets are
    copied, the translator is left as it was)."""
    return t.onnx_graphs(latent=latent, mode=mode, noise_mode=noise_mode, noise_seed=noise_seed)


def dynamic_shapes(g: Graph) -> dict:
    """torch.export dims for ``g.dynamic``, keyed by the forward's argument names."""
    params = list(inspect.signature(g.module.forward).parameters)[:len(g.names)]
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)  # one batch size shared by every input
    out = {}
    for param, name in zip(params, g.names):
        axes = g.dynamic.get(name)
        if not axes:
            out[param] = None
            continue
        out[param] = {}
        for axis, multiple in axes.items():
            if axis == 0:
                out[param][axis] = batch
            else:
                dim = torch.export.Dim(f"{name}_{'h' if axis == 2 else 'w'}", min=1, max=max(1, MAX_SIDE // multiple))
                out[param][axis] = dim * multiple if multiple > 1 else dim
    return out


def output_paths(out: Path, graphs_: list[Graph]) -> list[Path]:
    return [out if not g.suffix else out.with_name(f"{out.stem}_{g.suffix}{out.suffix or '.onnx'}")
            for g in graphs_]


def write_graph(g: Graph, path: Path, card: dict) -> None:
    try:
        import onnx
    except ImportError:
        raise OnnxExportError(INSTALL_HINT) from None
    g.module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        # StarGAN's attention generator keeps its last mask as an attribute (for the training loss);
        # the exporter names a dimension shared by several inputs once, and says so
        warnings.filterwarnings("ignore", message=".*last_attention was assigned during export")
        warnings.filterwarnings("ignore", message=".*axis name: .* will not be used")
        program = torch.onnx.export(g.module, g.example, dynamo=True, verbose=False, input_names=g.names,
                                    output_names=["output"], dynamic_shapes=dynamic_shapes(g))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        program.save(tmp)
        model = onnx.load(tmp)
        meta = {"gan_studio": json.dumps(card), "inputs": json.dumps({k: v for k, v in g.doc.items()}),
                "output": "(N, 3, H', W') in [-1, 1]", **g.metadata}
        onnx.helper.set_model_props(model, meta)
        onnx.save(model, tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp's 0600 would keep the file from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_onnx(source, out, latent: str = "z", mode: str | None = None, noise_mode: str = "stored",
                noise_seed: int = 0) -> list[tuple[Path, dict]]:
    """Write ``source`` (a model file or run directory) as ONNX at ``out`` (for a CycleGAN pair,
    ``OUT_AtoB.onnx`` and ``OUT_BtoA.onnx``); returns (path, input documentation) per file."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise OnnxExportError(INSTALL_HINT) from None
    if tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2]) < (2, 6):
        raise OnnxExportError(f"ONNX export needs torch 2.6 or later (the dynamo exporter); this is "
                              f"{torch.__version__}")
    tensors, card = load_source(source)
    try:
        method = method_of_card(card)
    except ValueError:
        raise ValueError(f"{source}: method {card.get('method')!r} has no generator to export") from None
    t = method.Translator(card, tensors, "cpu")
    gs = graphs(t, latent=latent, mode=mode, noise_mode=noise_mode, noise_seed=noise_seed)
    paths = output_paths(Path(out), gs)
    for g, path in zip(gs, paths):
        write_graph(g, path, card)
    return [(p, g.doc) for p, g in zip(paths, gs)]
