"""``gan-trainer eval``: a model file's quality as numbers against ground truth.

The model's method picks the evaluation (one module each): pix2pix -> :mod:`.sketch`, StarGAN ->
:mod:`.attributes`, CycleGAN -> :mod:`.unpaired`, StyleGAN -> :mod:`.style`, SRGAN/SRResNet ->
:mod:`.superres`. Without ``--data`` the ground truth is drawn from the procedural dataset the
model was trained on, from seeds no training set uses (``EVAL_SEED``); with ``--data`` it is read
from a folder in that dataset's layout.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from trainer.modelfile import load_model, read_card, save_model
from trainer.progress import Progress


class EvaluationError(ValueError):
    """A model or dataset that this evaluation cannot score; the message says why."""


def _evaluations():
    from trainer.evaluation import attributes, sketch, style, superres, unpaired
    return {"pix2pix": sketch.evaluate, "stargan": attributes.evaluate, "cyclegan": unpaired.evaluate,
            "stylegan": style.evaluate, "srgan": superres.evaluate}


def bar(n: int, desc: str, enabled: bool = True) -> Progress:
    return Progress(n, desc=desc, unit="img", enabled=enabled)


def score_into(rows: dict, suffix: str, image, truth, **metrics) -> None:
    """Append ``metric(image, truth)`` to ``rows[name + suffix]`` for each named metric."""
    for name, fn in metrics.items():
        rows.setdefault(name + suffix, []).append(fn(image, truth))


def means(rows: dict) -> dict:
    return {k: float(sum(v) / len(v)) for k, v in rows.items()}


def evaluate(model, data=None, n: int | None = None, device="cpu", progress: bool = True, **options) -> dict:
    """Score ``model`` (a model file); returns the report written by ``gan-trainer eval``."""
    from trainer import inference
    from trainer.device import resolve_device
    card = read_card(model)
    method = card.get("method")
    evaluations = _evaluations()
    if method not in evaluations:
        raise EvaluationError(f"no evaluation for method {method!r}; evaluated: {', '.join(evaluations)}")
    dataset = card.get("training", {}).get("dataset", "")
    if data is None and not dataset:
        raise EvaluationError(f"{model} was not trained on a procedural dataset; pass --data FOLDER with ground truth")
    translator = inference.load(model, resolve_device(str(device)))
    t0 = time.time()
    metrics = evaluations[method](translator, data=data, n=n, progress=progress, **options)
    return {"model": str(model), "method": method, "task": card.get("task"), "data": str(data) if data else
            f"procedural {dataset} (held-out seeds)", "metrics": metrics, "seconds": round(time.time() - t0, 1),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def write_into_card(model, report: dict) -> None:
    """Store a report's metrics in the model file's card (``eval``), rewriting the file atomically."""
    tensors, card = load_model(model)
    stored = card.pop("stored_dtype", None)
    card.pop("format", None)
    card["eval"] = {k: report[k] for k in ("data", "metrics", "date")}
    import torch
    save_model(model, tensors, card, dtype=getattr(torch, stored) if stored else None)


def format_report(report: dict) -> str:
    lines = [f"{report['model']} ({report['method']}, {report['data']}, {report['seconds']} s)"]

    def walk(d, indent):
        for k, v in d.items():
            if isinstance(v, dict):
                lines.append(" " * indent + f"{k}:")
                walk(v, indent + 2)
            else:
                lines.append(" " * indent + f"{k}: {v:.4f}" if isinstance(v, float) else " " * indent + f"{k}: {v}")
    walk(report["metrics"], 2)
    return "\n".join(lines)


def save_report(report: dict, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    return path
