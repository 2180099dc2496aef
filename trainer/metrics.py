"""Quality and health metrics shared by training and evaluation."""
from __future__ import annotations

import torch


def mean_pairwise_distance(images: torch.Tensor) -> float:
    """Mean L2 distance between every pair of a batch of images (per pixel, RMS): the diversity
    of a fixed batch of samples. A collapse to one mode drives it towards 0."""
    x = images.detach().float().flatten(1)
    n = x.shape[0]
    if n < 2:
        return 0.0
    d = torch.cdist(x, x) / x.shape[1] ** 0.5
    return float(d.sum() / (n * (n - 1)))
