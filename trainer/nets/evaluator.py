"""The evaluator network: a small classifier whose penultimate features stand in for Inception's
in an in-domain Frechet distance (as the pix2pix paper's FCN-score used a segmentation network
trained on real images to score generated ones).

Four stride-2 stages of two 3x3 convolutions with batch norm, global average pooling (counts
and presence survive it: a sum over positions divided by a constant), a ``feature_dim``
fully connected layer (the features), then one linear head per output: ``heads`` maps a head
name to its number of outputs (classes, or 1 for a regression).
"""
from __future__ import annotations

import torch
import torch.nn as nn


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class EvaluatorNet(nn.Module):
    def __init__(self, heads: dict[str, int], width: int = 32, feature_dim: int = 128, input_nc: int = 3):
        super().__init__()
        chans = [width, width * 2, width * 4, width * 4]
        layers, cin = [], input_nc
        for c in chans:
            layers.append(_stage(cin, c))
            cin = c
        self.body = nn.Sequential(*layers)
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(cin, feature_dim), nn.ReLU(inplace=True))
        self.heads = nn.ModuleDict({name: nn.Linear(feature_dim, n) for name, n in heads.items()})

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate features (N, feature_dim) of images in [-1, 1]."""
        return self.features(self.body(x).mean((2, 3)))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.embed(x)
        return {name: head(f) for name, head in self.heads.items()}
