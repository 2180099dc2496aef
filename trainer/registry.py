"""The one table of methods: every place that needs "the method called X" asks here.

Built-in methods are the modules of :mod:`trainer.methods` listed in :data:`BUILT_IN`; plugins are
modules named in the environment variable ``GAN_STUDIO_PLUGINS`` (comma-separated, importable, e.g.
from ``PYTHONPATH``), imported when this module is, which register their Method subclasses with
:func:`register`. Presets are the TOML files of the preset folders (:func:`trainer.config.preset_dirs`:
the built-in one and those of ``GAN_STUDIO_PRESET_PATH``) and the ``presets`` a method ships in code.

API: :data:`METHODS`, :func:`register`, :func:`get_method`, :func:`method_of_card`,
:func:`method_of_config`, :func:`config_from_dict`, :func:`load_config`, :func:`read_preset`,
:func:`all_presets`, :func:`loss_groups`, :func:`check_dataset`, :func:`import_kinds`,
:func:`export_formats`.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from trainer import config
from trainer.config import Config
from trainer.errors import ConfigError, ModelFileError
from trainer.methods.base import Method

__all__ = ["METHODS", "BUILT_IN", "PLUGINS_ENV", "register", "get_method", "method_of_card", "method_of_config",
           "config_from_dict", "load_config", "read_preset", "all_presets", "loss_groups", "check_dataset",
           "import_kinds", "export_formats"]

#: the built-in method modules, in the order the registry lists their methods
BUILT_IN = ("pix2pix", "bicyclegan", "cyclegan", "stargan", "dcgan", "stylegan", "srgan", "style_transfer")
PLUGINS_ENV = "GAN_STUDIO_PLUGINS"

#: name -> Method subclass, in registration order (built-ins first, then plugins)
METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Add a Method subclass to :data:`METHODS` under its ``name`` (a class decorator; returns
    ``cls``). Raises ConfigError for a class without a name, a name or alias another method has,
    or a method without ``ModelConfig`` or ``Translator``; registering the same class again is a
    no-op."""
    if not (isinstance(cls, type) and issubclass(cls, Method)) or not cls.name:
        raise ConfigError(f"{cls!r}: only a Method subclass with a name can be registered")
    if METHODS.get(cls.name) is cls:
        return cls
    taken = {n: m for m in METHODS.values() for n in (m.name, *m.aliases)}
    clash = [n for n in (cls.name, *cls.aliases) if n in taken]
    if clash:
        raise ConfigError(f"method {cls.__module__}.{cls.__qualname__}: the name {clash[0]!r} is taken by "
                          f"{taken[clash[0]].__module__}.{taken[clash[0]].__qualname__}")
    if cls.ModelConfig is None or cls.Translator is None:
        raise ConfigError(f"method {cls.name!r} declares no ModelConfig or no Translator")
    METHODS[cls.name] = cls
    return cls


def _method_classes(module) -> list[type[Method]]:
    """The Method subclasses a module defines, with a name, in their order in the module."""
    return [v for v in vars(module).values()
            if isinstance(v, type) and issubclass(v, Method) and v.name and v.__module__ == module.__name__]


def _load_built_ins() -> None:
    for name in BUILT_IN:
        module = importlib.import_module(f"trainer.methods.{name}")
        for cls in _method_classes(module):
            register(cls)


def _load_plugins() -> None:
    for name in [n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip()]:
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            raise ConfigError(f"{PLUGINS_ENV} names {name!r}, which cannot be imported ({e})") from None
        for cls in _method_classes(module):  # a plugin that did not use @register: its methods still count
            register(cls)


def get_method(name: str) -> type[Method]:
    """The method called ``name`` (or with ``name`` among its aliases); ConfigError listing the
    known names otherwise."""
    if name in METHODS:
        return METHODS[name]
    for cls in METHODS.values():
        if name in cls.aliases:
            return cls
    raise ConfigError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}")


def method_of_card(card: dict) -> type[Method]:
    """The method whose models a card describes (each method's ``reads_card``: an older pix2pix
    card whose generator takes a latent code is BicycleGAN's). Raises
    :class:`~trainer.errors.ModelFileError` when no method reads it."""
    for cls in METHODS.values():
        if cls.reads_card(card):
            return cls
    raise ModelFileError(f"method {card.get('method')!r} has no translator in this version "
                         f"(known: {', '.join(METHODS)})")


def method_of_config(raw: dict) -> type[Method]:
    """The method that reads a raw configuration (each method's ``reads_config``: an older pix2pix
    one with ``model.nz`` > 0 is BicycleGAN's); ConfigError for none or an unknown name."""
    name = config.method_name(raw)
    for cls in METHODS.values():
        if cls.reads_config(raw):
            return cls
    return get_method(name)  # a name no method reads: the error lists the known ones


def config_from_dict(raw: dict) -> Config:
    """A raw configuration as a validated :class:`~trainer.config.Config` of its method
    (:func:`trainer.config.from_dict`); ConfigError naming what is wrong."""
    return config.from_dict(raw, method_of_config(raw))


def read_preset(name_or_path: str) -> dict:
    """A preset's raw settings: a TOML file of the preset folders (or any .toml path), else a
    preset a method ships in code; ``preset`` is filled in. ConfigError for an unknown name, or a
    file that is not valid TOML (its line and column)."""
    try:
        config.preset_path(name_or_path)
    except ConfigError:  # no such file: a preset shipped in code, or none
        shipped = _shipped_presets()
        if name_or_path not in shipped:
            raise ConfigError(f"no preset or TOML file {name_or_path!r}; presets: "
                              f"{', '.join(sorted(all_presets()))}") from None
        return {"preset": name_or_path, **_deep_copy(shipped[name_or_path])}
    return config.read_preset(name_or_path)


def load_config(name_or_path: str, overrides: list[str] | None = None) -> Config:
    """A preset (name or TOML file) with ``--set`` overrides applied, as a validated Config."""
    return config_from_dict(config.apply_overrides(read_preset(name_or_path), overrides or []))


def _shipped_presets() -> dict[str, dict]:
    return {name: raw for cls in METHODS.values() for name, raw in cls.__dict__.get("presets", {}).items()}


def _deep_copy(raw: dict) -> dict:
    return {k: _deep_copy(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v for k, v in raw.items()}


def all_presets() -> dict[str, Path | dict]:
    """Every preset by name, sorted: a Path for a TOML file of the preset folders, the raw dict for a
    preset a method ships in code (a file of the same name wins)."""
    files = {name: config.preset_path(name) for name in config.list_presets()}
    shipped = {name: raw for name, raw in _shipped_presets().items() if name not in files}
    return dict(sorted({**files, **shipped}.items()))


def loss_groups(name: str) -> dict[str, str]:
    """The plot group of each loss key the method logs (``Method.loss_groups``)."""
    return dict(get_method(name).loss_groups)


def check_dataset(name: str, root) -> str:
    """The layout of dataset folder ``root`` in a line, or ValueError when method ``name`` cannot
    read it (``Method.check_dataset``)."""
    return get_method(name).check_dataset(root)


def import_kinds() -> dict:
    """``gan-trainer import --kind`` name -> (method class, :class:`trainer.importers.ImportKind`),
    in registry order; a kind two methods declare is the first's."""
    kinds = {}
    for cls in METHODS.values():
        for kind, reader in cls.import_kinds.items():
            kinds.setdefault(kind, (cls, reader))
    return kinds


def export_formats() -> dict[str, list[str]]:
    """``gan-trainer export --format`` name -> the methods that write it, in registry order."""
    formats: dict[str, list[str]] = {}
    for cls in METHODS.values():
        for fmt in cls.export_formats:
            formats.setdefault(fmt, []).append(cls.name)
    return formats


_load_built_ins()
_load_plugins()
