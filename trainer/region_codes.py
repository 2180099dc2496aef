"""Per-object codes for a sketch: each object the sketch encloses gets a colour code of its own,
painted into a code map that the generator reads beside the scene's latent code.

This is pix2pixHD's instance-wise feature embedding (Wang, Liu, Zhu, Tao, Kautz, Catanzaro,
"High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs", CVPR 2018,
section 3.4) with the instance maps read from the sketch itself and the instance feature fixed to
the object's mean colour (so no encoder learns it): in training each region's code is the photo's
mean colour over that region (BicycleGAN's cVAE half) or a colour drawn from other training regions
(its cLR half, where the output's mean colour must give the code back); at test time a seed draws
each region's colour from the training regions' colours stored in the model file. One code for a
whole scene (BicycleGAN's ``z``) paints every object of it in one hue (docs/sketch-colours.md);
a code per region lets each object have its own.

Regions (:func:`trainer.object_segmenter.object_regions`) come from a learned segmenter when the model has one
(:mod:`trainer.object_segmenter`, which tells touching objects apart), else from the enclosure rule
(:func:`sketch_regions`): the white areas of the line drawing that the lines enclose (not
connected to the image border, which the wall and floor are), each grown by a few pixels so that
the faces of one object (a box's sides, a house's roof, wall and door) join into one region.
Objects whose outlines touch join too and share a colour; an object with an open outline is not
enclosed and takes the scene code's colour.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

REGION_CHANNELS = 4  # the code map: an RGB code in [-1, 1] and an indicator (1 inside a region), then
# any learned instance features (region_channels)
GROW = 0.02  # each enclosed area grows by this fraction of the image's shorter side (3 px at 128)
MIN_AREA = 0.0005  # enclosed areas smaller than this fraction of the image (8 px at 128) are ignored
LINE_LEVEL = 0.0  # a pixel darker than this (mean of the channels, in [-1, 1]) is a line


def components(free: torch.Tensor) -> torch.Tensor:
    """4-connected components of the True pixels of ``free`` (N, H, W) bool: an (N, H, W) int64
    map holding, for each True pixel, the flat index (over the whole batch) of its component's
    first pixel plus 1, and 0 elsewhere. Hooking and pointer jumping (Shiloach & Vishkin 1982):
    a few vectorised rounds, not one per pixel of the longest path."""
    n, h, w = free.shape
    idx = torch.arange(n * h * w, device=free.device).view(n, h, w)
    right = free[:, :, :-1] & free[:, :, 1:]
    down = free[:, :-1, :] & free[:, 1:, :]
    a = torch.cat([idx[:, :, :-1][right], idx[:, :-1, :][down]])
    b = torch.cat([idx[:, :, 1:][right], idx[:, 1:, :][down]])
    parent = idx.flatten().clone()
    while a.numel():
        pa, pb = parent[a], parent[b]
        differ = pa != pb
        if not differ.any():
            break
        lo, hi = torch.minimum(pa, pb)[differ], torch.maximum(pa, pb)[differ]
        parent.scatter_reduce_(0, hi, lo, "amin")  # each root hooks under the smallest root it touches
        while True:  # pointer jumping: every pixel points at its root again
            jumped = parent[parent]
            if torch.equal(jumped, parent):
                break
            parent = jumped
    return torch.where(free.flatten(), parent + 1, 0).view(n, h, w)


def compact_labels(labels: torch.Tensor) -> torch.Tensor:
    """``labels`` (N, H, W), 0 for none, renumbered per image 1..K in order of first appearance
    (raster order), so that numbering does not depend on the batch."""
    out = torch.zeros_like(labels)
    for i, lab in enumerate(labels):
        flat = lab.flatten()
        ids = flat[flat > 0]
        if not ids.numel():
            continue
        uniq, first = torch.unique(ids, return_inverse=True)
        order = torch.full((uniq.numel(),), ids.numel(), dtype=torch.long, device=ids.device)
        order.scatter_reduce_(0, first, torch.arange(ids.numel(), device=ids.device), "amin")
        rank = torch.empty_like(order)
        rank[order.argsort()] = torch.arange(uniq.numel(), device=ids.device)
        renamed = torch.zeros_like(flat)
        renamed[flat > 0] = rank[first] + 1
        out[i] = renamed.view_as(lab)
    return out


def sketch_regions(x: torch.Tensor) -> torch.Tensor:
    """The objects a line drawing encloses. ``x``: (N, C, H, W) sketches in [-1, 1], dark lines
    on a light ground (C 1 or 3). Returns (N, H, W) int64: 0 for the background (what is
    connected to the border) and each object's number 1..K, numbered in raster order of its first
    pixel. Areas enclosed by the lines, less those under ``MIN_AREA``, are grown by ``GROW`` of
    the shorter side over the lines around them; areas that then touch (an object's faces, or two
    objects whose outlines touch) are one object. No gradient."""
    if x.dim() != 4:
        raise ValueError(f"sketch_regions takes (N, C, H, W) sketches, got shape {tuple(x.shape)}")
    with torch.no_grad():
        n, _, h, w = x.shape
        free = x.float().mean(1) >= LINE_LEVEL
        lab = components(free)
        border = torch.cat([lab[:, 0, :], lab[:, -1, :], lab[:, :, 0], lab[:, :, -1]], 1)
        enclosed = free & ~torch.isin(lab, border[border > 0])
        if enclosed.any():  # drop specks: gaps in a line's antialiasing, not areas a person drew
            sizes = torch.bincount(lab[enclosed], minlength=n * h * w + 1)
            enclosed &= sizes[lab] >= max(1, round(MIN_AREA * h * w))
        r = max(1, round(GROW * min(h, w)))
        grown = F.max_pool2d(enclosed[:, None].float(), 2 * r + 1, 1, r)[:, 0] > 0
        return compact_labels(components(grown))


def region_means(image: torch.Tensor, labels: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each region's mean colour: ``image`` (N, 3, H, W), ``labels`` (N, H, W) from
    :func:`sketch_regions`, ``k`` regions per image at most. Returns ((N, k, 3) means in the
    image's range, 0 for a region an image lacks; (N, k) pixel counts). Differentiable in ``image``."""
    onehot = F.one_hot(labels.clamp(0, k), k + 1)[..., 1:].to(image.dtype)  # (N, H, W, k)
    counts = onehot.sum((1, 2))
    sums = torch.einsum("nchw,nhwk->nkc", image, onehot)
    return sums / counts.clamp(min=1)[..., None], counts


def per_pixel(codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each pixel's region code: ``codes`` (N, k, C), ``labels`` (N, H, W) (0: none, above k: k)
    -> (N, H, W, C), zeros outside the regions."""
    n, k, c = codes.shape
    table = torch.cat([codes.new_zeros(n, 1, c), codes], 1)  # row 0: the background's zeros
    return table[torch.arange(n, device=labels.device).view(n, 1, 1), labels.clamp(0, k)]


def region_channels(features: int = 0, palette: int = 1) -> int:
    """The code map's channels for ``palette`` colours and ``features`` learned instance features
    per object."""
    return REGION_CHANNELS + 3 * (palette - 1) + features


def region_palette(image: torch.Tensor, labels: torch.Tensor, k: int, colours: int = 2,
                   rounds: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Each region's ``colours`` (1 or 2) dominant colours: ``image`` (N, 3, H, W), ``labels``
    (N, H, W) as for :func:`region_means`. One colour is the mean; two are 2-means (Lloyd's
    ``rounds``) over the region's pixels, started from their split by brightness around the mean.
    Returns ((N, k, 3 * colours) in the image's range, the larger cluster first: a house's wall
    colour, then its roof's and door's; (N, k) pixel counts). A cluster left empty takes the
    region's mean. Differentiable in ``image`` (the assignments are not). ValueError for another
    number of colours."""
    if colours not in (1, 2):
        raise ValueError(f"region_palette takes 1 or 2 colours, got {colours}")
    mean, counts = region_means(image, labels, k)
    if colours == 1:
        return mean, counts
    lab = labels.clamp(0, k)
    pixels = image.permute(0, 2, 3, 1)  # (N, H, W, 3)
    with torch.no_grad():
        assign = ((pixels - per_pixel(mean, lab)).sum(-1) > 0).long()  # 1: brighter than its region's mean

    def centres(assign):
        out = []
        for c in range(colours):
            centre, size = region_means(image, torch.where(assign == c, lab, 0), k)
            out.append((torch.where(size[..., None] > 0, centre, mean), size))
        return out

    with torch.no_grad():
        for _ in range(rounds):
            nearest = torch.stack([per_pixel(c, lab) for c, _ in centres(assign)], -2)  # (N, H, W, colours, 3)
            assign = (pixels[..., None, :] - nearest).square().sum(-1).argmin(-1)
    found = centres(assign)
    order = torch.stack([size for _, size in found], -1).argsort(-1, descending=True)  # (N, k, colours)
    stacked = torch.stack([c for c, _ in found], -2)  # (N, k, colours, 3)
    ranked = stacked.gather(2, order[..., None].expand(-1, -1, -1, 3))
    return ranked.flatten(2), counts


def region_map(labels: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """The code map (N, 1 + C, H, W) the generator reads: each region's colour code ``codes[..., :3]``
    (``codes``: (N, k, C) in [-1, 1]) over its pixels, a fourth channel 1 inside a region, then the
    rest of its code ``codes[..., 3:]`` (a second colour, learned features); all 0 outside."""
    paint = per_pixel(codes, labels).permute(0, 3, 1, 2)
    inside = (labels > 0).to(codes.dtype)[:, None]
    return torch.cat([paint[:, :3], inside, paint[:, 3:]], 1)


def seeded_colours(labels: torch.Tensor, bank: torch.Tensor, seed: int) -> torch.Tensor:
    """Test-time codes (N, k, C): each region's code drawn from ``bank`` (M, C) (the training
    regions' colours, then any learned features) by a generator seeded from ``seed`` and where the
    region lies (its centroid's cell in an 8 x 8 grid, and its rank among the regions of that
    cell), so that drawing a new object leaves the other objects' colours as they were."""
    n, h, w = labels.shape
    k = int(labels.max()) if labels.numel() else 0
    out = torch.zeros(n, k, bank.shape[1], dtype=bank.dtype, device=bank.device)
    if k == 0:
        return out
    # each region's pixel count and centroid (as fractions of the side), by one bincount per sum
    index = (labels.clamp(0, k) + torch.arange(n, device=labels.device).view(n, 1, 1) * (k + 1)).flatten().cpu()
    ys = (torch.arange(h, dtype=torch.float64) / h).view(1, h, 1).expand(n, h, w).flatten()
    xs = (torch.arange(w, dtype=torch.float64) / w).view(1, 1, w).expand(n, h, w).flatten()
    size = n * (k + 1)
    counts = torch.bincount(index, minlength=size).view(n, k + 1)[:, 1:]
    sums = [torch.bincount(index, weights=v, minlength=size).view(n, k + 1)[:, 1:] for v in (ys, xs)]
    centre = (torch.stack(sums, -1) / counts.clamp(min=1)[..., None]).tolist()
    counts = counts.tolist()  # plain numbers: one conversion, not one per region
    rows, regions, picks = [], [], []
    for i in range(n):
        seen: dict[int, int] = {}
        for j in range(k):
            if counts[i][j] == 0:
                continue
            cell = int(min(7, centre[i][j][0] * 8)) * 8 + int(min(7, centre[i][j][1] * 8))
            rank = seen[cell] = seen.get(cell, -1) + 1
            g = torch.Generator().manual_seed((int(seed) * 1_000_003 + cell * 101 + rank) & 0x7FFF_FFFF_FFFF_FFFF)
            rows.append(i)
            regions.append(j)
            picks.append(int(torch.randint(len(bank), (1,), generator=g)))
    if picks:
        out[rows, regions] = bank[picks]
    return out
