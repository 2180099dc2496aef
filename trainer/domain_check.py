"""Out-of-domain inputs: does an image look like the procedural data a model was trained on?

A bundled model trained on procedural faces answers a real photo with noise. The faces evaluator
was trained to tell a procedural face from anything else (shuffled face parts, object photos),
so its ``face`` head judges the input of every model trained on the ``faces`` dataset. Other
datasets have no judge yet: the shapes evaluator's features were tried as a distance to the
training data (a diagonal Mahalanobis distance) and did not separate photos, faces or noise
from in-domain scenes, so no warning is given rather than a wrong one.
"""
from __future__ import annotations

import threading

import numpy as np

_lock = threading.Lock()
_evaluators: dict = {}


def judges(card: dict) -> bool:
    """Whether the inputs of the model described by ``card`` can be judged here."""
    return (card.get("training") or {}).get("dataset") == "faces" and card.get("task") == "attributes"


def input_warning(card: dict, image) -> str | None:
    """One line saying why ``image`` (PIL image or uint8 HWC array) is unlike the training data of
    the model described by ``card``, or None when it looks in-domain or nothing can judge it."""
    if not judges(card):
        return None
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
