"""Unpaired translation (CycleGAN): training never saw a scene in both domains, but the
procedural pair has the hidden correspondence, so each translation has a ground truth.

Per direction (``AtoB``: photo -> cartoon, ``BtoA``: cartoon -> photo): ``l1`` and ``psnr`` of
the translation to the same scene in the other domain, the identity baseline (output = input)
``l1_identity`` / ``psnr_identity``, and ``domain_accuracy``: outputs the ``shapes-unpaired``
evaluator puts in the target domain.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from trainer.data.imageio import open_image
from trainer.evaluation import EvaluationError, bar, means, score_into, training_resolution
from trainer.evaluators import Evaluator
from trainer.evaluators.specs import EVAL_SEED
from trainer.metrics import mean_l1, psnr


def procedural_items(n: int, size: int, seed: int = EVAL_SEED):
    from trainer.data.sketches import render
    for k in range(n):
        yield render(seed + k, size, style="photo")[0], render(seed + k, size, style="cartoon")[0]


def folder_items(root, n: int | None):
    """``pairs.jsonl`` of the unaligned layout: testA and testB files showing the same scene."""
    index = Path(root) / "pairs.jsonl"
    if not index.is_file():
        raise EvaluationError(f"{index} not found: unpaired evaluation needs the hidden pairs "
                              "(`gan-trainer data synth shapes-unpaired` writes them)")
    for rec in [json.loads(line) for line in index.read_text().splitlines()][:n]:
        yield open_image(Path(root) / rec["A"]), open_image(Path(root) / rec["B"])


def evaluate(translator, data=None, n=None, progress=True, evaluator="shapes-unpaired", **_):
    n = n or 200
    size = translator.image_size
    directions = next(c.choices for c in translator.controls if c.name == "direction")
    ev = Evaluator.load(evaluator)
    items = procedural_items(n, size) if data is None else folder_items(data, n)
    outputs, rows = {d: [] for d in directions}, {d: {} for d in directions}
    b = bar(n, "unpaired", progress)
    at_training = training_resolution(translator)
    for a, bb in items:
        for d in directions:
            src, truth = (a, bb) if d == "AtoB" else (bb, a)
            out = translator.run_array(src, direction=d, **at_training)
            truth = np.asarray(truth.convert("RGB").resize(out.shape[1::-1]))
            src = np.asarray(src.convert("RGB").resize(out.shape[1::-1]))
            outputs[d].append(out)
            score_into(rows[d], "", out, truth, l1=mean_l1, psnr=psnr)
            score_into(rows[d], "_identity", src, truth, l1=mean_l1, psnr=psnr)
        b.update()
    b.close()
    metrics = {"n": len(outputs[directions[0]])}
    for d in directions:
        target = 1 if d == "AtoB" else 0
        metrics[d] = {**means(rows[d]), "domain_accuracy": float(np.mean(ev.predict(outputs[d])["domain"] == target))}
    metrics["evaluator_held_out_accuracy"] = ev.accuracy
    return metrics
