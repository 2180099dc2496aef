"""DCGAN (Radford et al. 2016) generator and discriminator, with optional class conditioning
(Mirza & Osindero 2014): the label is embedded and joined to z, and to the discriminator's input
as an extra image plane. With ``norm="none"`` the discriminator is a WGAN-GP critic (no batch
norm: the gradient penalty is per sample)."""
import math

import torch
from torch import nn


def _levels(image_size: int) -> int:
    n = int(round(math.log2(image_size)))
    if 2 ** n != image_size or n < 3:
        raise ValueError(f"DCGAN needs a power-of-two image size of at least 8, got {image_size}")
    return n - 2  # 4x4 -> image_size


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm {kind!r}: choose batch, layer or none")


class DCGANGenerator(nn.Module):
    def __init__(self, nz=100, ngf=64, nc=3, image_size=64, n_classes=0, embed_dim=0):
        super().__init__()
        self.nz, self.n_classes = nz, n_classes
        embed_dim = embed_dim or (n_classes if n_classes else 0)
        self.embed = nn.Embedding(n_classes, embed_dim) if n_classes else None
        levels = _levels(image_size)
        ch = ngf * 2 ** (levels - 1)
        layers = [nn.ConvTranspose2d(nz + embed_dim, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(levels - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z, labels=None):
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is conditional: pass class labels")
            z = torch.cat([z, self.embed(labels).to(z.dtype)], dim=1)
        return self.main(z.view(z.size(0), -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """Strided 4x4 convolutions with LeakyReLU 0.2 down to 4x4, then one 4x4 convolution to a logit."""

    def __init__(self, ndf=64, nc=3, image_size=64, n_classes=0, norm="batch"):
        super().__init__()
        self.image_size, self.n_classes = image_size, n_classes
        self.embed = nn.Embedding(n_classes, image_size * image_size) if n_classes else None
        levels = _levels(image_size)
        layers = [nn.Conv2d(nc + (1 if n_classes else 0), ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for _ in range(levels - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), _norm(norm, ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers += [nn.Conv2d(ch, 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)

    def forward(self, x, labels=None):
        if self.embed is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass class labels")
            plane = self.embed(labels).to(x.dtype).view(x.size(0), 1, self.image_size, self.image_size)
            x = torch.cat([x, plane], dim=1)
        return self.main(x).view(x.size(0))
