"""Checkpoints of yunjey/stargan (``200000-G.ckpt``): plain state dicts of the generator. c_dim
and repeat_num are inferred from the shapes; the domain names come from ``--domains`` or the
reference's default list. Domains that are one category (RaFD's eight expressions, one at a
time) are marked exclusive with ``exclusive``; the image size the model was trained at (128 in
the reference, 256 for RaFD at full size) with ``image_size``. Without ``exclusive`` the groups come
from the caller's ``default_groups(domains)`` (the StarGAN method's rule: hair colours)."""
from __future__ import annotations

from pathlib import Path

from trainer.data.attributes import DEFAULT_ATTRS
from typing import Callable

from trainer.importers import CheckpointImportError, best_match, require
from trainer.nets.stargan import StarGenerator

WHAT = "StarGAN generator"


def is_generator(state: dict) -> bool:
    """The keys of a yunjey/stargan generator: a 7x7 ``main.0.weight`` and residual blocks."""
    w = state.get("main.0.weight")
    return w is not None and w.dim() == 4 and w.shape[-1] == 7 and any(".main.0.weight" in k for k in state)


def check_image_size(image_size, path) -> int:
    """Two stride-2 downsamplings and upsamplings: a multiple of 4 gives back its own size."""
    try:
        size = int(image_size)
    except (TypeError, ValueError):
        size = 0
    if size != image_size or size < 16 or size % 4 or size > 4096:
        raise CheckpointImportError(f"{path}: --image-size {image_size!r}: the StarGAN generator needs a "
                                    "multiple of 4 from 16 to 4096 (the reference trains at 128)")
    return size


def groups_for(domains: list[str], exclusive, path, default_groups: Callable = lambda domains: []) -> list[list[str]]:
    """``exclusive``: None (``default_groups(domains)``: the StarGAN method passes its hair-colour
    rule, as the reference's CelebA model), True (all the domains are one category) or a list of
    domains that are."""
    if exclusive is None or exclusive is False:
        return default_groups(domains)
    if exclusive is True or list(exclusive) == []:
        return [list(domains)]
    group = list(exclusive)
    unknown = [d for d in group if d not in domains]
    if unknown:
        raise CheckpointImportError(f"{path}: --exclusive names {', '.join(unknown)}, not among the domains "
                                    f"{', '.join(domains)}")
    if len(set(group)) < 2:
        raise CheckpointImportError(f"{path}: --exclusive needs two domains or more (or none: all of them)")
    return [g for g in default_groups(domains) if not set(g) & set(group)] + [group]


def import_generator(state: dict, path: Path, domains: list[str] | None = None, image_size: int = 128,
                     exclusive=None, default_groups: Callable = lambda domains: [], **_):
    """A yunjey/stargan generator: (tensors under ``G.``, card without ``method``); ``domains`` name
    its target domains in order, ``image_size`` the size it was trained at, ``exclusive`` as
    :func:`groups_for`."""
    first = require(state, "main.0.weight", path, WHAT, dim=4)
    if tuple(first.shape[-2:]) != (7, 7):
        raise CheckpointImportError(f"{path}: main.0.weight has shape {tuple(first.shape)}, not the generator's 7x7 "
                                    "first layer (a discriminator, 200000-D.ckpt? import the -G.ckpt)")
    c_dim, conv_dim = first.shape[1] - 3, first.shape[0]
    if c_dim < 1:
        raise CheckpointImportError(f"{path}: main.0.weight has shape {tuple(first.shape)}: {first.shape[1]} input "
                                    "channels leave no domain label (3 image channels + c_dim)")
    image_size = check_image_size(image_size, path)
    repeat = len({k.split(".")[1] for k in state if ".main.0.weight" in k})
    args = {"conv_dim": conv_dim, "c_dim": c_dim, "repeat_num": repeat}
    found, problem = best_match(StarGenerator, [args], state)
    if found is None:
        raise CheckpointImportError(f"{path}: a StarGAN generator's first layer, but its keys and shapes match no "
                                    f"generator with conv_dim {conv_dim}, c_dim {c_dim}, {repeat} blocks: {problem}")
    domains = list(domains) if domains else (DEFAULT_ATTRS if c_dim == len(DEFAULT_ATTRS) else
                                             [f"domain_{i}" for i in range(c_dim)])
    if len(domains) != c_dim:
        raise CheckpointImportError(f"{path}: the generator has {c_dim} domains (main.0.weight has shape "
                                    f"{tuple(first.shape)}: 3 image channels + {c_dim}) but --domains names "
                                    f"{len(domains)}")
    if len(set(domains)) != len(domains):
        raise CheckpointImportError(f"{path}: --domains names a domain twice")
    card = {"task": "attributes", "nets": {"G": {"name": "stargan_G", "args": args}},
            "image_size": image_size, "channels": 3, "value_range": [-1, 1], "domains": domains,
            "exclusive_groups": groups_for(domains, exclusive, path, default_groups), "classes": [],
            "training": {"source": "yunjey/stargan"}}
    return {f"G.{k}": v.float() if v.is_floating_point() else v for k, v in state.items()}, card
