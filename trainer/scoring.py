"""``gan-trainer eval``: score a model file with its method's evaluation (``Method.evaluate``,
one module of :mod:`trainer.evaluation` per task) and make the report."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from trainer.device import resolve_device
from trainer.errors import EvaluationError
from trainer.evaluation import format_report, save_report, write_into_card
from trainer.inference import load
from trainer.modelfile import read_card
from trainer.registry import METHODS, method_of_card

__all__ = ["evaluate", "evaluated_methods", "format_report", "save_report", "write_into_card", "EvaluationError"]


def evaluated_methods() -> list[str]:
    """The methods that have an evaluation, in registry order."""
    return [name for name, cls in METHODS.items() if cls.has_evaluation()]


def evaluate(model, data=None, n: int | None = None, device="cpu", progress: bool = True, precision="fp32",
             **options) -> dict:
    """Score ``model`` (a model file) on ``device`` in inference ``precision`` (fp32 by default, so
    that scores compare; :meth:`~trainer.translator.Translator.set_precision`); returns the report
    ``gan-trainer eval`` writes: model, method, task, data, metrics (nested numbers by name),
    precision (when not fp32), seconds, date (UTC, ISO 8601).
    ``data``: a folder with ground truth (default: held-out seeds of the procedural dataset the
    model was trained on); ``n``: test items; ``options`` go to the evaluation (its picture, the
    sketch size, controls...). Raises :class:`~trainer.errors.EvaluationError` when ``n`` is below 1, the method has
    no evaluation or there is no ground truth."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise EvaluationError(f"n = {n!r}: the number of test items is a whole number of at least 1")
    card = read_card(model)
    method = card.get("method")
    try:
        cls = method_of_card(card)
    except ValueError:
        cls = None
    if cls is None or not cls.has_evaluation():
        raise EvaluationError(f"no evaluation for method {method!r}; evaluated: {', '.join(evaluated_methods())}")
    dataset = card.get("training", {}).get("dataset", "")
    if data is None and not dataset:
        raise EvaluationError(f"{model} was not trained on a procedural dataset; pass --data FOLDER with ground truth")
    translator = load(model, resolve_device(str(device)), precision)
    t0 = time.time()
    metrics = cls.evaluate(translator, data=data, n=n, progress=progress, **options)
    return {"model": str(model), "method": cls.name, "task": card.get("task"), "data": str(data) if data else
            f"procedural {dataset} (held-out seeds)", "metrics": metrics,
            **({"precision": translator.precision_note} if translator.dtype is not None else {}),
            "seconds": round(time.time() - t0, 1), "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
