"""Out-of-domain inputs: does an image look like the procedural data a model was trained on?

A bundled model trained on procedural faces answers a real photo with noise. The faces evaluator
was trained to tell a procedural face from anything else (shuffled face parts, object photos),
so its ``face`` head judges the input of every model trained on the ``faces`` dataset. A
sketch2photo model's input must be a line drawing: dark lines on a light ground
(:func:`sketch_warning`); a photo opened as a sketch is named as such, with the way to trace its
outlines. Other datasets have no judge yet: the shapes evaluator's features were tried as a
distance to the training data (a diagonal Mahalanobis distance) and did not separate photos,
faces or noise from in-domain scenes, so no warning is given rather than a wrong one.
"""
from __future__ import annotations

import functools
import threading

import numpy as np

_lock = threading.Lock()
_evaluators: dict = {}


# a line drawing: at least this share of its pixels light (every channel > LIGHT) and nearly grey (spread
# below GREY): 83-97 % of the procedural sketches, 0-66 % of their photos, 0-77 % of cartoons, 0-1 % of faces
LIGHT, GREY, LIGHT_SHARE = 200, 40, 0.75


def judges(card: dict) -> bool:
    """Whether the inputs of the model described by ``card`` can be judged here."""
    return card.get("task") == "sketch2photo" or \
        (card.get("training") or {}).get("dataset") == "faces" and card.get("task") == "attributes"


def sketch_warning(array: np.ndarray) -> str | None:
    """For a sketch2photo model's input (uint8 HWC RGB, or grey HW / HW1): one line when it is not a line drawing,
    i.e. when under :data:`LIGHT_SHARE` of its pixels (looked at every few pixels) are light and
    grey, else None. A blank canvas is a drawing (of nothing)."""
    step = max(1, max(array.shape[:2]) // 256)
    a = array[::step, ::step, :3] if array.ndim == 3 else array[::step, ::step]
    channels = [a[..., c] for c in range(a.shape[2])] if a.ndim == 3 else [a]
    # the channels' least and greatest value by pairwise minimum / maximum: 0.2 ms at 512 px, where a
    # reduction over a 3-long axis took 4 ms, all of it at the end of a stroke on the Sketch page
    lo, hi = functools.reduce(np.minimum, channels), functools.reduce(np.maximum, channels)
    light = (lo > LIGHT) & (hi - lo < GREY)  # hi >= lo: no uint8 wrap-around
    if light.mean() >= LIGHT_SHARE:
        return None
    return ("Not a line drawing: this model draws a photo from dark lines on a light ground; "
            "Edges from photo... traces a photo's outlines as a sketch.")


def input_warning(card: dict, image) -> str | None:
    """One line saying why ``image`` (PIL image or uint8 HWC array) is unlike the training data of
    the model described by ``card``, or None when it looks in-domain or nothing can judge it."""
    if not judges(card):
        return None
    if card.get("task") == "sketch2photo":
        return sketch_warning(np.asarray(image.convert("RGB")) if hasattr(image, "convert") else image)
    with _lock:
        if "faces" not in _evaluators:
            from trainer.evaluators import Evaluator
            _evaluators["faces"] = Evaluator.load("faces")
        ev = _evaluators["faces"]
    array = np.asarray(image.convert("RGB")) if hasattr(image, "convert") else image
    if int(ev.predict([array])["face"][0]) == 1:
        return None
    return ("Not a face to the faces evaluator: this model was trained on procedural cartoon faces "
            "and cannot edit this image (expect noise).")
