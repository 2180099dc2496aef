"""Do the objects of one scene get colours of their own? The procedural ``sketches`` data draws
each object's colour independently (:func:`trainer.data.sketches.object_colour`: hue uniform on
the wheel, saturation and value 0.55 to 0.95), so in real photos two objects rarely share a hue.

A scene's objects are *distinct* when every pair of their dominant hues lies more than
``threshold`` apart on the hue circle (:data:`HUE_THRESHOLD`, 30 degrees: one of the twelve
sectors of the colour wheel, red / orange / yellow / ...; the hues measured on real photos lie
within a few degrees of the colours they were painted with, see ``docs/sketch-colours.md``). An
object's dominant hue is the peak of the hue histogram of its coloured pixels (HSV saturation at
least :data:`MIN_SATURATION`) inside its visible mask eroded by a few pixels (so that outlines,
edge blur and the neighbours' pixels do not count). An object with too few coloured pixels (less
than :data:`MIN_COLOURED` of its eroded mask: grey, white or black) or too small a visible part has
no hue and is left out of its scene's pairs; a scene with fewer than two objects that have a hue
is undecided (None) and left out of the fractions.

For independent uniform hues the chance that ``n`` objects are distinct at threshold ``t`` (a
fraction of the circle) is ``(1 - n t) ** (n - 1)``: 0.83 for two objects and 0.56 for three at
30 degrees, what the real photos should give.

:func:`distinct_hue_rates` measures it for a translator (BicycleGAN: each seed one colouring) on
held-out procedural scenes of two and three objects, beside the real photos' figure.
"""
from __future__ import annotations

import itertools
from typing import Callable, Iterable

import numpy as np
from PIL import Image, ImageFilter

from trainer.evaluators.specs import EVAL_SEED

HUE_THRESHOLD = 30 / 360  # as a fraction of the hue circle
MIN_SATURATION = 0.25  # a pixel counts as coloured from this HSV saturation (objects are drawn at 0.55-0.95)
MIN_VALUE = 0.12  # ... and this HSV value (the hue of a near-black pixel is noise)
MIN_COLOURED = 0.5  # an object has a hue when at least this share of its eroded mask is coloured
MIN_PIXELS = 6  # an object whose eroded visible mask has fewer pixels has no hue
HUE_BINS = 36  # 10 degrees a bin


def hsv(image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue, saturation and value of an RGB image (uint8 (H, W, 3), or float in [0, 1]) as three
    float (H, W) arrays in [0, 1] (hue a fraction of the circle, 0 red; 0 where saturation is 0)."""
    rgb = np.asarray(image)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {rgb.shape}")
    rgb = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    top, low = rgb.max(-1), rgb.min(-1)
    span = top - low
    safe = np.where(span > 0, span, 1.0)
    h = np.where(top == r, (g - b) / safe, np.where(top == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = np.where(span > 0, (h / 6.0) % 1.0, 0.0)
    s = np.where(top > 0, span / np.where(top > 0, top, 1.0), 0.0)
    return h, s, top


def erode(mask, pixels: int) -> np.ndarray:
    """``mask`` (H, W; coverage in [0, 1] or bool) thresholded at 0.5 and eroded by a square of
    ``pixels`` each side (0: only thresholded), as a bool (H, W) array."""
    m = np.asarray(mask, dtype=np.float32) > 0.5
    if pixels < 0:
        raise ValueError(f"pixels must be 0 or more, got {pixels}")
    if pixels == 0 or not m.any():
        return m
    img = Image.fromarray(m.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(2 * pixels + 1))
    return np.asarray(img) > 127


def default_erosion(size: int) -> int:
    """Pixels eroded from each mask at ``size`` px: 2 at 128 px (the sketch's lines are 1-4 % of
    the side wide, an output's edges blur over a pixel or two), at least 1."""
    return max(1, round(size / 64))


def dominant_hue(image, mask, erosion: int = 2, min_saturation: float = MIN_SATURATION,
                 min_coloured: float = MIN_COLOURED) -> float | None:
    """The dominant hue (a fraction of the circle in [0, 1)) of the object covering ``mask``
    ((H, W) coverage in [0, 1]) in the RGB ``image`` ((H, W, 3), uint8 or float in [0, 1]): the
    peak of the 36-bin hue histogram of the coloured pixels (saturation >= ``min_saturation``,
    value >= :data:`MIN_VALUE`) inside the mask eroded by ``erosion`` px, smoothed circularly over
    neighbouring bins and refined to the circular mean of those pixels' hues within 20 degrees of
    it. None when the eroded mask has fewer than :data:`MIN_PIXELS` pixels or less than
    ``min_coloured`` of them are coloured (a grey, white or black object). Raises ValueError when
    the mask's shape is not the image's."""
    h, s, v = hsv(image)
    mask = np.asarray(mask)
    if mask.shape != h.shape:
        raise ValueError(f"mask shape {mask.shape} is not the image's {h.shape}")
    inside = erode(mask, erosion)
    total = int(inside.sum())
    if total < MIN_PIXELS:
        return None
    coloured = inside & (s >= min_saturation) & (v >= MIN_VALUE)
    if coloured.sum() < max(min_coloured * total, 1):
        return None
    hues = h[coloured]
    counts = np.bincount((hues * HUE_BINS).astype(int) % HUE_BINS, minlength=HUE_BINS).astype(np.float64)
    smooth = 2 * counts + np.roll(counts, 1) + np.roll(counts, -1)
    peak = (np.argmax(smooth) + 0.5) / HUE_BINS
    near = hues[hue_distance(hues, peak) <= 20 / 360]
    angle = np.angle(np.exp(2j * np.pi * near).mean()) / (2 * np.pi)
    return float(angle % 1.0)


def hue_distance(a, b):
    """Circular distance between hues (fractions of the circle; arrays broadcast) in [0, 0.5]."""
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) % 1.0
    d = np.minimum(d, 1.0 - d)
    return float(d) if np.ndim(d) == 0 else d


def distinct_hues(hues: Iterable[float | None], threshold: float = HUE_THRESHOLD) -> bool | None:
    """Whether every pair of the scene's hues (None: an object without one, left out) lies more than
    ``threshold`` (a fraction of the circle, in (0, 0.5]) apart; None when fewer than two objects
    have a hue. Raises ValueError for a threshold outside (0, 0.5]."""
    if not 0 < threshold <= 0.5:
        raise ValueError(f"threshold must be in (0, 0.5] of the hue circle, got {threshold}")
    known = [x for x in hues if x is not None]
    if len(known) < 2:
        return None
    return all(hue_distance(a, b) > threshold for a, b in itertools.combinations(known, 2))


def scene_hues(image, masks, erosion: int = 2) -> list[float | None]:
    """:func:`dominant_hue` of each object of a scene: ``masks`` (n, H, W) coverage in [0, 1] (as
    ``render(..., object_masks=True)`` gives them) over the RGB ``image`` (H, W, 3)."""
    return [dominant_hue(image, m, erosion) for m in masks]


def expected_distinct(n: int, threshold: float = HUE_THRESHOLD) -> float:
    """The chance that ``n`` >= 2 independent uniform hues lie pairwise more than ``threshold``
    apart: ``max(0, 1 - n * threshold) ** (n - 1)`` (spacings of ``n`` uniform points on a circle)."""
    if n < 2:
        raise ValueError(f"needs two hues or more, got {n}")
    return max(0.0, 1.0 - n * threshold) ** (n - 1)


def held_out_scenes(count: int, n: int, size: int = 128, seed: int = EVAL_SEED):
    """``n`` procedural scenes of ``count`` objects from the evaluation's held-out seeds (``seed``,
    ``seed + 1``, ...): yields ``(sketch, photo, masks)``, two RGB PIL images of ``size`` px and the
    objects' visible masks (count, size, size) in [0, 1]."""
    from trainer.data.sketches import render
    for k in range(n):
        photo, sketch, labels = render(seed + k, size, count=count, object_masks=True)
        yield sketch, photo, labels["masks"]


def seeded_painter(translator) -> Callable:
    """``paint(sketch, seed) -> uint8 (size, size, 3)``: ``translator`` at its training resolution
    and size, as ``gan-trainer eval`` runs it (its default controls otherwise; the seed picks a
    BicycleGAN's code)."""
    from trainer.evaluation import training_resolution
    controls = dict(training_resolution(translator))
    if any(c.name == "output_size" for c in translator.controls):
        controls["output_size"] = "model"

    def paint(sketch, seed):
        return translator.run_array(sketch, seed=int(seed), **controls)
    return paint


def _fraction(values) -> float | None:
    decided = [v for v in values if v is not None]
    return float(np.mean(decided)) if decided else None


def distinct_hue_rates(translator=None, n: int = 100, counts=(2, 3), seeds: int = 8,
                       threshold: float = HUE_THRESHOLD, size: int | None = None, paint: Callable | None = None,
                       keep: Callable | None = None, progress: bool = False) -> dict:
    """The fraction of held-out scenes whose objects get distinct hues, for each object count in
    ``counts`` (2 and 3): ``{count: {"real": f, "model": f, "model_per_seed": [f, ...],
    "expected": f, "n_real": scenes decided, "n_model": scenes decided per seed (mean)}}``, each
    ``f`` in [0, 1] (None when no scene was decided). ``model`` is the mean over ``seeds`` seeds
    (0 to seeds - 1) of each seed's fraction; ``expected`` the chance for independent uniform hues
    (:func:`expected_distinct`). The outputs come from ``paint(sketch, seed)`` (an RGB uint8
    array of ``size`` px), by default :func:`seeded_painter` of ``translator``; ``size`` defaults to
    the translator's. ``keep(count, k, sketch, photo, masks, outputs)`` is called for each scene
    (e.g. to save pictures). Raises ValueError when neither a translator nor a painter is given, or a
    painter without a translator and no ``size``."""
    if paint is None:
        if translator is None:
            raise ValueError("give a translator or a paint function")
        paint = seeded_painter(translator)
    if size is None and translator is None:
        raise ValueError("give the outputs' size with a paint function and no translator")
    size = int(size or translator.image_size)
    erosion = default_erosion(size)
    from trainer.evaluation import bar
    report = {}
    for count in counts:
        real, model = [], [[] for _ in range(seeds)]
        b = bar(n, f"hues, {count} objects", progress)
        for k, (sketch, photo, masks) in enumerate(held_out_scenes(count, n, size)):
            photo_arr = np.asarray(photo.convert("RGB"))
            real.append(distinct_hues(scene_hues(photo_arr, masks, erosion), threshold))
            outputs = [paint(sketch, s) for s in range(seeds)]
            for s, out in enumerate(outputs):
                if out.shape[:2] != photo_arr.shape[:2]:
                    out = np.asarray(Image.fromarray(out).resize(photo_arr.shape[1::-1], Image.BICUBIC))
                model[s].append(distinct_hues(scene_hues(out, masks, erosion), threshold))
            if keep is not None:
                keep(count, k, sketch, photo, masks, outputs)
            b.update()
        b.close()
        per_seed = [_fraction(m) for m in model]
        decided = [f for f in per_seed if f is not None]
        report[count] = {"real": _fraction(real), "model": float(np.mean(decided)) if decided else None,
                         "model_per_seed": per_seed, "expected": expected_distinct(count, threshold),
                         "n_real": sum(v is not None for v in real),
                         "n_model": float(np.mean([sum(v is not None for v in m) for m in model]))}
    return report
