"""SRResNet and the SRGAN discriminator (Ledig et al. 2017).

Generator: 9x9 conv + PReLU, ``n_blocks`` residual blocks (conv-BN-PReLU-conv-BN), a conv-BN
joined to the first features by a long skip, then per factor of 2 a conv to 4x the channels,
pixel shuffle and PReLU, and a 9x9 conv to RGB. Discriminator: eight 3x3 convs (stride 2 on every
second, channels 64 -> 512) with batch norm and leaky ReLU, then a 1024-unit dense layer and one
logit; the dense layers act on globally pooled features so any input size works.
"""
from __future__ import annotations

import math

from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels), nn.PReLU(),
                                  nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels))

    def forward(self, x):
        return x + self.body(x)


class SRResNet(nn.Module):
    def __init__(self, scale: int = 4, n_blocks: int = 16, ngf: int = 64, nc: int = 3):
        super().__init__()
        n_up = int(math.log2(scale))
        if scale < 2 or 2 ** n_up != scale:
            raise ValueError(f"scale must be 2, 4 or 8, got {scale}")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(nc, ngf, 9, 1, 4), nn.PReLU())
        self.blocks = nn.Sequential(*[ResidualBlock(ngf) for _ in range(n_blocks)])
        self.fuse = nn.Sequential(nn.Conv2d(ngf, ngf, 3, 1, 1), nn.BatchNorm2d(ngf))
        up = []
        for _ in range(n_up):
            up += [nn.Conv2d(ngf, ngf * 4, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU()]
        self.upsample = nn.Sequential(*up)
        self.tail = nn.Conv2d(ngf, nc, 9, 1, 4)

    def forward(self, x):
        features = self.head(x)
        return self.tail(self.upsample(features + self.fuse(self.blocks(features))))


class SRDiscriminator(nn.Module):
    def __init__(self, ndf: int = 64, nc: int = 3):
        super().__init__()
        layers = [nn.Conv2d(nc, ndf, 3, 1, 1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for i, out in enumerate([ndf, ndf * 2, ndf * 2, ndf * 4, ndf * 4, ndf * 8, ndf * 8]):
            layers += [nn.Conv2d(ch, out, 3, 2 if i % 2 == 0 else 1, 1), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, True)]
            ch = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(ch, ndf * 16, 1), nn.LeakyReLU(0.2, True),
                                  nn.Conv2d(ndf * 16, 1, 1))

    def forward(self, x):
        return self.head(self.features(x)).flatten(1)
