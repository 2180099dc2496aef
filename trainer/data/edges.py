"""Edges of a photo as a sketch (black lines on white), for pix2pix's edges-to-photo inputs:
Sobel gradient magnitude of the blurred luminance, thinned to local maxima along the gradient
(non-maximum suppression, as Canny), kept above a percentile."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter


def edges(image: Image.Image, size: int | None = None, keep: float = 0.03, blur: float = 2.0) -> Image.Image:
    """``image`` (any mode) -> an RGB sketch of ``size`` x ``size`` (or the image's size), with the
    strongest ``keep`` fraction of thinned edge pixels drawn black."""
    im = image.convert("L")
    if size:
        im = im.resize((size, size), Image.BICUBIC)
    if blur > 0:
        im = im.filter(ImageFilter.GaussianBlur(blur))
    a = np.asarray(im, dtype=np.float32)
    p = np.pad(a, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    mag = np.hypot(gx, gy)
    # non-maximum suppression in four gradient directions
    angle = (np.rad2deg(np.arctan2(gy, gx)) + 180) % 180
    m = np.pad(mag, 1)
    h, w = mag.shape
    neighbours = {0: ((0, 1), (0, -1)), 45: ((1, -1), (-1, 1)), 90: ((1, 0), (-1, 0)), 135: ((1, 1), (-1, -1))}
    bins = (np.round(angle / 45) % 4 * 45).astype(int)
    thin = np.zeros_like(mag)
    for deg, ((dy1, dx1), (dy2, dx2)) in neighbours.items():
        sel = bins == deg
        n1 = m[1 + dy1:h + 1 + dy1, 1 + dx1:w + 1 + dx1]
        n2 = m[1 + dy2:h + 1 + dy2, 1 + dx2:w + 1 + dx2]
        keep_here = sel & (mag >= n1) & (mag >= n2)
        thin[keep_here] = mag[keep_here]
    nonzero = thin[thin > 0]
    if nonzero.size == 0 or nonzero.max() < 8:  # a flat image has no edges
        return Image.new("RGB", im.size, "white")
    threshold = max(8.0, np.quantile(thin, 1 - keep))
    lines = thin >= threshold
    out = np.where(lines, 0, 255).astype(np.uint8)
    sketch = Image.fromarray(out).filter(ImageFilter.MinFilter(3)) if min(im.size) >= 96 else Image.fromarray(out)
    return sketch.convert("RGB")
