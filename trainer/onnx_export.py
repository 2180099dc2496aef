"""``gan-trainer export MODEL --onnx FILE``: a model's generator(s) as ONNX graphs, through
``torch.onnx.export(..., dynamo=True)``, with the controls that are tensors as graph inputs:

- pix2pix, CycleGAN, SRGAN, fast style: ``image`` (N, C, H, W) in [-1, 1];
- BicycleGAN: ``image`` and ``z`` (N, nz), standard-normal draws (the model's fitted Gaussian,
  when it has one, is applied in the graph, as the studio does with a seed);
- StarGAN: ``image`` and ``c`` (N, label size), the target domain vector;
- StyleGAN: ``z`` (N, style_dim) or, with ``latent="w"``, ``w`` (N, n_latent, style_dim), and
  scalars ``psi`` (truncation towards the mean w) and ``noise_strength``; the noise maps are the
  model's stored ones (or the seeded ``const`` maps, or none), fixed in the graph;
- DCGAN / WGAN-GP: ``z`` (N, nz) and, when conditional, ``labels`` (N,) int64.

The output ``output`` is (N, 3, H', W') in [-1, 1]. The batch is dynamic everywhere; height and
width are dynamic wherever the network is fully convolutional (in the multiples it needs: 2 **
num_downs for a U-Net, 4 for the ResNet, StarGAN and fast-style networks). pix2pix's test modes
paper and deterministic become per-image statistics without dropout (a graph is deterministic);
eval uses the running statistics. A CycleGAN pair gives one file per direction.
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from trainer import inference
from trainer.inference import input_channels, match_channels, set_norm_mode

INSTALL_HINT = "ONNX export needs the onnx and onnxscript packages: pip install 'gan-studio[onnx]'"


class OnnxExportError(ValueError):
    """An ONNX export that cannot be done here (packages missing, an option the model lacks)."""
MAX_SIDE = 8192  # the largest height or width a graph accepts
MAX_BATCH = 4096


@dataclass
class Graph:
    """One ONNX graph to write: the module, example inputs, their names, dynamic axes as
    ``{input: {axis: multiple}}`` (0 = the batch) and a line of documentation per input."""
    suffix: str
    module: nn.Module
    example: tuple
    names: list[str]
    dynamic: dict[str, dict[int, int]]
    doc: dict[str, str] = field(default_factory=dict)


def swap_modules(net: nn.Module, pick, make) -> nn.Module:
    """Replace every submodule ``m`` with ``pick(m)`` true by ``make(m)``, in place."""
    for name, m in list(net.named_modules()):
        for child_name, child in list(m.named_children()):
            if pick(child):
                setattr(m, child_name, make(child))
    return net


def per_image_norm(norm: nn.Module) -> nn.InstanceNorm2d:
    """A norm layer's affine parameters on each image's own statistics (batch statistics of a
    batch of one, as the studio runs pix2pix and StarGAN), without running statistics."""
    out = nn.InstanceNorm2d(norm.num_features, eps=norm.eps, affine=norm.affine, track_running_stats=False)
    if norm.affine:
        out.weight, out.bias = copy.deepcopy(norm.weight), copy.deepcopy(norm.bias)
    return out


class ImageGraph(nn.Module):
    """``image`` through ``nets`` in turn, channels matched as the studio matches them."""

    def __init__(self, *nets):
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, image):
        x = image
        for net in self.nets:
            x = net(match_channels(x, input_channels(net)))
        return match_channels(x, 3).clamp(-1, 1)


class CodeGraph(nn.Module):
    """BicycleGAN: ``image`` and standard-normal ``z``, through the fitted Gaussian if any."""

    def __init__(self, G, fit):
        super().__init__()
        self.G, self.fitted = G, fit is not None
        if fit is not None:
            self.register_buffer("mean", fit[0].detach().cpu().clone())
            self.register_buffer("tril_t", fit[1].detach().cpu().T.contiguous())

    def forward(self, image, z):
        code = self.mean + z @ self.tril_t if self.fitted else z
        return match_channels(self.G(match_channels(image, input_channels(self.G)), code), 3).clamp(-1, 1)


class StarGraph(nn.Module):
    def __init__(self, G):
        super().__init__()
        self.G = G

    def forward(self, image, c):
        return self.G(image, c).clamp(-1, 1)


class StyleGraph(nn.Module):
    """StyleGAN from ``z`` (mapped, the same w for every layer) or per-layer ``w``; truncation
    ``psi`` towards the mean w; fixed noise maps times ``noise_strength``."""

    def __init__(self, G, mean_w, noise, latent):
        super().__init__()
        self.G, self.latent = G, latent
        self.register_buffer("mean_w", mean_w.detach().cpu().reshape(1, 1, -1).clone())
        for i, m in enumerate(noise):
            self.register_buffer(f"noise_{i}", m.detach().cpu().clone())
        self.n_noise = len(noise)

    def forward(self, lat, psi, noise_strength):
        if self.latent == "z":
            w = self.G.mapping(lat).unsqueeze(1).expand(-1, self.G.n_latent, -1)
        else:
            w = lat
        w = self.mean_w + psi * (w - self.mean_w)
        noise = [getattr(self, f"noise_{i}") * noise_strength for i in range(self.n_noise)]
        return self.G.synthesis(w, noise).clamp(-1, 1)


class SampleGraph(nn.Module):
    def __init__(self, G, conditional):
        super().__init__()
        self.G, self.conditional = G, conditional

    def forward(self, z, labels=None):
        return self.G(z, labels if self.conditional else None).clamp(-1, 1)


def example_side(multiple: int, image_size: int) -> int:
    """An example height: a multiple of ``multiple``, at least two of them (a dimension of size 1
    would be specialised by the exporter)."""
    return multiple * max(2, image_size // multiple)


def image_graph(suffix, module, channels, multiple, size, doc, extra=(), extra_names=(), extra_dynamic=None):
    side = example_side(multiple, size)
    example = (torch.zeros(2, channels, side, side).uniform_(-1, 1), *extra)
    dynamic = {"image": {0: 1, 2: multiple, 3: multiple}, **(extra_dynamic or {})}
    return Graph(suffix, module, example, ["image", *extra_names], dynamic,
                 {"image": f"(N, {channels}, H, W) in [-1, 1]; H and W multiples of {multiple}", **doc})


def graphs(t: inference.Translator, latent: str = "z", mode: str | None = None, noise_mode: str = "stored",
           noise_seed: int = 0) -> list[Graph]:
    """The graphs of a loaded translator (its nets are copied; the translator is left as it was)."""
    card, method = t.card, t.card.get("method")
    size = t.image_size
    if method == "pix2pix":
        mode = mode or card.get("inference", {}).get("mode", "paper")
        if mode not in inference.TEST_MODES:
            raise ValueError(f"mode {mode!r}: choose one of {', '.join(inference.TEST_MODES)}")
        G = copy.deepcopy(t.G)
        if mode == "eval":
            set_norm_mode(G, "eval")
        else:
            swap_modules(G, lambda m: isinstance(m, nn.modules.batchnorm._BatchNorm), per_image_norm)
        G.eval()
        spec = card["nets"]["G"]
        multiple = 2 ** int(spec["args"].get("num_downs", 8)) if spec["name"] == "unet" else 4
        channels = input_channels(t.G)
        doc = {"mode": "eval (running statistics)" if mode == "eval" else
               "per-image statistics, no dropout (the studio's deterministic mode)"}
        if t.nz:
            fit = "mapped through the model's fitted Gaussian" if t.latent_fit is not None else "the code itself"
            return [image_graph("", CodeGraph(G, t.latent_fit), channels, multiple, size,
                                {**doc, "z": f"(N, {t.nz}) standard-normal draws ({fit})"},
                                (torch.randn(2, t.nz),), ("z",), {"z": {0: 1}})]
        return [image_graph("", ImageGraph(G), channels, multiple, size, doc)]
    if method == "cyclegan":
        out = []
        for direction, name in (("AtoB", "G_A"), ("BtoA", "G_B")):
            if name in t.G:
                G = copy.deepcopy(t.G[name]).eval()
                out.append(image_graph(direction if len(t.G) > 1 else "", ImageGraph(G), input_channels(G), 4,
                                       size, {"direction": direction}))
        return out
    if method == "stargan":
        G = swap_modules(copy.deepcopy(t.G), lambda m: isinstance(m, nn.InstanceNorm2d), per_image_norm).eval()
        label = t.label(t.defaults())
        layout = ", ".join(t.domains) + (f", one-hot of {', '.join(t.classes)}, mask [attributes, class]"
                                         if t.classes else "")
        c = torch.zeros(2, label.shape[1])
        return [image_graph("", StarGraph(G), 3, 4, size, {"c": f"(N, {label.shape[1]}) target vector: {layout}"},
                            (c,), ("c",), {"c": {0: 1}})]
    if method == "stylegan":
        if latent not in ("z", "w"):
            raise ValueError(f"latent {latent!r}: choose z or w")
        if noise_mode not in ("stored", "const", "off"):
            raise ValueError(f"noise_mode {noise_mode!r}: an ONNX graph is deterministic; choose stored, const or off")
        G = copy.deepcopy(t.G).eval()
        for m in G.modules():
            if hasattr(m, "grouped"):
                m.grouped = False  # one convolution for any batch (the same function as the grouped form)
        noise = t.noise(noise_mode, 1.0, noise_seed)
        d, n = G.style_dim, G.n_latent
        first = torch.randn(2, d) if latent == "z" else torch.randn(2, n, d)
        shape = f"(N, {d}) z, mapped to w" if latent == "z" else f"(N, {n}, {d}) per-layer w"
        return [Graph("", StyleGraph(G, t.mean_w, noise, latent), (first, torch.tensor(0.7), torch.tensor(1.0)),
                      [latent, "psi", "noise_strength"], {latent: {0: 1}},
                      {latent: shape, "psi": "() float: 1 the full variety, 0 the mean w",
                       "noise_strength": f"() float: a multiplier on the noise maps ({noise_mode})"})]
    if method in ("dcgan", "wgan_gp"):
        nz = card["nets"]["G"]["args"]["nz"]
        G = copy.deepcopy(t.G).eval()
        doc = {"z": f"(N, {nz}) standard normal"}
        if t.classes:
            doc["labels"] = f"(N,) int64 class index: {', '.join(t.classes)}"
            return [Graph("", SampleGraph(G, True), (torch.randn(2, nz), torch.zeros(2, dtype=torch.long)),
                          ["z", "labels"], {"z": {0: 1}, "labels": {0: 1}}, doc)]
        return [Graph("", SampleGraph(G, False), (torch.randn(2, nz),), ["z"], {"z": {0: 1}}, doc)]
    if method == "srgan":
        G = copy.deepcopy(t.G).eval()
        return [image_graph("", ImageGraph(G), input_channels(G), 1, max(8, size // t.scale),
                            {"scale": f"the output is {t.scale}x the input"})]
    if method == "fast_style":
        return [image_graph("", ImageGraph(copy.deepcopy(t.G).eval()), 3, 4, size, {})]
    raise ValueError(f"method {method!r} has no ONNX export in this version")


def dynamic_shapes(g: Graph) -> dict:
    """torch.export dims for ``g.dynamic``, keyed by the forward's argument names."""
    import inspect
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
                "output": "(N, 3, H', W') in [-1, 1]"}
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
    from trainer.exporters import load_source
    tensors, card = load_source(source)
    method = card.get("method")
    if method not in inference.TRANSLATORS:
        raise ValueError(f"{source}: method {method!r} has no generator to export")
    t = inference.TRANSLATORS[method](card, tensors, "cpu")
    gs = graphs(t, latent=latent, mode=mode, noise_mode=noise_mode, noise_seed=noise_seed)
    paths = output_paths(Path(out), gs)
    for g, path in zip(gs, paths):
        write_graph(g, path, card)
    return [(p, g.doc) for p, g in zip(paths, gs)]
