"""Where model files come from: the bundled ``assets/models/``, the user's models folder and
opened run directories. Cards are read from the file header only (nothing is unpickled) and
validated as data (:func:`trainer.api.read_card`); a file that is not a usable model is
listed as unreadable with the reason, never fatal. Card text is shown as plain text: Qt never
takes it for markup (see :func:`plain_text`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainer import api

BUNDLED = Path(__file__).resolve().parents[1] / "assets" / "models"
CHECKPOINT_SUFFIXES = (".pth", ".ckpt", ".pt")


def plain_text(text: str) -> str:
    """``text`` as Qt shows it literally in a label or a tooltip: Qt takes a text for rich text
    when a tag (or "&lt;") comes before its first line break (``Qt::mightBeRichText``), so a "<" or
    "&" in the first line is replaced by a look-alike ("‹", "＆"); nothing is ever markup."""
    first, sep, rest = str(text).partition("\n")
    return first.replace("<", "\u2039").replace("&", "\uff06") + sep + rest


@dataclass
class ModelEntry:
    path: Path
    card: dict
    source: str  # bundled, user, run, opened
    error: str = ""  # why the file is not a usable model (listed as unreadable)

    @property
    def unreadable(self) -> bool:
        return bool(self.error)

    @property
    def task(self) -> str:
        task = self.card.get("task", "")
        return task if isinstance(task, str) else ""

    @property
    def page(self) -> str:
        """The page that shows this model (:func:`trainer.api.page_of`)."""
        return api.page_of(self.card)

    @property
    def method(self) -> str:
        """The method as a user knows it (:func:`trainer.api.method_label`: BicycleGAN, not pix2pix)."""
        return "unreadable" if self.unreadable else api.method_label(self.card)

    @property
    def name(self) -> str:
        return self.path.parent.name if self.path.name == "model.safetensors" else self.path.stem

    def summary(self) -> str:
        """The card in a few lines: method, task, size, domains, training, metrics; plain text
        (:func:`plain_text`), whatever the card holds."""
        if self.unreadable:
            return plain_text(f"unreadable: {self.error}\n{self.path}")
        try:
            return plain_text(self._summary())
        except (AttributeError, TypeError, ValueError, KeyError) as e:  # a card odd beyond its checks
            return plain_text(f"{self.method} · {self.task or '?'}\n(card not shown: {e})\n{self.path}")

    def _summary(self) -> str:
        c = self.card
        t = c.get("training", {})
        lines = [f"{self.method} · {self.task or '?'} · {c.get('image_size', '?')} px"]
        if c.get("domains"):
            lines.append("domains: " + ", ".join(c["domains"]))
        if c.get("directions"):
            lines.append("directions: " + ", ".join(c["directions"]))
        if t.get("source"):
            lines.append(f"imported from {t['source']}")
        elif t:
            steps = t.get("steps_done", t.get("steps"))
            secs = t.get("seconds")
            lines.append(f"trained: {t.get('preset') or '?'}, {steps} steps"
                         + (f", {secs / 60:.0f} min" if isinstance(secs, (int, float)) else "")
                         + (f" on {t.get('dataset')}" if t.get("dataset") else ""))
        prior = c.get("latent_prior")
        if isinstance(prior, dict) and prior.get("name") == "posterior":
            lines.append(f"codes: a Gaussian fitted to {prior.get('images', '?')} training photos' codes")
        metrics = api.card_metrics(c)
        # the model's own scores, not the references they are measured against (real photos, held-out)
        shown = [(k, v) for k, v in metrics.items()
                 if isinstance(v, float) and "held_out" not in k and not k.endswith("_real")][:6]
        if shown:
            lines.append("eval: " + ", ".join(f"{k} {v:.3g}" for k, v in shown))
        lines.append(str(self.path))
        return "\n".join(lines)


def read_entry(path, source: str) -> ModelEntry:
    """Raises ModelFileError (a ValueError) with a clear message for anything but a model file."""
    path = Path(path)
    return ModelEntry(path, api.read_card(path), source)


def scan(folder, source: str, log=None) -> list[ModelEntry]:
    """The model files under ``folder``; one that cannot be read (not a model file, a damaged or
    hostile card) is listed as unreadable, with the reason in its summary."""
    folder = Path(folder)
    out = []
    if not folder.is_dir():
        return out
    for p in sorted(folder.rglob("*.safetensors")):
        if "checkpoints" in p.parts:
            continue
        try:
            out.append(read_entry(p, source))
        except (ValueError, OSError, RecursionError) as e:
            out.append(ModelEntry(p, {}, source, error=str(e) or type(e).__name__))
            if log:
                log(f"unreadable {p}: {e}")
    return out
