"""``gan-trainer eval``: a model file's quality as numbers against ground truth, one module per
task: :mod:`.sketch` (sketch2photo and aligned photo2photo), :mod:`.attributes` (attribute edits),
:mod:`.unpaired` (unpaired translation), :mod:`.style` (style-based sampling), :mod:`.superres`
(super-resolution). A method's ``evaluate`` hook picks its module; the command is
:func:`trainer.scoring.evaluate`. Without ``--data`` the ground truth is drawn from the procedural
dataset the model was trained on, from seeds no training set uses (``EVAL_SEED``); with ``--data``
it is read from a folder in that dataset's layout.

This package holds the evaluations' shared helpers and the report's reading and writing.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from trainer.errors import EvaluationError
from trainer.modelfile import load_model, save_model
from trainer.progress import Progress

__all__ = ["EvaluationError", "bar", "training_resolution", "score_into", "means", "write_into_card",
           "format_report", "save_report"]


def bar(n: int, desc: str, enabled: bool = True) -> Progress:
    return Progress(n, desc=desc, unit="img", enabled=enabled)


def training_resolution(translator) -> dict:
    """``{"resolution": "training"}`` for a translator with that control, else nothing: models are
    scored at their training size (as the evaluators' classifiers see images, and as the bundled
    models' numbers were taken), whatever the size of a ``--data`` folder's images."""
    return {"resolution": "training"} if any(c.name == "resolution" for c in getattr(translator, "controls", ())) \
        else {}


def score_into(rows: dict, suffix: str, image, truth, **metrics) -> None:
    """Append ``metric(image, truth)`` to ``rows[name + suffix]`` for each named metric."""
    for name, fn in metrics.items():
        rows.setdefault(name + suffix, []).append(fn(image, truth))


def means(rows: dict) -> dict:
    return {k: float(sum(v) / len(v)) for k, v in rows.items()}


def write_into_card(model, report: dict) -> None:
    """Store a report's metrics in the model file's card (``eval``), rewriting the file atomically."""
    tensors, card = load_model(model)
    stored = card.pop("stored_dtype", None)
    card.pop("format", None)
    card["eval"] = {k: report[k] for k in ("data", "metrics", "date")}
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
