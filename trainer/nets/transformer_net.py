"""Johnson et al.'s image transformation network for fast style transfer: 9x9 conv, two stride-2
convs, five residual blocks, two nearest-upsample + conv layers (no checkerboard), 9x9 conv to RGB;
instance normalisation (Ulyanov et al.) throughout. Fully convolutional: any input size that the
two downsamplings divide is returned at the same size."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn


def conv(cin, cout, k, stride=1, relu=True):
    layers = [nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride), nn.InstanceNorm2d(cout, affine=True)]
    return nn.Sequential(*layers, nn.ReLU(True)) if relu else nn.Sequential(*layers)


class Residual(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.body = nn.Sequential(conv(ch, ch, 3), conv(ch, ch, 3, relu=False))

    def forward(self, x):
        return x + self.body(x)


class UpConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = conv(cin, cout, 3)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TransformerNet(nn.Module):
    def __init__(self, ngf: int = 32, n_blocks: int = 5):
        super().__init__()
        self.model = nn.Sequential(
            conv(3, ngf, 9), conv(ngf, ngf * 2, 3, 2), conv(ngf * 2, ngf * 4, 3, 2),
            *[Residual(ngf * 4) for _ in range(n_blocks)],
            UpConv(ngf * 4, ngf * 2), UpConv(ngf * 2, ngf),
            nn.ReflectionPad2d(4), nn.Conv2d(ngf, 3, 9))

    def forward(self, x):
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:  # any size: reflect-pad to a multiple of 4, crop back
            x = F.pad(x, [0, pw, 0, ph], mode="replicate")
        return self.model(x)[..., :h, :w]
