"""Stroke-width normalisation: a line drawing's strokes brought to the width a sketch model was
trained on, whatever pen or brush drew them.

The procedural ``sketches`` (``trainer.data.sketches``) draw every line 1 to 4 % of the image side
wide; the bundled sketch2photo loses the objects of sketches drawn much thinner (a 1 to 4 px brush
on the studio's 512 px canvas is 0.2 to 0.8 %) or much thicker. :func:`normalise` measures the
stroke width of the dark lines at the image's own resolution; lines thinner than that range are
redrawn :data:`TRAINING_WIDTH` of the side wide (their ink blurred and cut at the width, which
also makes a pale or antialiased hairline solid), wider ones thinned (grey erosion), before the
image is scaled to the model's size; lines inside it are left as drawn. See docs/sketch-strokes.md.

The width estimate (:func:`estimate`): with ``A`` the ink (the summed darkness, so an antialiased
line counts by its coverage) and ``L`` the lines' length, ``w = A / L``. The length comes from
one dilation: growing the line mask by one pixel adds about one pixel on each side of every
line, ``2 L`` pixels, whatever the lines' width (the erosion form ``w ~ 2D / (D - E)`` cannot
see below 2 px: a 1 and a 2 px line both erode to nothing). A 3x3 square grows a diagonal edge by
sqrt(2) pixels and the 4-neighbour cross by 1/sqrt(2); weighted (sqrt(2) - 1) : (2 - sqrt(2))
both directions grow by exactly 1 (within 8 % at any angle). Stroke ends, crossings and lines
closer than 2 px bias it a little; the tests hold it within 20 % from 1 to 32 px.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from trainer.data.imageio import open_image

# the median of trainer.data.sketches.render's stroke widths as a fraction of the side: half the
# scenes draw U(1, 4) %, half 0.7 x that, at least 1 % (the median of the mixture is 1.65 %)
TRAINING_WIDTH = 0.0165
# the range it draws: lines measured inside it are left as drawn (the bundled model is as accurate
# from 1 to 3.5 %, and redrawing them all at one width cost 0.013 of object accuracy on the 128 px
# held-out sketches; docs/sketch-strokes.md). Thinner lines are thickened to TRAINING_WIDTH
TRAINING_RANGE = (0.01, 0.04)
LINE = 0.3  # darkness over which a pixel belongs to a line (for the length)
MAX_SIDE = 1024  # larger inputs are measured at this size
MIN_GAIN = 0.25  # adjustments under a quarter of a pixel on each side are skipped
# wider lines are thinned to 1.5 x TRAINING_WIDTH (2.5 %, well inside the training range): where
# thick strokes overlap, the estimate runs high, and eroding by the full difference would cut such
# lines to a hairline
THIN_TO = 1.5
_DIAGONAL = math.sqrt(2) - 1  # the square's weight in the isotropic growth


def darkness(image: Image.Image) -> np.ndarray | None:
    """The ink of a line drawing as float32 HxW in [0, 1]: 0 the paper (its median grey), 1 the
    darkest ink (the 0.1th percentile), with the paper's own grain (4 median deviations) cut off.
    None for an image without dark lines: blank, too little contrast, a background that varies
    more than a sheet of paper (4 median deviations over 30 % of the contrast), or more than a
    third dark (a photo or a filled picture, not a drawing)."""
    luma = image.convert("L")
    grey = np.asarray(luma)
    cum = np.cumsum(luma.histogram())  # PIL's count of each level: numpy's bincount took 0.7 ms at 512 px
    n = int(cum[-1])
    paper = int(np.searchsorted(cum, n / 2))
    ink = int(np.searchsorted(cum, n / 1000))
    if paper - ink < 48:  # blank, or nothing darker than faint grain
        return None
    levels = np.arange(256, dtype=np.float32)
    spread = np.abs(levels - paper)  # the median deviation from the paper, from the same histogram
    by_spread = np.cumsum(np.bincount(spread.astype(np.int64), weights=np.diff(cum, prepend=0), minlength=256))
    grain = int(np.searchsorted(by_spread, n / 2))
    floor = 4 * grain / (paper - ink)
    if floor > 0.3:  # the "paper" varies too much: a photo, a texture or noise
        return None
    lut = np.clip((paper - levels) / (paper - ink), 0, 1)
    if floor > 0:
        lut = np.clip((lut - floor) / (1 - floor), 0, 1)
    d = np.take(lut, grey)  # the same gather, half the time of lut[grey]
    lines = int(np.count_nonzero(d > LINE))
    if lines > n / 3 or lines < 16:
        return None
    return d


def _grow_mask(m: np.ndarray, square: bool) -> np.ndarray:
    g = m.copy()
    g[1:] |= m[:-1]
    g[:-1] |= m[1:]
    g[:, 1:] |= m[:, :-1]
    g[:, :-1] |= m[:, 1:]
    if square:
        g[1:, 1:] |= m[:-1, :-1]
        g[1:, :-1] |= m[:-1, 1:]
        g[:-1, 1:] |= m[1:, :-1]
        g[:-1, :-1] |= m[1:, 1:]
    return g


def width_of(d: np.ndarray) -> float | None:
    """The mean stroke width, in pixels, of the lines in a darkness map (see :func:`darkness`)."""
    m = d > LINE
    n = int(m.sum())
    if n == 0:
        return None
    grow_square = int(_grow_mask(m, True).sum()) - n
    grow_cross = int(_grow_mask(m, False).sum()) - n
    length = (_DIAGONAL * grow_square + (1 - _DIAGONAL) * grow_cross) / 2
    return float(d.sum()) / max(length, 1.0)


def estimate(image) -> float | None:
    """The stroke width of ``image``'s dark lines in pixels at its own resolution (None: no lines)."""
    d = darkness(open_image(image) if not isinstance(image, Image.Image) else image)
    return None if d is None else width_of(d)


def _step(d: np.ndarray, square: bool, grow: bool) -> np.ndarray:
    """One 3x3 grey dilation (``grow``: the max) or erosion (the min), square or 4-neighbour cross."""
    op = np.maximum if grow else np.minimum
    pad = np.pad(d, 1, mode="edge")
    h, w = d.shape
    out = op(pad[1:h + 1, 1:w + 1], pad[0:h, 1:w + 1])
    out = op(out, pad[2:h + 2, 1:w + 1])
    out = op(out, pad[1:h + 1, 0:w])
    out = op(out, pad[1:h + 1, 2:w + 2])
    if square:
        for dy, dx in ((0, 0), (0, 2), (2, 0), (2, 2)):
            out = op(out, pad[dy:dy + h, dx:dx + w])
    return out


def morph(d: np.ndarray, radius: float, grow: bool) -> np.ndarray:
    """Every line's edges moved out (``grow``) or in by ``radius`` pixels (fractional: the last
    step blended), alternating cross and square steps so that the change is nearly the same in
    every direction."""
    steps, frac = int(radius), radius - int(radius)
    for k in range(steps):
        d = _step(d, square=k % 2 == 1, grow=grow)
    if frac > 1e-3:
        d = (1 - frac) * d + frac * _step(d, square=steps % 2 == 1, grow=grow)
    return d


def _blur(d: np.ndarray, sigma: float) -> np.ndarray:
    """A separable Gaussian blur (edges reflected)."""
    r = max(1, int(math.ceil(3 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float32)
    k = np.exp(-x * x / (2 * sigma * sigma))
    k /= k.sum()
    h, w = d.shape
    pad = np.pad(d, ((r, r), (0, 0)), mode="reflect")
    d = sum(k[i] * pad[i:i + h] for i in range(2 * r + 1))
    pad = np.pad(d, ((0, 0), (r, r)), mode="reflect")
    return sum(k[i] * pad[:, i:i + w] for i in range(2 * r + 1))


def _profile(x: float, width: float, sigma: float) -> float:
    """A line ``width`` wide blurred by ``sigma``, at ``x`` from its middle."""
    s = math.sqrt(2) * sigma
    return 0.5 * (math.erf((x + width / 2) / s) - math.erf((x - width / 2) / s))


def thicken(d: np.ndarray, width: float, target: float) -> np.ndarray:
    """Lines ``width`` px wide redrawn ``target`` px wide: the ink blurred by the Gaussian whose
    half-maximum falls ``target`` / 2 from a line's middle, then cut there with a one-pixel
    antialiased edge. The blur sums each line's ink across it, so an antialiased hairline (its
    ink split over two grey pixels) or a pale pen comes out as solid as a dark one, and gaps of a
    pixel or two in a scanned line close."""
    lo, hi = 1e-3, target
    for _ in range(40):  # the sigma whose blurred line is half as dark at target / 2 as in its middle
        sigma = (lo + hi) / 2
        if _profile(target / 2, width, sigma) > 0.5 * _profile(0, width, sigma):
            hi = sigma
        else:
            lo = sigma
    peak = _profile(0, width, sigma)
    edge = _profile(target / 2, width, sigma)
    slope = (_profile(target / 2 - 0.5, width, sigma) - _profile(target / 2 + 0.5, width, sigma))
    return np.clip(0.5 + (_blur(d, sigma) - edge) / max(slope, 1e-6 * peak), 0, 1).astype(np.float32)


def adjust(d: np.ndarray, width: float, target: float) -> np.ndarray:
    """Lines of mean ``width`` px brought to ``target`` px: thinner ones redrawn wider
    (:func:`thicken`), wider ones eroded by half the difference on each side (a detail drawn much
    thinner than the rest may go)."""
    if abs(target - width) < 2 * MIN_GAIN:
        return d
    if width < target:
        return thicken(d, width, target)
    return morph(d, (width - target) / 2, grow=False)


def _resample(d: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A darkness map at ``size`` (w, h): area averages when shrinking, so every line keeps its
    ink (a 1 px line at half the size is a half-dark pixel, not lost); bilinear when enlarging."""
    if d.shape[::-1] == tuple(size):
        return d
    shrink = size[0] < d.shape[1]
    image = Image.fromarray(d.astype(np.float32), "F").resize(size, Image.BOX if shrink else Image.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def goal(width: float, target: float = TRAINING_WIDTH) -> float | None:
    """The width (a fraction of the side) that lines ``width`` wide are brought to for a model
    trained on ``target`` (:data:`TRAINING_RANGE` scaled with it): ``target`` for thinner lines,
    :data:`THIN_TO` x ``target`` for wider ones, None inside the range (left as drawn)."""
    lo, hi = (r * target / TRAINING_WIDTH for r in TRAINING_RANGE)
    if width < lo:
        return target
    if width > hi:
        return THIN_TO * target
    return None


def normalise(image: Image.Image, target: float = TRAINING_WIDTH, size: int | tuple | None = None
              ) -> Image.Image | None:
    """``image`` (a line drawing, any size) as black lines on white, RGB, at ``size`` (an int:
    square; None: the image's own size), with lines thinner or wider than a model trained on
    ``target`` (a fraction of the side) has seen brought to it (:func:`goal`). The side is the
    geometric mean of width and height. The width is measured at the image's own resolution (at
    most :data:`MAX_SIDE`); the lines are redrawn at twice ``size`` and scaled down (LANCZOS), as
    the procedural sketches are drawn. None when there is nothing to do: no lines (see
    :func:`darkness`), or lines already of a training width; use the image as it is."""
    image = open_image(image) if not isinstance(image, Image.Image) else image
    measured = image
    if max(image.size) > MAX_SIDE:
        k = MAX_SIDE / max(image.size)
        measured = image.resize((max(1, round(image.width * k)), max(1, round(image.height * k))), Image.BOX)
    d = darkness(measured)
    if d is None:
        return None
    width = width_of(d) / math.sqrt(d.shape[0] * d.shape[1])  # as a fraction of the side
    wanted = goal(width, target)
    if wanted is None:
        return None
    out_size = image.size if size is None else (size, size) if isinstance(size, int) else tuple(size)
    work = measured.size if size is None else (2 * out_size[0], 2 * out_size[1])
    d = _resample(d, work)
    side = math.sqrt(work[0] * work[1])
    d = adjust(d, width * side, wanted * side)
    out = Image.fromarray(np.round((1 - d) * 255).astype(np.uint8), "L")
    if out.size != out_size:
        out = out.resize(out_size, Image.LANCZOS)
    return out.convert("RGB")
