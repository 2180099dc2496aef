"""Checkpoints of junyanz/pytorch-CycleGAN-and-pix2pix (``latest_net_G.pth``): plain state dicts,
its U-Net generator (:func:`import_unet`) and its ResNet generators (:func:`import_resnet`).

Everything the tensors say is read from the tensors: channels in and out (1 or 3), ngf, depth,
batch vs instance norm (batch norm layers carry an affine weight with their running statistics),
and in a ResNet block whether dropout sits between the convolutions (it moves the second
convolution from ``conv_block.5`` to ``conv_block.6``; under batch norm ``conv_block.6`` is the
second norm, a 1-D weight, not a convolution). U-Net dropout leaves no key: it is taken from a
``train_opt.txt`` beside the checkpoint and otherwise assumed off. Instance-norm running
statistics that old PyTorch versions saved are dropped, as the reference loader does.
"""
from __future__ import annotations

import re
from pathlib import Path

from trainer.importers import (CheckpointImportError, as_state_dict, best_match, check_channels, few, require,
                               safe_load)
from trainer.nets.resnet import ResnetGenerator
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


def is_unet(state: dict) -> bool:
    """The keys of a junyanz U-Net generator (``model.model.0.weight``)."""
    return "model.model.0.weight" in state


def is_resnet(state: dict) -> bool:
    """The keys of a junyanz ResNet generator (``model.1.weight`` and ``model.N.conv_block.*``)."""
    return "model.1.weight" in state and any(".conv_block." in k for k in state)


def norm_of(state: dict) -> str:
    """``batch`` when some layer has running statistics next to a 1-D affine weight (a
    BatchNorm2d); instance norm (affine=False) has none, or running statistics alone when an old
    PyTorch saved them."""
    for k, v in state.items():
        if k.endswith(".running_mean"):
            weight = state.get(k[: -len("running_mean")] + "weight")
            if weight is not None and weight.dim() == 1:
                return "batch"
    return "instance"


def strip_instance_stats(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.rsplit(".", 1)[-1] not in NORM_STATS}


def _float(state: dict, prefix: str) -> dict:
    return {f"{prefix}.{k}": v.float() if v.is_floating_point() else v for k, v in state.items()}


def import_unet(state: dict, path: Path, direction: str | None = None, **_):
    """A U-Net generator (``latest_net_G.pth`` of a pix2pix training): (tensors under ``G.``, card
    without ``method``). Channels, ngf, depth and norm come from the tensors, dropout and the
    direction (``direction`` overrides it) from a ``train_opt.txt`` beside the file."""
    opts = read_train_opt(path)
    what = "pix2pix U-Net generator"
    first = require(state, "model.model.0.weight", path, what, dim=4)
    last = require(state, "model.model.3.weight", path, what, dim=4)  # the outermost transposed conv
    ngf, input_nc, output_nc = first.shape[0], first.shape[1], last.shape[1]
    check_channels(path, "model.model.0.weight", first.shape, input_nc, "in")
    check_channels(path, "model.model.3.weight", last.shape, output_nc, "out")
    norm = norm_of(state)
    if norm == "instance":
        state = strip_instance_stats(state)
    # dropout leaves no key: only train_opt.txt knows (no_dropout: False); without it, assume none
    dropout = opts.get("no_dropout") == "False"
    candidates = [{"input_nc": input_nc, "output_nc": output_nc, "num_downs": n, "ngf": ngf, "norm": norm,
                   "use_dropout": dropout} for n in range(5, 11)]
    args, problem = best_match(UnetGenerator, candidates, state)
    if args is None:
        raise CheckpointImportError(f"{path}: a U-Net generator's first layer, but no U-Net of 5 to 10 levels, "
                                    f"ngf {ngf}, {norm} norm matches its keys and shapes: {problem}")
    direction = direction or opts.get("direction", "AtoB")
    card = {"task": "photo2photo",
            "nets": {"G": {"name": "unet", "args": args}},
            "image_size": 2 ** args["num_downs"], "channels": output_nc, "value_range": [-1, 1],
            "direction": direction, "inference": {"mode": "paper"},
            "training": {"dataset": opts.get("dataroot", ""), "source": "junyanz/pytorch-CycleGAN-and-pix2pix",
                         "dropout": "from train_opt.txt" if "no_dropout" in opts else
                         "assumed off (no train_opt.txt saying no_dropout: False)"}}
    return _float(state, "G"), card


def _resnet_args(state: dict, path: Path) -> dict:
    what = "CycleGAN ResNet generator"
    first = require(state, "model.1.weight", path, what, dim=4)
    norm = norm_of(state)
    blocks = {int(k.split(".")[1]) for k in state if ".conv_block." in k}
    if not blocks:
        raise CheckpointImportError(f"{path}: not a {what}: no key model.N.conv_block.* (its first keys: "
                                    f"{few(state)})")
    # the block's convolutions (4-D weights): 1 and 5, or 1 and 6 with dropout between them
    convs = {int(k.split(".")[3]) for k, v in state.items()
             if ".conv_block." in k and k.endswith(".weight") and v.dim() == 4}
    dropout = 6 in convs
    outs = [k for k, v in state.items() if k.endswith(".weight") and v.dim() == 4 and ".conv_block." not in k]
    out_key = max(outs, key=lambda k: int(k.split(".")[1]))
    input_nc, output_nc = first.shape[1], state[out_key].shape[0]
    check_channels(path, "model.1.weight", first.shape, input_nc, "in")
    check_channels(path, out_key, state[out_key].shape, output_nc, "out")
    args = {"input_nc": input_nc, "output_nc": output_nc, "ngf": first.shape[0], "norm": norm,
            "use_dropout": dropout, "n_blocks": len(blocks)}
    found, problem = best_match(ResnetGenerator, [args], state)
    if found is None:
        raise CheckpointImportError(f"{path}: looks like a ResNet generator ({len(blocks)} blocks, ngf "
                                    f"{args['ngf']}, {norm} norm, {'with' if dropout else 'no'} dropout) but its "
                                    f"keys and shapes do not match one: {problem}")
    return args


def import_resnet(state: dict, path: Path, **_):
    """ResNet generators (a CycleGAN training's): a single one (``latest_net_G.pth``, one direction
    A->B) or a pair: given ``latest_net_G_A.pth`` (or ``_G_B``), its sibling is read too, with the
    same safe loading. Returns (tensors under ``G_A.`` / ``G_B.``, card without ``method``)."""
    require(state, "model.1.weight", path, "CycleGAN ResNet generator", dim=4)
    nets = {}
    stem = path.stem
    if stem.endswith(("_G_A", "_G_B")):
        for side in ("A", "B"):
            p = path.with_name(stem[:-1] + side + path.suffix)
            if p.is_file():
                nets[f"G_{side}"] = (state if p == path else as_state_dict(safe_load(p), p), p)
    else:
        nets["G_A"] = (state, path)
    tensors, spec = {}, {}
    for name, (s, p) in nets.items():
        s = strip_instance_stats(s) if norm_of(s) == "instance" else s
        args = _resnet_args(s, p)
        spec[name] = {"name": "resnet", "args": args}
        tensors.update(_float(s, name))
    opts = read_train_opt(path)
    size = int(opts.get("crop_size", 256)) if opts.get("crop_size", "256").isdigit() else 256
    channels = next(iter(spec.values()))["args"]["output_nc"]
    card = {"task": "photo2photo", "nets": spec, "image_size": size, "channels": channels,
            "value_range": [-1, 1], "directions": [d for d, n in (("AtoB", "G_A"), ("BtoA", "G_B")) if n in spec],
            "training": {"dataset": opts.get("dataroot", ""), "source": "junyanz/pytorch-CycleGAN-and-pix2pix"}}
    return tensors, card
