"""Run configuration: TOML presets into dataclasses, ``--set key=value`` overrides with dotted
keys, and the resolved configuration written back as TOML (``config.toml`` of a run).

This module knows the sections every run has (``[train]``, ``[data]``) and where presets live; it
knows no method. A method's ``[model]`` section is its own ``ModelConfig`` dataclass, handed in
by the caller: :func:`trainer.registry.load_config` and :func:`trainer.registry.config_from_dict`
find the method and call :func:`from_dict`.

Presets are TOML files in the built-in folder (``trainer/presets``) and in the folders named by
the environment variable ``GAN_STUDIO_PRESET_PATH`` (separated by ``os.pathsep``); a name found in
two folders is the first folder's (built-ins first).
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ConfigError", "TrainConfig", "DataConfig", "Config", "PRESETS_DIR", "PRESET_PATH_ENV", "preset_dirs",
           "preset_path", "list_presets", "read_preset", "method_name", "from_dict", "apply_overrides",
           "parse_value", "to_toml", "read_toml", "check_values"]

PRESETS_DIR = Path(__file__).parent / "presets"
PRESET_PATH_ENV = "GAN_STUDIO_PRESET_PATH"


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 1
    seed: int = 0
    device: str = "auto"  # auto (CUDA, MPS, CPU), cpu, cuda, cuda:1, mps
    precision: str = "auto"  # auto, off, bf16, fp16
    channels_last: str = "auto"  # auto, on, off
    # Winograd for residual blocks' 3x3 and PatchGAN's stride-1 4x4 convolutions: auto = float32 on the CPU
    winograd: str = "auto"  # auto, on, off
    lr: float = 2e-4
    lr_D: float = 0.0  # > 0: the discriminators' own rate (TTUR, Heusel et al. 2017); 0: lr
    beta1: float = 0.5
    beta2: float = 0.999
    decay_steps: int = 0  # the lr falls linearly to zero over the last decay_steps
    # warm restarts (SGDR, annealed linearly): at each of these steps the lr is back at lr and falls
    # linearly to zero by the next restart or by steps; decay_steps shapes only the first cycle
    restarts: list = field(default_factory=list)
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    threads: int = 0  # CPU threads for torch; 0 leaves torch's default
    # a model file (.safetensors) or a checkpoint folder (runs/X/checkpoints/step-N) whose nets start a
    # new run (fine-tuning); nets it lacks start fresh
    init_from: str = ""


@dataclass
class DataConfig:
    root: str = ""  # a dataset folder; empty with ``synth`` set: the procedural dataset, made once
    synth: str = ""  # procedural dataset name (sketches, ...)
    synth_n: int = 2000
    image_size: int = 256
    load_size: int = 0  # 0: image_size * 286 / 256, as the reference
    preprocess: str = "resize_and_crop"
    flip: bool = True
    direction: str = "AtoB"
    num_workers: int = -1  # -1: chosen from the CPU count


@dataclass
class Config:
    method: str
    model: Any
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    preset: str = ""
    description: str = ""

    def to_dict(self) -> dict:
        return {"method": self.method, "preset": self.preset, "description": self.description,
                "train": dataclasses.asdict(self.train), "data": dataclasses.asdict(self.data),
                "model": dataclasses.asdict(self.model)}


def parse_value(text: str):
    """A ``--set`` value as TOML (numbers, booleans, quoted strings, lists); else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, for example train.steps=500")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = raw
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {p} is not a section")
        node[parts[-1]] = parse_value(value.strip())
    return raw


def _coerce(section: str, cls, values: dict):
    if not isinstance(values, dict):
        raise ConfigError(f"[{section}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(section + '.' + k for k in unknown)}; "
                          f"[{section}] has: {', '.join(fields)}")
    out = {}
    for name, value in values.items():
        default = fields[name].default
        if default is not dataclasses.MISSING and default is not None:
            kind = type(default)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            elif kind is str and isinstance(value, (int, float)):  # as typed: --set x=true, x=1
                value = str(value).lower() if isinstance(value, bool) else str(value)
            elif kind is not type(value) and not (kind is list and isinstance(value, list)):
                raise ConfigError(f"{section}.{name} = {value!r}: expected {kind.__name__}")
        out[name] = value
    return cls(**out)


def check_restarts(restarts) -> None:
    ok = isinstance(restarts, list) and all(isinstance(r, int) and not isinstance(r, bool) and r > 0
                                            for r in restarts)
    if not ok or any(b <= a for a, b in zip(restarts, restarts[1:])):
        raise ConfigError(f"train.restarts = {restarts!r}: expected increasing positive step numbers, "
                          "for example [20000, 28000]")


# allowed ranges of numeric settings, (low, high) inclusive; a float range's low may be exclusive (">")
INT_RANGES = {
    "train.steps": (1, 10 ** 9), "train.batch_size": (1, 65536), "train.seed": (0, 2 ** 63 - 1),
    "train.decay_steps": (0, 10 ** 9), "train.log_every": (1, 10 ** 9), "train.sample_every": (0, 10 ** 9),
    "train.checkpoint_every": (0, 10 ** 9), "train.keep_checkpoints": (0, 10 ** 6), "train.threads": (0, 1024),
    "data.synth_n": (1, 1_000_000), "data.image_size": (8, 4096), "data.load_size": (0, 8192),
    "data.num_workers": (-1, 64),
}
FLOAT_RANGES = {"train.lr": (">0", 10.0), "train.lr_D": (0.0, 10.0), "train.beta1": (0.0, 0.9999),
                "train.beta2": (0.0, 0.9999)}
CHOICES = {"train.precision": ("auto", "off", "bf16", "fp16"), "train.channels_last": ("auto", "on", "off"),
           "train.winograd": ("auto", "on", "off"),
           "data.direction": ("AtoB", "BtoA"), "data.preprocess": ("resize_and_crop", "crop", "resize")}
ZERO_MEANS = {"train.sample_every": "0: no samples", "train.checkpoint_every": "0: only at the end",
              "train.keep_checkpoints": "0: keep all", "train.threads": "0: torch's default",
              "data.load_size": "0: image_size * 286 / 256", "data.num_workers": "-1: from the CPU count",
              "train.lr_D": "0: train.lr"}


def _fmt(v) -> str:
    return f"{v:,}" if isinstance(v, int) and abs(v) >= 10_000 else f"{v:g}" if isinstance(v, float) else str(v)


def check_values(cfg: Config) -> None:
    """Refuse values that cannot train (raises :class:`ConfigError` naming the key and the allowed
    range): counts and intervals out of range, NaN or infinite rates, NaN, infinite or negative loss
    weights (any ``model.lambda_*``), unknown precision or direction."""
    sections = {"train": cfg.train, "data": cfg.data}
    for key, (lo, hi) in INT_RANGES.items():
        section, name = key.split(".")
        v = getattr(sections[section], name)
        if not lo <= v <= hi:
            note = f" ({ZERO_MEANS[key]})" if key in ZERO_MEANS else ""
            raise ConfigError(f"{key} = {v!r}: allowed range {_fmt(lo)}..{_fmt(hi)}{note}")
    for key, (lo, hi) in FLOAT_RANGES.items():
        section, name = key.split(".")
        v = getattr(sections[section], name)
        above = lo == ">0"
        low = 0.0 if above else lo
        if not math.isfinite(v) or (v <= low if above else v < low) or v > hi:
            span = f"above 0 up to {_fmt(hi)}" if above else f"{_fmt(low)}..{_fmt(hi)}"
            note = f" ({ZERO_MEANS[key]})" if key in ZERO_MEANS else ""
            raise ConfigError(f"{key} = {v!r}: allowed range {span}{note}")
    for key, allowed in CHOICES.items():
        section, name = key.split(".")
        v = getattr(sections[section], name)
        if v not in allowed:
            raise ConfigError(f"{key} = {v!r}: choose one of {', '.join(allowed)}")
    if dataclasses.is_dataclass(cfg.model):
        for f in dataclasses.fields(cfg.model):
            v = getattr(cfg.model, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            key = f"model.{f.name}"
            if f.name.startswith("lambda_") and (not math.isfinite(v) or v < 0):
                raise ConfigError(f"{key} = {v!r}: a loss weight must be a finite number >= 0 (0 turns the loss off)")
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{key} = {v!r}: must be a finite number")


def method_name(raw: dict) -> str:
    """The method a raw configuration names (``method = "pix2pix"``); :class:`ConfigError` when none."""
    name = raw.get("method")
    if not name:
        raise ConfigError("the configuration names no method (method = \"pix2pix\", ...)")
    if not isinstance(name, str):
        raise ConfigError(f"method = {name!r}: expected a method name (a string)")
    return name


def from_dict(raw: dict, method) -> Config:
    """A raw configuration (a preset's TOML, overrides applied) as a validated :class:`Config` for
    ``method``, the Method class that reads it (:func:`trainer.registry.method_of_config` finds
    it): ``method.upgrade`` first brings older settings to its current keys, ``[model]`` becomes
    ``method.ModelConfig`` and ``method.validate`` checks the whole. ``Config.method`` is the
    method's registry name (an alias or older spelling is not kept).

    Raises :class:`ConfigError` for an unknown key, a value of the wrong type, a value out of range
    (:func:`check_values`) or a configuration the method cannot run."""
    method_name(raw)
    raw = method.upgrade(dict(raw))
    sections = {k: raw.pop(k, {}) for k in ("train", "data", "model")}
    raw.pop("method", None)
    preset, description = raw.pop("preset", ""), raw.pop("description", "")
    if raw:
        raise ConfigError(f"unknown top-level key(s): {', '.join(sorted(raw))}; expected method, preset, "
                          "description, [train], [data], [model]")
    train = _coerce("train", TrainConfig, sections["train"])
    check_restarts(train.restarts)
    cfg = Config(method=method.name, model=_coerce("model", method.ModelConfig, sections["model"]),
                 train=train,
                 data=_coerce("data", DataConfig, sections["data"]), preset=preset, description=description)
    check_values(cfg)
    method.validate(cfg)
    return cfg


def preset_dirs() -> list[Path]:
    """The preset folders, in the order a name is looked up: the built-in one, then each folder of
    ``GAN_STUDIO_PRESET_PATH`` (entries that are not folders are skipped)."""
    extra = [Path(p).expanduser() for p in os.environ.get(PRESET_PATH_ENV, "").split(os.pathsep) if p.strip()]
    return [PRESETS_DIR, *[d for d in extra if d.is_dir()]]


def _preset_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in preset_dirs():
        for p in sorted(folder.glob("*.toml")):
            found.setdefault(p.stem, p)
    return found


def preset_path(name_or_path: str) -> Path:
    """A preset's TOML file: ``name_or_path`` itself when it is a .toml file, else the preset of
    that name in the preset folders; :class:`ConfigError` listing the presets otherwise."""
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.is_file():
        return p
    found = _preset_files().get(str(name_or_path))
    if found is not None:
        return found
    raise ConfigError(f"no preset or TOML file {name_or_path!r}; presets: {', '.join(list_presets())}")


def list_presets() -> list[str]:
    """The names of the preset files in every preset folder, sorted."""
    return sorted(_preset_files())


def read_preset(name_or_path: str) -> dict:
    """A preset's raw TOML as a dict, with ``preset`` set (the name for a preset of a preset folder,
    else the file's path) unless the file sets it. Raises :class:`ConfigError` for an unknown name
    or a file that is not valid TOML."""
    path = preset_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    raw.setdefault("preset", path.stem if path.parent in preset_dirs() else str(path))
    return raw


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


PATH_KEYS = (("data", "root"), ("train", "init_from"), ("model", "region_segmenter"))


def absolute_paths(data: dict) -> dict:
    """``data`` (a Config's dict) with each :data:`PATH_KEYS` value that names an existing file or
    folder (``~`` expanded) made absolute, so that a run's config.toml reads the same from any
    working directory (a resume elsewhere). Other values (empty, a keyword) are left as they are."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for table, key in PATH_KEYS:
        value = out.get(table, {}).get(key)
        if isinstance(value, str) and value and Path(value).expanduser().exists():
            out[table][key] = str(Path(value).expanduser().resolve())
    return out


def to_toml(data: dict) -> str:
    """Flat tables of scalars and lists (all a Config holds) as TOML text."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


def read_toml(path) -> dict:
    return tomllib.loads(Path(path).read_text())
