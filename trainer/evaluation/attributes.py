"""Attribute editing (StarGAN): for every test face and every domain of the model, flip that
attribute (turning a hair colour on turns the others off), and check the output with the
``faces`` evaluator and against the counterfactual rendering of the same identity.

- ``accuracy[<attribute>]``: edits of that attribute where the evaluator reads the target value;
  ``accuracy_overall`` their mean over all edits; ``all_targets_accuracy``: edits where every one
  of the model's attributes reads as the target (the edit kept the others).
- ``l1_to_counterfactual``: mean L1 of output to the ground-truth rendering (0..1 units), with
  ``l1_input_to_counterfactual`` (doing nothing) as the baseline.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from trainer.data.imageio import open_image
from trainer.data.synth import flip_attribute
from trainer.evaluation import EvaluationError, bar
from trainer.evaluators import Evaluator
from trainer.evaluators.specs import EVAL_SEED, FACE_BINARY, HAIR_CLASSES
from trainer.metrics import mean_l1


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


def evaluate(translator, data=None, n=None, progress=True, evaluator="faces", **_):
    domains = list(translator.card.get("domains", []))
    if not domains:
        raise EvaluationError("the model has no attribute domains")
    n = n or 200
    size = translator.image_size
    ev = Evaluator.load(evaluator)
    items = procedural_items(n, size, domains) if data is None else folder_items(data, n, domains)
    outputs, targets, edited, l1, l1_base = [], [], [], [], []
    b = bar(n * len(domains), "attributes", progress)
    for image, attrs, counterfactuals in items:
        for d in domains:
            target = flip_attribute(attrs, d)
            out = translator.run_array(image, **{k: bool(target[k]) for k in domains})
            truth = np.asarray(counterfactuals[d].convert("RGB").resize(out.shape[1::-1]))
            outputs.append(out)
            targets.append(target)
            edited.append(d)
            l1.append(mean_l1(out, truth))
            l1_base.append(mean_l1(np.asarray(image.convert("RGB").resize(out.shape[1::-1])), truth))
            b.update()
    b.close()
    pred = ev.predict(outputs)
    hit = np.array([reads(pred, i, d) == bool(targets[i][d]) for i, d in enumerate(edited)])
    every = np.array([all(reads(pred, i, k) == bool(targets[i][k]) for k in domains) for i in range(len(edited))])
    per = {d: float(hit[[e == d for e in edited]].mean()) for d in domains}
    return {"n_faces": len(outputs) // len(domains), "n_edits": len(outputs), "accuracy": per,
            "accuracy_overall": float(hit.mean()), "all_targets_accuracy": float(every.mean()),
            "face_rate": float(np.mean(pred["face"] == 1)),
            "l1_to_counterfactual": float(np.mean(l1)), "l1_input_to_counterfactual": float(np.mean(l1_base)),
            "evaluator_held_out_accuracy": ev.accuracy}
