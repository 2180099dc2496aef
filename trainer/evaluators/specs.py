"""What each evaluator learns: for a procedural dataset, how to draw a real example with its
ground truth (a function of a seed), the heads, and how predictions are scored.

- ``sketches``: photos of one to three objects; one head per object kind giving how many of
  that kind the photo shows (0 to 3), so type and count are both read. A scene is right when
  every kind's count is. The counts are learnt under nuisance too (noise, colour blotches,
  greying, blur: see :func:`trainer.evaluators.training.nuisance`); three regressions of the clean
  photo's look (saturation, colourfulness, brightness) keep colour in the features, so that the
  in-domain FID still tells a grey or blotchy photo from a real one.
- ``faces``: the hair colour (black, blond, brown, grey), Male, Young, Eyeglasses, Smiling, and
  whether the image is a face at all (negatives: faces cut in a 4x4 grid and shuffled, and
  object photos); regressions of what style mixing should keep from the coarse layers (roll,
  face width and height) and take from the fine ones (skin brightness), scaled to about [-1, 1].
- ``shapes-unpaired``: the CycleGAN pair's domain, shaded photo (A) or flat cartoon (B).

Seeds: training examples from ``TRAIN_SEED``, held-out ones from ``HELD_OUT_SEED`` on; the
procedural training sets of the GAN presets use seeds below 10**8 * 10 (``seed * 10_000_019 + k``
with seed 0), and model evaluation uses ``EVAL_SEED``, so the three never meet.
"""
from __future__ import annotations

import colorsys
import random
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from trainer.data.shapes import KINDS

TRAIN_SEED = 1_000_000_000
HELD_OUT_SEED = 1_500_000_000
EVAL_SEED = 1_800_000_000
IGNORE = -1  # a class target that a head does not learn from (face attributes of a non-face)

HAIR_CLASSES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "grey")
FACE_BINARY = ("Male", "Young", "Eyeglasses", "Smiling")
FACE_REGRESSION = {"roll": (0.0, 7.0), "width": (0.21, 0.02), "height": (0.27, 0.02), "skin": (0.67, 0.29)}


@dataclass
class Spec:
    name: str
    heads: dict[str, int]  # head -> classes (1: a regression)
    example: Callable[[int, int], tuple[np.ndarray, dict]]  # (seed, size) -> (uint8 HWC, targets)
    input_size: int = 64
    notes: str = ""
    nuisance: bool = False  # train half of each batch under noise, colour blotches, greying, blur
    appearance: tuple = field(default_factory=tuple)  # regressions of the clean image's look: not under nuisance

    def score(self, pred: dict[str, np.ndarray], true: dict[str, np.ndarray]) -> dict[str, float]:
        """Accuracy of every class head (ignored targets left out), R^2 of every regression, and
        the spec's overall figure under ``accuracy``."""
        out = {}
        for head, n in self.heads.items():
            if head not in true or head not in pred:
                continue
            t, p = true[head], pred[head]
            if n == 1:
                keep = ~np.isnan(t)
                if keep.any():
                    resid = ((p[keep] - t[keep]) ** 2).sum()
                    out[f"r2_{head}"] = float(1 - resid / max(((t[keep] - t[keep].mean()) ** 2).sum(), 1e-12))
            else:
                keep = t != IGNORE
                if keep.any():
                    out[f"acc_{head}"] = float((p[keep] == t[keep]).mean())
        out.update(OVERALL[self.name](pred, true))
        return out


# --- sketches ------------------------------------------------------------------------------------

def counts_of(objects) -> dict[str, int]:
    """Ground truth of a scene for the ``sketches`` heads: how many objects of each kind."""
    return {f"count_{k}": min(3, list(objects).count(k)) for k in KINDS}


SKETCH_APPEARANCE = {"saturation": (0.357, 0.085), "colourfulness": (0.237, 0.055), "brightness": (0.528, 0.077)}


def appearance_of(image: np.ndarray) -> dict[str, float]:
    """The ``sketches`` appearance targets of a photo, scaled to about [-1, 1] (the training set's
    mean and spread)."""
    from trainer.metrics import colourfulness, saturation
    raw = {"saturation": saturation(image), "colourfulness": colourfulness(image),
           "brightness": float(np.asarray(image, np.float64).mean() / 255)}
    return {k: (raw[k] - m) / s for k, (m, s) in SKETCH_APPEARANCE.items()}


def _sketch_example(seed: int, size: int):
    """A scene photo; one in 25 is an empty room (every count 0), so that an output without
    objects is read as such."""
    from trainer.data.sketches import render
    photo, _, labels = render(seed, size, count=0 if random.Random(seed * 7 + 3).random() < 0.04 else None)
    photo = np.asarray(photo)
    return photo, {**counts_of(labels["objects"]), **appearance_of(photo)}


def _sketch_overall(pred, true):
    heads = [f"count_{k}" for k in KINDS]
    return {"accuracy": float(np.all([pred[h] == true[h] for h in heads], axis=0).mean())}


# --- faces ---------------------------------------------------------------------------------------

def face_targets(identity_seed: int, attrs: dict) -> dict:
    """Ground truth of a rendered face for the ``faces`` heads."""
    from trainer.data.faces import HAIR, Identity
    ident = Identity.draw(identity_seed)
    hair = next((i for i, h in enumerate(HAIR) if attrs.get(h)), 3)
    skin_v = colorsys.rgb_to_hsv(*(c / 255 for c in ident.skin))[2]
    raw = {"roll": ident.roll, "width": ident.a, "height": ident.b, "skin": skin_v}
    t = {"face": 1, "hair": hair, **{a: int(bool(attrs.get(a))) for a in FACE_BINARY}}
    t.update({k: (raw[k] - m) / s for k, (m, s) in FACE_REGRESSION.items()})
    return t


def _non_face_targets() -> dict:
    return {"face": 0, "hair": IGNORE, **{a: IGNORE for a in FACE_BINARY}, **{k: float("nan") for k in FACE_REGRESSION}}


def _face_example(seed: int, size: int):
    from trainer.data.faces import draw_attributes, render
    r = random.Random(seed)
    kind = r.random()
    if kind < 0.85:
        attrs = draw_attributes(seed)
        return np.asarray(render(seed, attrs, size)), face_targets(seed, attrs)
    if kind < 0.93:  # the parts of a face in the wrong places
        img = np.asarray(render(seed, draw_attributes(seed), size))
        k = size // 4
        tiles = [img[i:i + k, j:j + k] for i in range(0, size, k) for j in range(0, size, k)]
        order = list(range(16))
        while order == sorted(order):
            r.shuffle(order)
        rows = [np.concatenate([tiles[order[4 * i + j]] for j in range(4)], 1) for i in range(4)]
        return np.ascontiguousarray(np.concatenate(rows, 0)), _non_face_targets()
    from trainer.data.sketches import render as scene
    return np.asarray(scene(seed, size)[0]), _non_face_targets()


def _face_overall(pred, true):
    keep = true["face"] == 1
    accs = [float((pred["hair"][keep] == true["hair"][keep]).mean())]
    accs += [float((pred[a][keep] == true[a][keep]).mean()) for a in FACE_BINARY]
    return {"accuracy": float(np.mean(accs))}


# --- shapes-unpaired -----------------------------------------------------------------------------

def _domain_example(seed: int, size: int):
    from trainer.data.sketches import render
    style = "photo" if seed % 2 == 0 else "cartoon"
    return np.asarray(render(seed, size, style=style)[0]), {"domain": seed % 2}


def _domain_overall(pred, true):
    return {"accuracy": float((pred["domain"] == true["domain"]).mean())}


OVERALL = {"sketches": _sketch_overall, "faces": _face_overall, "shapes-unpaired": _domain_overall}

SPECS = {
    "sketches": Spec("sketches", {**{f"count_{k}": 4 for k in KINDS}, **{k: 1 for k in SKETCH_APPEARANCE}},
                     _sketch_example, nuisance=True, appearance=tuple(SKETCH_APPEARANCE),
                     notes="objects of each kind in a photo (0-3), learnt under nuisance; saturation, "
                           "colourfulness, brightness of the clean photo (regressions); accuracy = every count right"),
    "faces": Spec("faces", {"face": 2, "hair": 4, **{a: 2 for a in FACE_BINARY}, **{k: 1 for k in FACE_REGRESSION}},
                  _face_example, notes="face or not; hair colour; Male, Young, Eyeglasses, Smiling; "
                                       "roll, width, height, skin brightness (regressions); "
                                       "accuracy = mean over the five attribute heads on faces"),
    "shapes-unpaired": Spec("shapes-unpaired", {"domain": 2}, _domain_example,
                            notes="domain: 0 = shaded photo (A), 1 = flat cartoon (B)"),
}


def get_spec(name: str) -> Spec:
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"no evaluator for dataset {name!r}; known: {', '.join(SPECS)}") from None
