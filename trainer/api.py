"""The studio's one door into the engine (with :mod:`trainer.rundir`, the run directory it shares).

Everything the GUI needs of the engine, as plain functions over paths, dicts, PIL images and
numbers: load a model, read its card, list and check presets, detect a dataset layout, open an
image, draw sample inputs, import a checkpoint, name the plots' loss groups. ``tests/
test_studio_api_boundary.py`` keeps the studio from importing any other engine module.

Each function is a thin call into the module that owns the rule. Those modules are imported
when a function is first called, not with this one: the studio starts without torch, the
method table or the evaluators, and pays for them when it first loads a model or checks a job.
(Imports only go down from here: this is the engine's top layer, beside the CLI.)

Errors are the engine's own (:mod:`trainer.errors`), re-exported here; all are ValueErrors:
:class:`ConfigError` (a preset or a setting), :class:`ModelFileError` (not a usable model file),
:class:`ImageError` (not a decodable image, or too large), :class:`ControlError` (a control value
out of range), :class:`CheckpointImportError` (a checkpoint that cannot be imported).
"""
from __future__ import annotations

from pathlib import Path

from trainer.controls import SEED_MAX, parse_layers  # the largest seed a seed control takes; a layer set's indices (torch-free)
from trainer.data.imageio import IMAGE_EXTENSIONS  # the file suffixes open_image reads (".png", ...)
from trainer.precisions import INFERENCE_PRECISIONS  # load_model's choices (torch-free)
from trainer.errors import CheckpointImportError, ConfigError, ControlError, ImageError, ModelFileError
from trainer.loss_groups import LOSS_GROUPS, group_of

__all__ = ["load_model", "INFERENCE_PRECISIONS", "inference_precisions", "read_card", "method_label", "page_of",
           "card_metrics", "mixing_rows", "SEED_MAX", "parse_layers", "list_presets", "preset_values", "check_job", "new_run_dir", "check_dataset", "open_image",
           "sample_input", "face_attributes", "photo_edges", "import_checkpoint", "resolve_device", "input_warning",
           "output_names", "folder_images", "translation_refusal", "save_output", "LOSS_GROUPS", "loss_groups", "loss_group", "IMAGE_EXTENSIONS", "CheckpointImportError",
           "ConfigError", "ControlError", "ImageError", "ModelFileError"]


# -- models

def load_model(path, device="cpu", precision: str = "auto"):
    """The model file at ``path`` as a Translator of its method, on ``device`` (a torch.device or
    its name; see :func:`resolve_device`), running in ``precision`` (:data:`INFERENCE_PRECISIONS`:
    auto, the default, is bf16 where the hardware computes it and the method's output holds within
    2/255 of fp32, else fp32; the Translator's ``precision`` and ``precision_note`` say which and
    why). The Translator declares its ``controls`` and renders with ``run_array(image, **controls)``
    -> uint8 (H, W, 3). Raises ModelFileError (not a model file, a damaged or unsafe one),
    ValueError (a method this version has no translator for, an unknown precision naming the
    choices, fp16 on the CPU), OSError."""
    from trainer import inference
    return inference.load(path, device, precision)


def read_card(path) -> dict:
    """The model card of the file at ``path``, read from its header only (nothing is unpickled)
    and validated as data. Raises ModelFileError (a ValueError) or OSError."""
    from trainer.modelfile import read_card as read
    return read(path)


# which page of the studio shows each task
PAGE_OF_TASK = {"sketch2photo": "sketch", "photo2photo": "photo", "superres": "photo", "stylize": "photo",
                "attributes": "attributes", "style": "style", "sample": "style"}


def page_of(card: dict) -> str:
    """The studio page that shows a model of this card: "sketch", "photo", "attributes" or "style"
    (a card without a known ``task`` goes to "photo")."""
    task = card.get("task")
    return PAGE_OF_TASK.get(task, "photo") if isinstance(task, str) else "photo"


def method_label(card: dict) -> str:
    """The name of the method whose model a card describes (:func:`trainer.registry.method_of_card`:
    "bicyclegan" for an older pix2pix card whose generator takes a latent code), else the card's
    own ``method`` ("?" if it has none) for a method this installation does not know, or a card
    too odd for any method to claim. Never raises."""
    from trainer.registry import method_of_card
    try:
        return method_of_card(card).name
    except (ValueError, AttributeError, TypeError):  # ModelFileError: no method reads it
        return str(card.get("method", "?"))


def card_metrics(card: dict) -> dict:
    """The card's evaluation metrics flattened to {"mixing.crossover": 4, "fid": 30.0, ...}: those
    of ``eval.metrics``, else ``metrics``, else ``training.metrics``; {} if it has none."""
    from trainer.modelfile import flatten
    evaluation, training = card.get("eval") or {}, card.get("training") or {}
    return flatten(evaluation.get("metrics") or card.get("metrics") or training.get("metrics") or {})


def mixing_rows(sources, styles, mixes) -> list[list]:
    """The style-mixing grid (StyleGAN, Karras et al. 2019, fig. 3) as rows of uint8 HWC arrays:
    a white corner and the styles on top, then each source and its mixes (``mixes[i][j]``: source
    i with style j's layers); :func:`trainer.evaluation.style.mixing_rows`. ValueError when the
    counts disagree."""
    from trainer.evaluation.style import mixing_rows as rows
    return rows(sources, styles, mixes)


def input_warning(card: dict, image) -> str | None:
    """One line saying why ``image`` (PIL or uint8 HWC) is unlike what the model of ``card`` was
    trained on (e.g. not a face for a faces model), or None."""
    from trainer.domain_check import input_warning as warning
    return warning(card, image)


def inference_precisions(device="auto") -> list[str]:
    """The precisions worth offering on ``device`` (a name or torch.device): auto and fp32 always,
    bf16 where the hardware computes it (a CPU with native bf16, CUDA), fp16 on CUDA. An unknown
    or absent device gives auto and fp32."""
    from trainer.device import cpu_has_bf16
    try:
        device = resolve_device(device) if isinstance(device, str) else device
    except (ValueError, RuntimeError):
        return ["auto", "fp32"]
    extra = {"cuda": ["bf16", "fp16"], "cpu": ["bf16"] if cpu_has_bf16() else []}.get(device.type, [])
    return ["auto", "fp32", *extra]


def resolve_device(name: str = "auto"):
    """A torch.device for "auto" (CUDA, then MPS, then the CPU), "cpu", "cuda", "cuda:N" or "mps".
    Raises ValueError or RuntimeError for one that is not there."""
    from trainer.device import resolve_device as resolve
    return resolve(name)


def import_checkpoint(path, out, **options) -> Path:
    """Convert a reference checkpoint (.pth/.ckpt/.pt of junyanz pix2pix/CycleGAN, StarGAN,
    rosinality StyleGAN2) into a model file at ``out``, reading plain tensors only (a file that
    would run code is refused). ``options`` as ``gan-trainer import``. Returns ``out``; raises
    CheckpointImportError, ModelFileError (ValueErrors) or OSError."""
    from trainer.conversion import import_checkpoint as convert
    return convert(path, out, **options)


def output_names(relatives) -> list[Path]:
    """The output path (relative to the output folder) of each input of a folder translation,
    named as ``gan-trainer translate`` names them (sub/a.png -> sub/a.png, a.jpg -> a.jpg.png;
    clashes get -2, -3, ...)."""
    from trainer.data.imageio import output_names as names
    return names(relatives)


def folder_images(folder, out_dir=None) -> list[Path]:
    """The images under ``folder`` that a folder translation into ``out_dir`` takes as inputs."""
    from trainer.data.imageio import folder_images as images
    return images(folder, out_dir)


def translation_refusal(inputs, out_dir, names) -> str | None:
    """Why a folder translation must not run (it would write over an input or a file no
    translation wrote), or None; ``names`` from :func:`output_names`."""
    from trainer.data.imageio import translation_refusal as refusal
    return refusal(inputs, out_dir, names)


def save_output(image, target) -> None:
    """A translation written as a PNG that a later translation may replace (:func:`translation_refusal`)."""
    from trainer.data.imageio import save_output as save
    save(image, target)


# -- presets and jobs

def list_presets() -> list[str]:
    """The names of the presets (the preset folders' and those methods ship), sorted."""
    from trainer.registry import all_presets
    return list(all_presets())


def preset_values(name: str) -> dict:
    """A preset's raw settings as written: {"method", "description", "preset", "train": {...},
    "data": {...}, "model": {...}}. Raises ConfigError (no such preset, not TOML) or OSError."""
    from trainer.registry import read_preset
    return read_preset(name)


def check_job(preset: str, overrides: list[str]):
    """The Config a job of ``preset`` with ``overrides`` ("section.key=TOML value", as ``gan-trainer
    train --set``) would run: every check the job makes before it starts (value ranges, the
    method's image-size rule, its settings). Raises ConfigError (a ValueError) naming the setting."""
    from trainer.registry import load_config
    return load_config(preset, overrides)


def new_run_dir(config, runs_root) -> Path:
    """A new run folder's path (not created) under ``runs_root`` for the Config ``config``, named
    as ``gan-trainer train`` names it: ``<preset>-<YYYYmmdd-HHMMSS>``, then -2, -3, ... if taken."""
    from trainer.run import new_run_dir as new
    return new(config, runs_root)


def check_dataset(method: str, root) -> str:
    """The description of the dataset layout found at ``root`` ("aligned: 400 A|B pairs in train/",
    ...); ValueError if there are no images or ``method`` cannot read that layout, ConfigError
    (a ValueError) for an unknown method."""
    from trainer.registry import check_dataset as check
    return check(method, root)


# -- images

def open_image(path):
    """The image file at ``path`` as an 8-bit RGB PIL image (any mode converted, EXIF rotation
    applied, transparency on white). Raises ImageError (a ValueError: not an image, damaged, over
    the pixel limit) or OSError."""
    from trainer.data.imageio import open_image as decode
    return decode(path)


SAMPLE_KINDS = ("sketch", "photo", "cartoon", "face")


def sample_input(kind: str, seed: int, size: int, attributes: dict | None = None):
    """A procedural picture of ``size`` x ``size`` RGB (PIL), the same for the same seed, as the
    procedural datasets draw them: "sketch" (a line drawing of a scene), "photo" (the shaded photo
    of that scene), "cartoon" (the same scene flat-coloured with outlines: the shapes CycleGAN's
    domain B), "face" (a face with ``attributes``, name -> bool, default :func:`face_attributes`
    of the seed). ValueError for another kind or an unknown attribute."""
    if kind in ("sketch", "photo", "cartoon"):
        from trainer.data.sketches import render
        photo, sketch, _ = render(seed, size, style="cartoon" if kind == "cartoon" else "photo")
        return sketch if kind == "sketch" else photo
    if kind == "face":
        from trainer.data.faces import render
        return render(seed, face_attributes(seed) if attributes is None else attributes, size)
    raise ValueError(f"no sample of kind {kind!r}; kinds: {', '.join(SAMPLE_KINDS)}")


def face_attributes(seed: int) -> dict:
    """The attributes (name -> bool: hair colour, Male, Young, ...) the faces dataset draws for ``seed``."""
    from trainer.data.faces import draw_attributes
    return draw_attributes(seed)


def photo_edges(image, size: int | None = None):
    """A photo's edges as a sketch (RGB PIL, black lines on white) of ``size`` x ``size`` (default
    the image's size), drawn as the sketch datasets' edge maps are."""
    from trainer.data.edges import edges
    return edges(image, size)


# -- the plots of a run

def loss_groups(method: str) -> dict[str, str]:
    """The loss groups ``method`` declares (``Method.loss_groups``): logged key -> one of
    :data:`LOSS_GROUPS`. Raises ConfigError (a ValueError) for a method this installation does
    not know."""
    from trainer.registry import loss_groups as declared
    return declared(method)


def loss_group(key: str, declared: dict[str, str] | None = None) -> str | None:
    """The plot a metrics key belongs to (one of :data:`LOSS_GROUPS`), or None for a key that is
    not a loss: see :func:`trainer.loss_groups.group_of`."""
    return group_of(key, declared)