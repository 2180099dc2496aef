"""A colour per object after the generator: each object of a sketch gets its own colour, drawn
from the seed, by a colour transfer over the object's pixels of the generated photo.

A BicycleGAN whose scene code paints every object of a scene in one colour (the bundled
sketch2photo, docs/sketch-colours.md) keeps its shapes, shading and background; only the objects'
colours change. Each object the segmenter finds (:func:`trainer.object_segmenter.object_regions`)
gets a target colour drawn as the per-object codes draw theirs
(:func:`trainer.region_codes.seeded_colours`: from the training objects' colours stored in the
model file, seeded by the seed and the object's place), and its pixels are moved to it in the
luma-chroma space YCbCr (ITU-R BT.601): the chroma of every pixel is rotated about grey by the
angle between the object's mean chroma and the target's and shifted so that its mean becomes the
target's, so that a house's roof keeps its difference from the walls; the luma (brightness,
shading, highlights) stays the generator's unless ``luminance`` > 0 moves it towards the target's.
This is the statistics-matching colour transfer of Reinhard, Ashikhmin, Gooch and Shirley ("Color
Transfer between Images", IEEE CG&A 2001), per instance and with a rotation for the chroma's mean.

Keeping the luma is what holds the shapes: moving it fully to the target's cost 0.03 object
accuracy and 1.1 FID on 300 held-out scenes, where keeping it cost neither accuracy nor more
than 0.6 FID (docs/sketch-colours.md).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# RGB in [0, 1] -> YCbCr (luma in [0, 1], chroma in [-0.5, 0.5]), ITU-R BT.601
YCBCR = torch.tensor([[0.299, 0.587, 0.114],
                      [-0.168736, -0.331264, 0.5],
                      [0.5, -0.418688, -0.081312]])
RGB = torch.linalg.inv(YCBCR)  # and back
MIN_CHROMA = 0.02  # an object whose mean chroma is shorter than this is grey: shifted, not rotated
FRAGMENT = 0.003  # a region under this fraction of the image (49 px at 128) that touches another joins it


def merge_fragments(labels: torch.Tensor, fraction: float = FRAGMENT) -> torch.Tensor:
    """``labels`` (N, H, W) int64 (0: background, 1..K objects) with each region smaller than
    ``fraction`` of the image that touches (8-neighbours) a larger one relabelled as the larger
    region it shares most border pixels with (a mug's handle that the segmenter split off its
    body); a small region on its own (a small star) stays."""
    out = labels.clone()
    n, h, w = labels.shape
    limit = fraction * h * w
    for i in range(n):
        lab = out[i]
        k = int(lab.max())
        if k < 2:
            continue
        sizes = torch.bincount(lab.flatten(), minlength=k + 1)
        for j in sorted(range(1, k + 1), key=lambda j: int(sizes[j])):
            if not 0 < sizes[j] < limit:
                continue
            mine = (lab == j).float()[None, None]
            ring = (F.max_pool2d(mine, 3, 1, 1)[0, 0] > 0) & (lab != j) & (lab > 0)
            if not ring.any():
                continue
            neighbours = torch.bincount(lab[ring], minlength=k + 1)
            neighbours[sizes < limit] = 0  # join a large region, not another fragment
            if neighbours.max() == 0:
                continue
            target = int(neighbours.argmax())
            lab[lab == j] = target
            sizes[target] += sizes[j]
            sizes[j] = 0
    return out


def transfer(image: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor,
             luminance: float = 0.0) -> torch.Tensor:
    """Each object of ``image`` (N, 3, H, W) RGB in [-1, 1] moved to its target colour.

    ``labels`` (N, H, W) int64: 0 background, j = 1..k the pixels of object j; ``targets``
    (N, k, 3) RGB in [-1, 1], row j - 1 object j's colour (a row of zeros with no pixels of its
    own is ignored). ``luminance`` in [0, 1]: 0 keeps each pixel's luma, 1 shifts the object's mean
    luma to the target's. The object's edge is blended over one pixel (a 3 x 3 mean of its mask).
    Returns (N, 3, H, W) in [-1, 1], computed in fp32 under any autocast; the background's pixels
    are unchanged; a NaN pixel stays NaN and leaves the rest of the picture as without it.
    ValueError for shapes that do not match or ``luminance`` outside [0, 1]."""
    n, c, h, w = image.shape
    if c != 3 or labels.shape != (n, h, w) or targets.dim() != 3 or targets.shape[0] != n or targets.shape[2] != 3:
        raise ValueError(f"transfer takes an (N, 3, H, W) image, (N, H, W) labels and (N, k, 3) targets, got "
                         f"{tuple(image.shape)}, {tuple(labels.shape)} and {tuple(targets.shape)}")
    if not 0.0 <= luminance <= 1.0:
        raise ValueError(f"luminance must be in [0, 1], got {luminance}")
    k = targets.shape[1]
    if k == 0 or not (labels > 0).any():
        return image
    with torch.autocast(image.device.type, enabled=False):  # fp32 whatever the caller's autocast
        return _transfer(image, labels, targets, luminance)


def _transfer(image, labels, targets, luminance):
    n, _, h, w = image.shape
    k = targets.shape[1]
    m = YCBCR.to(image.device, torch.float32)
    ycc = torch.einsum("ij,njhw->nihw", m, image.float().add(1).mul(0.5))
    # each pixel's row in a table of the batch's objects: image i's object j at i * (k + 1) + j (0: background)
    rows = (labels.clamp(0, k) + torch.arange(n, device=labels.device).view(n, 1, 1) * (k + 1)).flatten()
    counts = torch.bincount(rows, minlength=n * (k + 1)).view(n, k + 1)[:, 1:].float()  # (N, k)
    # (N, k, 3); a NaN pixel (from G) counts as 0 here, not as a NaN in every object's mean
    pixels = torch.nan_to_num(ycc).permute(0, 2, 3, 1).reshape(-1, 3)
    sums = torch.zeros(n * (k + 1), 3, device=image.device).index_add_(0, rows, pixels).view(n, k + 1, 3)[:, 1:]
    mean = sums / counts.clamp(min=1)[..., None]
    goal = torch.einsum("ij,nkj->nki", m, targets.float().add(1).mul(0.5))
    angle = (torch.atan2(goal[..., 2], goal[..., 1]) - torch.atan2(mean[..., 2], mean[..., 1]))
    angle = torch.where(mean[..., 1:].norm(dim=-1) > MIN_CHROMA, angle, torch.zeros_like(angle))
    cos, sin = angle.cos(), angle.sin()
    # per object, the change of a pixel's YCbCr is affine in its chroma c: Y + l, and
    # goal + R (c - mean) - c = (R - I) c + (goal - R mean); blended per pixel by the objects' weights
    rm = torch.stack([cos * mean[..., 1] - sin * mean[..., 2], sin * mean[..., 1] + cos * mean[..., 2]], -1)
    params = torch.stack([luminance * (goal[..., 0] - mean[..., 0]), cos - 1, -sin, sin, cos - 1,
                          goal[..., 1] - rm[..., 0], goal[..., 2] - rm[..., 1]], -1)  # (N, k, 7)
    # each pixel's object's parameters (0 on the background), blended over one pixel at the edges: the
    # 3 x 3 mean of the map, which is the sum over objects of (3 x 3 mean of its mask) x its parameters;
    # those shares add to at most 1 (where objects meet, exactly 1), in time independent of k
    table = torch.cat([params.new_zeros(n, 1, 7), params], 1).view(-1, 7)
    p = _mean3x3(table[rows].view(n, h, w, 7).permute(0, 3, 1, 2).contiguous())
    cb, cr = ycc[:, 1], ycc[:, 2]
    change = torch.stack([p[:, 0], p[:, 1] * cb + p[:, 2] * cr + p[:, 5], p[:, 3] * cb + p[:, 4] * cr + p[:, 6]], 1)
    rgb = image.float() + 2 * torch.einsum("ij,njhw->nihw", RGB.to(image.device), change)  # [0, 1] -> [-1, 1]
    return rgb.clamp(-1, 1).to(image.dtype)


def _mean3x3(x: torch.Tensor) -> torch.Tensor:
    """The mean of each pixel's 3 x 3 neighbourhood within the map, (N, C, H, W) -> the same
    (``F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)``, as two running sums: 3x faster on a CPU)."""
    h, w = x.shape[2:]
    padded = F.pad(x, (1, 1, 1, 1))
    rows = padded[..., :-2] + padded[..., 1:-1] + padded[..., 2:]
    total = rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]
    rows_in, cols_in = (_within(side, x.device) for side in (h, w))
    return total / (rows_in[:, None] * cols_in[None, :])


def _within(side: int, device) -> torch.Tensor:
    """(side,) how many of each position's 3 neighbours along an axis (itself included) lie within
    it: 2 at the ends, 3 between (1 for a side of 1)."""
    counts = torch.full((side,), 3.0, device=device)
    counts[0] -= 1
    counts[-1] -= 1
    return counts
