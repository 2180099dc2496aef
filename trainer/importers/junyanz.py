"""Checkpoints of junyanz/pytorch-CycleGAN-and-pix2pix (``latest_net_G.pth``): plain state dicts.

The U-Net's depth, ngf, norm and channels are inferred from keys and shapes; a
``train_opt.txt`` beside the checkpoint wins where it says more (dropout, direction).
Instance-norm running statistics that old PyTorch versions saved are dropped, as the
reference loader does.
"""
from __future__ import annotations

import re
from pathlib import Path

from trainer.importers import CheckpointImportError, matches
from trainer.nets.unet import UnetGenerator

NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")


def read_train_opt(checkpoint: Path) -> dict:
    """``key: value`` lines of train_opt.txt (the ``[default: ...]`` notes ignored)."""
    path = checkpoint.parent / "train_opt.txt"
    opts = {}
    if path.is_file():
        for line in path.read_text(errors="replace").splitlines():
            m = re.match(r"\s*([A-Za-z_0-9]+):\s*(.*?)\s*(\[default:.*\])?\s*$", line)
            if m:
                opts[m.group(1)] = m.group(2)
    return opts


def detect(state: dict) -> str | None:
    if "model.model.0.weight" in state:
        return "pix2pix"
    if "model.1.weight" in state and any(".conv_block." in k for k in state):
        return "cyclegan"
    return None


def strip_instance_stats(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.rsplit(".", 1)[-1] not in NORM_STATS}


def import_pix2pix(state: dict, path: Path, direction: str | None = None, **_):
    opts = read_train_opt(path)
    first = state["model.model.0.weight"]
    ngf, input_nc = first.shape[0], first.shape[1]
    output_nc = state["model.model.3.weight"].shape[1] if "model.model.3.weight" in state else 3
    norm = "instance" if "model.model.1.model.1.bias" in state else "batch"
    if opts.get("norm") in ("batch", "instance"):
        norm = opts["norm"]
    if norm == "instance":
        state = strip_instance_stats(state)
    for num_downs in range(5, 11):
        args = {"input_nc": input_nc, "output_nc": output_nc, "num_downs": num_downs, "ngf": ngf, "norm": norm,
                "use_dropout": opts.get("no_dropout", "False") != "True"}
        if matches(UnetGenerator, args, state):
            break
    else:
        raise CheckpointImportError(f"{path}: a U-Net generator's first layer, but no U-Net of 5 to 10 levels, ngf {ngf}, "
                           f"{norm} norm matches its keys and shapes")
    direction = direction or opts.get("direction", "AtoB")
    card = {"method": "pix2pix", "task": "photo2photo",
            "nets": {"G": {"name": "unet", "args": args}},
            "image_size": 2 ** num_downs, "channels": output_nc, "value_range": [-1, 1],
            "direction": direction, "inference": {"mode": "paper"},
            "training": {"dataset": opts.get("dataroot", ""), "source": "junyanz/pytorch-CycleGAN-and-pix2pix"}}
    return {f"G.{k}": v.float() if v.is_floating_point() else v for k, v in state.items()}, card


def _resnet_args(state: dict, path: Path) -> dict:
    from trainer.nets.resnet import ResnetGenerator
    first = state["model.1.weight"]
    norm = "batch" if "model.2.running_mean" in state and "model.1.bias" not in state else "instance"
    blocks = {int(k.split(".")[1]) for k in state if ".conv_block." in k}
    dropout = any(".conv_block.6.weight" in k for k in state)
    out_key = max((k for k in state if k.endswith(".weight") and ".conv_block." not in k),
                  key=lambda k: int(k.split(".")[1]))
    args = {"input_nc": first.shape[1], "output_nc": state[out_key].shape[0], "ngf": first.shape[0], "norm": norm,
            "use_dropout": dropout, "n_blocks": len(blocks)}
    if not matches(ResnetGenerator, args, state):
        raise CheckpointImportError(f"{path}: looks like a ResNet generator ({len(blocks)} blocks, ngf "
                                    f"{args['ngf']}, {norm} norm) but its keys and shapes do not match one")
    return args


def import_cyclegan(state: dict, path: Path, **_):
    """A single generator (``latest_net_G.pth``, one direction A->B) or a pair: given
    ``latest_net_G_A.pth`` (or ``_G_B``), its sibling is read too, with the same safe loading."""
    from trainer.importers import as_state_dict, safe_load
    nets = {}
    stem = path.stem
    if stem.endswith(("_G_A", "_G_B")):
        for side in ("A", "B"):
            p = path.with_name(stem[:-1] + side + path.suffix)
            if p.is_file():
                s = state if p == path else as_state_dict(safe_load(p), p)
                s = strip_instance_stats(s) if "model.1.bias" in s else s
                nets[f"G_{side}"] = s
    else:
        nets["G_A"] = strip_instance_stats(state) if "model.1.bias" in state else state
    tensors, spec = {}, {}
    for name, s in nets.items():
        spec[name] = {"name": "resnet", "args": _resnet_args(s, path)}
        tensors.update({f"{name}.{k}": v.float() if v.is_floating_point() else v for k, v in s.items()})
    opts = read_train_opt(path)
    size = int(opts.get("crop_size", 256)) if opts.get("crop_size", "256").isdigit() else 256
    card = {"method": "cyclegan", "task": "photo2photo", "nets": spec, "image_size": size, "channels": 3,
            "value_range": [-1, 1], "directions": [d for d, n in (("AtoB", "G_A"), ("BtoA", "G_B")) if n in spec],
            "training": {"dataset": opts.get("dataroot", ""), "source": "junyanz/pytorch-CycleGAN-and-pix2pix"}}
    return tensors, card
