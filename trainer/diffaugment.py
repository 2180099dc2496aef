"""Differentiable augmentation of what a discriminator sees (DiffAugment: Zhao, Liu, Lin, Zhu &
Han 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The same random transformations, drawn per sample, are applied to real and generated images
before every discriminator pass (its own update and the generator's), so the generator's
gradient goes through them. Only geometric policies are offered: a colour policy would change
the very attributes (hair colour) a StarGAN discriminator classifies.

- ``translation``: each image shifted by up to ``TRANSLATION`` of its size in each direction,
  zero filled (the paper's 1/8).
- ``cutout``: a square of ``CUTOUT`` of the size (the paper's 1/2; here 1/4, so that an
  attribute is rarely hidden whole) set to zero at a random centre.
- ``noise``: Gaussian noise of standard deviation ``NOISE`` (in [-1, 1] image units) added to
  every pixel, instance noise (Sonderby, Caballero, Theis, Shi & Huszar 2017, "Amortised MAP
  Inference for Image Super-resolution"): a classifier cannot read an attribute from faint
  speckle that the noise drowns.

Used by StarGAN's ``model.diffaugment``: with it, a discriminator's classifier cannot be fooled by
a few pixels at fixed places (the bundled faces model's Young edits had learnt to paint noise at
the hair's edge; docs/faces-attributes.md).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

POLICIES = ("translation", "cutout", "noise")
TRANSLATION = 0.125
CUTOUT = 0.25
NOISE = 0.1


@functools.lru_cache(maxsize=32)  # read at every D input
def parse_policy(text: str) -> tuple[str, ...]:
    """``"translation,cutout"`` -> ("translation", "cutout"); "" -> (). Raises ValueError naming
    an unknown policy and the known ones."""
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {', '.join(unknown)}; known: {', '.join(POLICIES)}")
    return names


def _grid(n: int, h: int, w: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.meshgrid(torch.arange(n, device=device), torch.arange(h, device=device),
                          torch.arange(w, device=device), indexing="ij")


def translation(x: torch.Tensor, ratio: float = TRANSLATION) -> torch.Tensor:
    """(N, C, H, W) -> the same shape, each image shifted by a random whole number of pixels up to
    ``ratio`` of its height and width (zero filled)."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    b, gy, gx = _grid(n, h, w, x.device)
    gy, gx = (gy + ty + 1).clamp(0, h + 1), (gx + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    return padded.permute(0, 2, 3, 1)[b, gy, gx].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = CUTOUT) -> torch.Tensor:
    """(N, C, H, W) -> the same shape, a ``ratio`` x ``ratio`` rectangle of each image (at a
    random centre, clipped at the border) set to zero."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    b, gy, gx = _grid(n, ch, cw, x.device)
    gy, gx = (gy + oy - ch // 2).clamp(0, h - 1), (gx + ox - cw // 2).clamp(0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[b, gy, gx] = 0
    return x * mask.unsqueeze(1)


def noise(x: torch.Tensor, std: float = NOISE) -> torch.Tensor:
    """(N, C, H, W) -> the same shape plus independent N(0, std^2) noise on every value."""
    return x + std * torch.randn_like(x)


def diff_augment(x: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    """``x`` (N, C, H, W), any range, through each policy in turn (:data:`POLICIES`); () returns
    ``x`` itself."""
    for name in policy:
        x = {"translation": translation, "cutout": cutout, "noise": noise}[name](x)
    return x
