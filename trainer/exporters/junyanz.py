"""U-Net and ResNet generators as junyanz/pytorch-CycleGAN-and-pix2pix checkpoints.

One generator: one file as named (``latest_net_G.pth``). A pair: ``..._G_A.pth`` and ``..._G_B.pth``
(a name ending in ``_G_A``, ``_G_B`` or ``_G`` picks the pair's stem; any other gets ``_G_A``/``_G_B``
appended). A ``train_opt.txt`` beside them (written only if the
folder has none) records what the keys cannot say: dropout, direction, image size.
"""
from __future__ import annotations

from pathlib import Path

from trainer.exporters import ExportRefused, ReferenceExport, net_state

UNET_NAMES = {7: "unet_128", 8: "unet_256"}
RESNET_NAMES = {6: "resnet_6blocks", 9: "resnet_9blocks"}


def refusal(spec: dict) -> str | None:
    """Why the reference cannot build this generator, or None."""
    name, a = spec["name"], spec["args"]
    if a.get("norm", "batch" if name == "unet" else "instance") not in ("batch", "instance"):
        return (f"norm {a['norm']!r}: the reference's convolutions before no norm carry no bias and ours do, "
                "so the keys differ")
    if name == "unet":
        if a.get("nz", 0):
            return (f"a BicycleGAN generator (a pix2pix U-Net with a latent code input, nz={a['nz']}): "
                    "the reference's U-Net takes no latent code")
        if a.get("upsample", "transpose") != "transpose":
            return (f"a U-Net with upsample={a['upsample']!r} (resize-convolution): the reference upsamples "
                    "by transposed convolution, so its keys and function differ")
        return None
    if name == "resnet":
        if a.get("residual"):
            return ("a residual ResNet generator (output = input + the network's output, clamped): the "
                    "reference's ResnetGenerator has no residual option, so the same weights would compute "
                    "another function")
        if a.get("padding_type", "reflect") != "reflect":
            return f"padding_type {a['padding_type']!r}: the reference's define_G builds reflection padding only"
        return None
    return f"generator {name!r} has no equivalent in junyanz/pytorch-CycleGAN-and-pix2pix"


def net_g(spec: dict) -> str:
    """The ``--netG`` of a generator, or how to build it when define_G has no name for it."""
    a = spec["args"]
    if spec["name"] == "unet":
        n = a.get("num_downs", 8)
        return UNET_NAMES.get(n) or f"UnetGenerator(num_downs={n})"
    n = a.get("n_blocks", 9)
    return RESNET_NAMES.get(n) or f"ResnetGenerator(n_blocks={n})"


def pair_paths(out: Path, names: list[str]) -> dict[str, Path]:
    if len(names) == 1:
        return {names[0]: out}
    stem = out.stem
    base = stem[:-2] if stem.endswith(("_G_A", "_G_B")) else stem if stem.endswith("_G") else stem + "_G"
    return {n: out.with_name(f"{base}_{n[-1]}{out.suffix}") for n in names}


def train_opt(options: dict) -> str:
    """Options in the layout of the reference's ``train_opt.txt``."""
    lines = ["----------------- Options ---------------"]
    lines += [f"{k:>25}: {str(v):<30}" for k, v in sorted(options.items())]
    lines.append("----------------- End -------------------")
    return "\n".join(lines) + "\n"


def plan(tensors: dict, card: dict, out: Path, names: list[str], model: str, paired: bool) -> ReferenceExport:
    """The files for the card's nets ``names`` (a generator, or a pair of directions) as junyanz's
    ``--model`` ``model``; ``paired``: an aligned (A, B) model, whose direction and test-time
    ``--eval`` the options carry. Raises :class:`~trainer.errors.ExportRefused` for a generator the
    reference cannot build."""
    for n in names:
        why = refusal(card["nets"][n])
        if why:
            raise ExportRefused(f"refused: {why}. Export it to ONNX instead (--onnx FILE), or keep the model file")
    spec = card["nets"][names[0]]
    a = spec["args"]
    norm = a.get("norm", "batch" if spec["name"] == "unet" else "instance")
    dropout = bool(a.get("use_dropout", False))
    size = int(card.get("image_size", 256))
    opts = {"model": model, "netG": net_g(spec), "norm": norm,
            "ngf": a.get("ngf", 64), "input_nc": a.get("input_nc", 3), "output_nc": a.get("output_nc", 3),
            "no_dropout": not dropout, "crop_size": size, "load_size": size}
    if paired:
        opts["direction"] = card.get("direction", "AtoB")
    paths = pair_paths(out, names)
    files = {paths[n]: net_state(tensors, card, n) for n in names}
    named = "(" not in opts["netG"]  # define_G names only unet_128/256 and resnet_6/9blocks
    cmd = [f"--model {model}", *([f"--netG {opts['netG']}"] if named else []), f"--norm {norm}", f"--ngf {opts['ngf']}"]
    if opts["input_nc"] != 3 or opts["output_nc"] != 3:
        cmd.append(f"--input_nc {opts['input_nc']} --output_nc {opts['output_nc']}")
    if not dropout:
        cmd.append("--no_dropout")
    if paired:
        cmd.append(f"--direction {opts['direction']}")
        if card.get("inference", {}).get("mode") == "eval":
            cmd.append("--eval")
    cmd.append(f"--crop_size {size} --load_size {size}")
    options = "python test.py " + " ".join(cmd)
    if not named:
        ctor = (f"UnetGenerator({opts['input_nc']}, {opts['output_nc']}, num_downs={a.get('num_downs', 8)}"
                if spec["name"] == "unet" else
                f"ResnetGenerator({opts['input_nc']}, {opts['output_nc']}, n_blocks={a.get('n_blocks', 9)}")
        options += (f" with define_G building models.networks.{ctor}, ngf={opts['ngf']}, use_dropout={dropout}) "
                    "(no --netG names it)")
    return ReferenceExport(files, {out.parent / "train_opt.txt": train_opt(opts)}, options)
