"""VGG16 / VGG19 feature extractors for perceptual losses (Johnson et al. 2016, Ledig et al. 2017),
built with torchvision's architectures and loaded from a weights file the user names; nothing is
ever downloaded. Layers are named as in the papers: relu1_2, relu2_2, relu3_3, relu4_3, relu5_4.
Inputs are images in [-1, 1]; the ImageNet normalisation happens inside."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from trainer.errors import VGGWeightsError
from trainer.nets.weights import safe_load

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ARCHS = ("vgg16", "vgg19")


def layer_names(features: nn.Sequential) -> list[str]:
    """relu<block>_<conv> (and conv<b>_<c>, pool<b>) for each module of a torchvision VGG."""
    names, block, conv = [], 1, 0
    for m in features:
        if isinstance(m, nn.Conv2d):
            conv += 1
            names.append(f"conv{block}_{conv}")
        elif isinstance(m, nn.ReLU):
            names.append(f"relu{block}_{conv}")
        else:
            names.append(f"pool{block}")
            block, conv = block + 1, 0
    return names


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    obj = safe_load(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise VGGWeightsError(f"{path}: not a state dict")
    return obj


def require_weights(arch: str, weights, option: str = "model.vgg_weights") -> Path:
    """The weights file's path, or :class:`VGGWeightsError` saying which option to set."""
    if arch not in ARCHS:
        raise VGGWeightsError(f"unknown VGG {arch!r}; choose {' or '.join(ARCHS)}")
    if not weights:
        raise VGGWeightsError(f"the perceptual loss needs ImageNet {arch.upper()} weights and nothing is "
                              f"downloaded: set {option} = /path/to/{arch}.pth (torchvision's state-dict "
                              f"format, such as the {arch}-*.pth file of torchvision's model zoo)")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise VGGWeightsError(f"{option} = {str(weights)!r}: no such file")
    return path


class VGGFeatures(nn.Module):
    """``forward(x)`` returns ``{layer: features}`` for the requested layers; frozen, eval mode."""

    def __init__(self, arch: str, weights, layers: list[str], option: str = "model.vgg_weights"):
        super().__init__()
        import torchvision
        path = require_weights(arch, weights, option)
        features = getattr(torchvision.models, arch)(weights=None).features
        for m in features:
            if isinstance(m, nn.ReLU):
                m.inplace = False  # a conv layer's output stays what it was when asked for
        names = layer_names(features)
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise VGGWeightsError(f"{arch} has no layer {', '.join(unknown)}; its layers: {', '.join(names)}")
        state = read_weights(path)
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        expected = features.state_dict()
        missing = [k for k in expected if k not in state]
        wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
        if missing or wrong:
            raise VGGWeightsError(f"{path}: not {arch} weights in torchvision's format (missing "
                                  f"{len(missing)} tensors, {len(wrong)} of another shape, e.g. "
                                  f"features.{(missing + wrong)[0]})")
        features.load_state_dict({k: state[k] for k in expected})
        last = max(names.index(n) for n in layers)
        self.features = features[:last + 1].eval()
        self.names = names[:last + 1]
        self.layers = list(layers)
        for p in self.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        return super().train(False)  # always eval: no dropout/batch norm here, but keep it frozen

    def forward(self, x):
        x = ((x + 1) / 2 - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out = {}
        for name, layer in zip(self.names, self.features):
            x = layer(x)
            if name in self.layers:
                out[name] = x
        return out
