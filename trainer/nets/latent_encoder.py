"""BicycleGAN's encoder E (Zhu et al., "Toward Multimodal Image-to-Image Translation", 2017):
an image to the mean and log-variance of a Gaussian over the latent code ``z`` that tells the
generator which of the many right outputs to paint (for a sketch: the colours).

A 4x4 stride-2 convolution, residual blocks that each halve the resolution (norm, leaky ReLU,
3x3 convolutions, average pooling; a pooled 1x1 convolution on the shortcut), global average
pooling, and two linear layers: ``mu`` and ``logvar``. ``n_blocks`` 4 suits 128 px, 5 suits 256 px
(the paper's ``resnet_128`` / ``resnet_256``); the global pooling takes any size.

``grid`` > 1 pools to a ``grid`` x ``grid`` map instead and the linear layers read all of it: the
code can then say *where* each colour is (the left object red, the right one green), which the
global average cannot (it keeps "red and green somewhere"). ``z`` stays one vector. A global
encoder's weights load into a grid one as the same function (:meth:`adapt_state`).
"""
import torch
from torch import nn

from trainer.nets.adapt import AdaptsState
from trainer.nets.init import spread_columns
from trainer.nets.norm import norm_layer


class EncoderBlock(nn.Module):
    def __init__(self, cin: int, cout: int, norm: str):
        super().__init__()
        norm_fn = norm_layer(norm)
        self.body = nn.Sequential(norm_fn(cin), nn.LeakyReLU(0.2, True), nn.Conv2d(cin, cin, 3, 1, 1),
                                  norm_fn(cin), nn.LeakyReLU(0.2, True), nn.Conv2d(cin, cout, 3, 1, 1),
                                  nn.AvgPool2d(2))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(cin, cout, 1))

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class LatentEncoder(AdaptsState, nn.Module):
    def __init__(self, input_nc: int = 3, nz: int = 8, nef: int = 64, n_blocks: int = 4, norm: str = "instance",
                 grid: int = 1):
        super().__init__()
        layers, c = [nn.Conv2d(input_nc, nef, 4, 2, 1)], nef
        for n in range(1, n_blocks):
            out = nef * min(4, n + 1)
            layers.append(EncoderBlock(c, out, norm))
            c = out
        layers += [nn.LeakyReLU(0.2, True), nn.AdaptiveAvgPool2d(grid), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.cells = grid * grid
        self.mu = nn.Linear(c * self.cells, nz)
        self.logvar = nn.Linear(c * self.cells, nz)

    def adapt_state(self, state: dict) -> dict:
        """``state`` with a global encoder's ``mu`` / ``logvar`` weights spread over this one's grid
        cells (each weighs 1 / cells of the old weight: the mean of the cells is the global
        average, so the outputs are unchanged); any other state is returned as it is."""
        out = dict(state)
        for head in ("mu", "logvar"):
            layer, w = getattr(self, head), state.get(f"{head}.weight")
            if w is not None and w.shape[1] * self.cells == layer.in_features != w.shape[1]:
                out[f"{head}.weight"] = spread_columns(w, layer.in_features)
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu(h), self.logvar(h)
