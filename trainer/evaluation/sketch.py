"""Sketch to photo (pix2pix): is the right object there, does the output look like the real
photos, is it as colourful as they are, and does it keep the sketch's lines?

- ``object_accuracy``: the ``sketches`` evaluator finds exactly the scene's objects (every kind's
  count right) in the output; ``object_accuracy_real`` is the same on the real photos (its ceiling).
  Finer: ``objects_found``, the share of drawn objects it counts (a kind's count up to the true
  one), and ``extra_objects``, objects it counts beyond the scene's per output.
- ``fid``: in-domain Frechet distance between the outputs' and the real photos' evaluator features.
- ``saturation_output`` / ``saturation_real`` and their ratio: L1 alone gives the desaturated mean
  of the colours a sketch allows (the pix2pix paper's Figure 4 and Table 1's colour histograms).
- ``edge_f1``: the output's edges against the sketch's lines (2 px tolerance at 128 px), with the
  real photos' figure as the reference.
- ``l1_to_photo``: mean L1 to the scene's own photo (small only if colours were guessed right).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from trainer.data.aligned import split_pair
from trainer.data.imageio import open_image, scan_images
from trainer.evaluation import EvaluationError, bar, training_resolution
from trainer.evaluators import Evaluator
from trainer.evaluators.specs import EVAL_SEED, counts_of
from trainer.metrics import edge_agreement, frechet_distance, mean_l1, saturation


def procedural_items(n: int, size: int, seed: int = EVAL_SEED, stroke_width: float | None = None):
    """The held-out procedural scenes at ``size`` px; ``stroke_width``: their sketches' lines that
    many pixels wide instead of each seed's own (the same scenes and photos)."""
    from trainer.data.sketches import render
    for k in range(n):
        photo, sketch, labels = render(seed + k, size, stroke_width=stroke_width)
        yield sketch, photo, counts_of(labels["objects"])


def folder_items(root, n: int | None, direction: str = "AtoB"):
    """The aligned layout's ``test/`` (else ``val/``, else the root); object counts from
    ``labels.jsonl`` when the dataset has it (the procedural one does)."""
    root = Path(root)
    folder = next((root / p for p in ("test", "val") if (root / p).is_dir()), root)
    labels = {}
    if (root / "labels.jsonl").is_file():
        for line in (root / "labels.jsonl").read_text().splitlines():
            rec = json.loads(line)
            labels[rec["file"]] = counts_of(rec["objects"])
    paths = scan_images(folder, log=None).images[:n]
    if not paths:
        raise EvaluationError(f"no images in {folder}")
    for p in paths:
        a, b = split_pair(open_image(p))
        sketch, photo = (a, b) if direction == "AtoB" else (b, a)
        yield sketch, photo, labels.get(p.relative_to(root).as_posix())


def evaluate(translator, data=None, n=None, progress=True, evaluator="sketches", sketch_size=None,
             stroke_width=None, controls=None, **_):
    """``sketch_size``: the procedural sketches rendered at that many pixels (default the model's
    size), with lines ``stroke_width`` px wide (default each seed's own, 1 to 4 % of the side);
    ``controls``: the translator's controls (e.g. ``{"strokes": False}``). The outputs are scored
    at the model's own size."""
    size = translator.image_size
    n = n or 500
    ev = Evaluator.load(evaluator)
    if data is None:
        width = {"stroke_width": stroke_width} if stroke_width else {}
        items = procedural_items(n, int(sketch_size or size), **width)
    elif sketch_size or stroke_width:
        raise EvaluationError("--sketch-size and --stroke-width render the procedural sketches; not with --data")
    else:
        items = folder_items(data, n, translator.card.get("direction", "AtoB"))
    given = dict(controls or {})
    controls = {**training_resolution(translator), **given}  # scored at the model's size unless asked
    if any(c.name == "output_size" for c in translator.controls):
        controls.setdefault("output_size", "model")  # a 512 px sketch is scored on the model's 128 px photo
    if controls:
        translator.check_controls(controls)  # a wrong name or value is refused before any rendering
    outputs, reals, truths, edges_out, edges_real = [], [], [], [], []
    b = bar(n, "sketch2photo", progress)
    seeded = any(c.name == "seed" for c in translator.controls)
    for k, (sketch, photo, truth) in enumerate(items):  # a seed per sketch: its own noise or latent code
        out = translator.run_array(sketch, **{**controls, **({"seed": k} if seeded else {})})
        photo = np.asarray(photo.convert("RGB").resize(out.shape[1::-1]))
        outputs.append(out)
        reals.append(photo)
        truths.append(truth)
        tolerance = max(1, round(out.shape[0] / 64))
        lines = sketch.resize(out.shape[1::-1])
        edges_out.append(edge_agreement(lines, out, tolerance)["f1"])
        edges_real.append(edge_agreement(lines, photo, tolerance)["f1"])
        b.update()
    b.close()
    pred_out, feats_out = ev.predict(outputs, with_features=True)
    pred_real, feats_real = ev.predict(reals, with_features=True)
    sat_out = float(np.mean([saturation(o) for o in outputs]))
    sat_real = float(np.mean([saturation(r) for r in reals]))
    metrics = {"n": len(outputs), "fid": frechet_distance(feats_out, feats_real),
               "saturation_output": sat_out, "saturation_real": sat_real,
               "saturation_ratio": sat_out / max(sat_real, 1e-9),
               "edge_f1": float(np.mean(edges_out)), "edge_f1_real": float(np.mean(edges_real)),
               "l1_to_photo": float(np.mean([mean_l1(o, r) for o, r in zip(outputs, reals)]))}
    labelled = [i for i, t in enumerate(truths) if t is not None]
    if labelled:
        def accuracy(pred):
            return float(np.mean([all(pred[h][i] == truths[i][h] for h in truths[i]) for i in labelled]))
        metrics["object_accuracy"] = accuracy(pred_out)
        metrics["object_accuracy_real"] = accuracy(pred_real)
        found = sum(min(int(pred_out[h][i]), t) for i in labelled for h, t in truths[i].items())
        extra = sum(max(int(pred_out[h][i]) - t, 0) for i in labelled for h, t in truths[i].items())
        metrics["objects_found"] = found / max(1, sum(sum(truths[i].values()) for i in labelled))
        metrics["extra_objects"] = extra / len(labelled)
    metrics["evaluator_held_out_accuracy"] = ev.accuracy
    if sketch_size:
        metrics["sketch_size"] = int(sketch_size)
    if stroke_width:
        metrics["stroke_width"] = float(stroke_width)
    if given:
        metrics["controls"] = given
    return metrics
