"""Evaluators: small classifiers trained on real procedural images that score generated ones
(accuracy of what they find) and embed them (their penultimate features define the in-domain
Frechet distance). The bundled ones live in ``assets/evaluators/<dataset>.safetensors``;
``gan-trainer evaluator train DATASET`` makes them (:mod:`trainer.evaluators.training`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from trainer.evaluators.specs import Spec, get_spec
from trainer.data.transforms import to_tensor
from trainer.modelfile import ModelFileError, load_model, load_strict
from trainer.nets.evaluator import EvaluatorNet

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "evaluators"


def default_path(dataset: str) -> Path:
    return ASSETS / f"{dataset}.safetensors"


def as_batch(images, size: int) -> torch.Tensor:
    """PIL images or uint8 HWC arrays (any size, any mode) -> float NCHW in [-1, 1] at ``size``
    (LANCZOS when the size differs, as the procedural datasets are downsampled)."""
    out = []
    for im in images:
        im = (Image.fromarray(np.ascontiguousarray(im)) if isinstance(im, np.ndarray) else im).convert("RGB")
        out.append(to_tensor(im if im.size == (size, size) else im.resize((size, size), Image.LANCZOS)))
    return torch.stack(out)


class Evaluator:
    def __init__(self, spec: Spec, net: EvaluatorNet, card: dict, device="cpu"):
        self.spec, self.net, self.card = spec, net.eval().to(device), card
        self.input_size = int(card.get("input_size", spec.input_size))  # the size it was trained at
        self.device = torch.device(device)

    @classmethod
    def load(cls, dataset_or_path, device="cpu") -> "Evaluator":
        """An evaluator by dataset name (the bundled file) or from a file."""
        path = Path(dataset_or_path)
        if not path.suffix:
            path = default_path(str(dataset_or_path))
            if not path.is_file():
                raise FileNotFoundError(f"no evaluator for {dataset_or_path!r} at {path}; make it with "
                                        f"`gan-trainer evaluator train {dataset_or_path}`")
        tensors, card = load_model(path)
        if card.get("kind") != "evaluator":
            raise ModelFileError(f"{path} is a model file but not an evaluator (kind {card.get('kind')!r})")
        spec = get_spec(card["dataset"])
        net = EvaluatorNet(**card["net"])
        load_strict(net, tensors, f"evaluator {path.name}")
        return cls(spec, net, card, device)

    @torch.inference_mode()
    def _run(self, images, batch_size: int = 128):
        for i in range(0, len(images), batch_size):
            x = as_batch(images[i:i + batch_size], self.input_size).to(self.device)
            feats = self.net.embed(x)
            yield feats, {name: head(feats) for name, head in self.net.heads.items()}

    def features(self, images) -> np.ndarray:
        """Penultimate features (N, D), float64, of PIL images or uint8 arrays."""
        return self.predict(images, with_features=True)[1]

    def predict(self, images, with_features: bool = False):
        """Per head: the class index (int array) or the regressed value (float array)."""
        heads = self.card["net"]["heads"]  # the file's heads (an older file may have fewer than the spec)
        feats, outs = [], {h: [] for h in heads}
        for f, logits in self._run(images):
            feats.append(f.double().cpu().numpy())
            for h, n in heads.items():
                v = logits[h].float().cpu()
                outs[h].append(v[:, 0].numpy() if n == 1 else v.argmax(1).numpy())
        pred = {h: np.concatenate(v) for h, v in outs.items()}
        return (pred, np.concatenate(feats)) if with_features else pred

    @property
    def accuracy(self) -> float:
        return float(self.card.get("held_out", {}).get("accuracy", float("nan")))
