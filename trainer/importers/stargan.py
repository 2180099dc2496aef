"""Checkpoints of yunjey/stargan (``200000-G.ckpt``): plain state dicts of the generator. c_dim
and repeat_num are inferred from the shapes; the domain names come from ``--domains`` or the
reference's default list."""
from __future__ import annotations

from pathlib import Path

from trainer.data.attributes import DEFAULT_ATTRS
from trainer.importers import CheckpointImportError, matches
from trainer.methods.stargan import exclusive_groups
from trainer.nets.stargan import StarGenerator


def detect(state: dict) -> str | None:
    w = state.get("main.0.weight")
    if w is not None and w.dim() == 4 and w.shape[-1] == 7 and any(".main.0.weight" in k for k in state):
        return "stargan"
    return None


def import_stargan(state: dict, path: Path, domains: list[str] | None = None, image_size: int = 128, **_):
    first = state["main.0.weight"]
    c_dim, conv_dim = first.shape[1] - 3, first.shape[0]
    repeat = len({k.split(".")[1] for k in state if ".main.0.weight" in k})
    args = {"conv_dim": conv_dim, "c_dim": c_dim, "repeat_num": repeat}
    if not matches(StarGenerator, args, state):
        raise CheckpointImportError(f"{path}: a StarGAN generator's first layer, but its keys and shapes match no "
                                    f"generator with conv_dim {conv_dim}, c_dim {c_dim}, {repeat} blocks")
    domains = list(domains) if domains else (DEFAULT_ATTRS if c_dim == len(DEFAULT_ATTRS) else
                                             [f"domain_{i}" for i in range(c_dim)])
    if len(domains) != c_dim:
        raise CheckpointImportError(f"{path}: the generator has {c_dim} domains but --domains names {len(domains)}")
    card = {"method": "stargan", "task": "attributes", "nets": {"G": {"name": "stargan_G", "args": args}},
            "image_size": image_size, "channels": 3, "value_range": [-1, 1], "domains": domains,
            "exclusive_groups": exclusive_groups(domains), "classes": [],
            "training": {"source": "yunjey/stargan"}}
    return {f"G.{k}": v.float() if v.is_floating_point() else v for k, v in state.items()}, card
