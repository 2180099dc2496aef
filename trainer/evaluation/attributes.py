"""Attribute editing (StarGAN): for every test face and every domain of the model, flip that
attribute (turning a hair colour on turns the others off), and check the output with the
``faces`` evaluator and against the counterfactual rendering of the same identity.

- ``accuracy[<attribute>]``: edits of that attribute where the evaluator reads the target value;
  ``accuracy_overall`` their mean over all edits; ``all_targets_accuracy``: edits where every one
  of the model's attributes reads as the target (the edit kept the others).
- ``l1_to_counterfactual``: mean L1 of output to the ground-truth rendering (0..1 units), with
  ``l1_input_to_counterfactual`` (doing nothing) as the baseline and ``l1_ratio_to_baseline``.
- ``no_change_l1``: the edit to the face's own labels (nothing to change), its mean L1 to the input.
- ``untouched_l1``: mean L1 of output to input over the pixels that no single-domain edit of that
  face changes in the ground truth (background, clothes, eyes...): what an edit must leave alone.
- ``identity``: the faces evaluator's regressions of roll, face width, face height and skin
  brightness (in its normalised units, about [-1, 1]) read on each output and on its
  counterfactual: ``shift`` the mean absolute difference per measure, ``baseline`` the same
  between the input and the counterfactual (the evaluator's own noise), ``kept`` the fraction of
  edits with every measure within ``IDENTITY_TOLERANCE``.
With ``picture`` a PNG is written: for 8 faces, the input, then each single-domain edit beside its
counterfactual ground truth.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from trainer.data.imageio import open_image
from trainer.data.synth import flip_attribute
from trainer.evaluation import EvaluationError, bar, training_resolution
from trainer.evaluators import Evaluator
from trainer.evaluators.specs import EVAL_SEED, FACE_BINARY, FACE_REGRESSION, HAIR_CLASSES
from trainer.images import image_grid
from trainer.metrics import mean_l1

IDENTITY_TOLERANCE = 0.25  # evaluator units: 1.75 degrees of roll, 0.005 of face width or height
PICTURE_FACES = 8
UNTOUCHED = 2 / 255  # a ground-truth pixel that moves less than this under every edit is untouched


def procedural_items(n: int, size: int, domains, seed: int = EVAL_SEED):
    from trainer.data.faces import draw_attributes, render
    for k in range(n):
        attrs = draw_attributes(seed + k)
        yield render(seed + k, attrs, size), attrs, {d: render(seed + k, flip_attribute(attrs, d), size) for d in domains}


def folder_items(root, n: int | None, domains):
    """The ``faces`` layout's test partition: ``eval/identities.jsonl`` and ``eval/counterfactuals/``."""
    root = Path(root)
    index = root / "eval" / "identities.jsonl"
    if not index.is_file():
        raise EvaluationError(f"{index} not found: attribute evaluation needs the counterfactual ground truth "
                              "that `gan-trainer data synth faces` writes")
    recs = [r for r in map(json.loads, index.read_text().splitlines()) if r["partition"] == 2][:n]
    for r in recs:
        stem = r["file"][:-4]
        yield (open_image(root / "images" / r["file"]), r["attributes"],
               {d: open_image(root / "eval" / "counterfactuals" / f"{stem}_{d}.png") for d in domains})


def reads(pred: dict, i: int, attribute: str) -> bool:
    """The evaluator's reading of one CelebA attribute for image ``i``."""
    if attribute in HAIR_CLASSES[:3]:
        return int(pred["hair"][i]) == HAIR_CLASSES.index(attribute)
    if attribute in FACE_BINARY:
        return bool(pred[attribute][i])
    raise EvaluationError(f"the faces evaluator does not read {attribute!r}")


def _array(image, shape) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize(shape[1::-1]))


def picture_rows(rows) -> Image.Image:
    """Rows of uint8 HWC arrays as one image with 2 px gaps (white)."""
    return image_grid([[torch.from_numpy(np.array(a)).permute(2, 0, 1).float() / 127.5 - 1 for a in row] for row in rows])


def evaluate(translator, data=None, n=None, progress=True, evaluator="faces", picture=None, **_):
    domains = list(translator.card.get("domains", []))
    if not domains:
        raise EvaluationError("the model has no attribute domains")
    n = n or 200
    size = translator.image_size
    ev = Evaluator.load(evaluator)
    items = procedural_items(n, size, domains) if data is None else folder_items(data, n, domains)
    outputs, truths, targets, edited, l1, l1_base, same, untouched, rows = [], [], [], [], [], [], [], [], []
    inputs = []
    b = bar(n * (len(domains) + 1), "attributes", progress)
    at_training = training_resolution(translator)
    for image, attrs, counterfactuals in items:
        x = translator.run_array(image, **at_training, **{k: bool(attrs[k]) for k in domains})  # nothing to change
        source = _array(image, x.shape)
        same.append(mean_l1(x, source))
        b.update()
        row, moved = [source], np.zeros(x.shape[:2], bool)
        face_outputs = []
        for d in domains:
            target = flip_attribute(attrs, d)
            out = translator.run_array(image, **at_training, **{k: bool(target[k]) for k in domains})
            truth = _array(counterfactuals[d], out.shape)
            moved |= np.abs(truth.astype(np.int16) - source.astype(np.int16)).max(2) > UNTOUCHED * 255
            outputs.append(out)
            truths.append(truth)
            inputs.append(source)
            targets.append(target)
            edited.append(d)
            l1.append(mean_l1(out, truth))
            l1_base.append(mean_l1(source, truth))
            face_outputs.append(out)
            row += [out, truth]
            b.update()
        keep = ~moved
        if keep.any():
            untouched += [float(np.abs(o[keep].astype(np.float32) - source[keep].astype(np.float32)).mean() / 255)
                          for o in face_outputs]
        if len(rows) < PICTURE_FACES:
            rows.append(row)
    b.close()
    pred = ev.predict(outputs)
    pred_truth, pred_input = ev.predict(truths), ev.predict(inputs)
    hit = np.array([reads(pred, i, d) == bool(targets[i][d]) for i, d in enumerate(edited)])
    every = np.array([all(reads(pred, i, k) == bool(targets[i][k]) for k in domains) for i in range(len(edited))])
    per = {d: float(hit[[e == d for e in edited]].mean()) for d in domains}
    shift = {m: np.abs(pred[m] - pred_truth[m]) for m in FACE_REGRESSION}
    identity = {"shift": {m: float(v.mean()) for m, v in shift.items()},
                "baseline": {m: float(np.abs(pred_input[m] - pred_truth[m]).mean()) for m in FACE_REGRESSION},
                "kept": float(np.mean(np.all([v <= IDENTITY_TOLERANCE for v in shift.values()], 0))),
                "tolerance": IDENTITY_TOLERANCE}
    if picture:
        picture_rows(rows).save(picture)
    l1_mean, base_mean = float(np.mean(l1)), float(np.mean(l1_base))
    return {"n_faces": len(outputs) // len(domains), "n_edits": len(outputs), "accuracy": per,
            "accuracy_overall": float(hit.mean()), "all_targets_accuracy": float(every.mean()),
            "face_rate": float(np.mean(pred["face"] == 1)),
            "l1_to_counterfactual": l1_mean, "l1_input_to_counterfactual": base_mean,
            "l1_ratio_to_baseline": l1_mean / max(base_mean, 1e-12),
            "no_change_l1": float(np.mean(same)), "untouched_l1": float(np.mean(untouched)) if untouched else float("nan"),
            "identity": identity, "evaluator_held_out_accuracy": ev.accuracy}
