"""A loaded model file as a Translator: ``card``, declared ``controls`` and
``run(image=None, **controls) -> PIL.Image``. The studio builds its panels from ``controls``,
so a new method needs no new widget code."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from trainer.data.imageio import MAX_PIXELS, ImageError, open_image
from trainer.data.transforms import to_tensor, to_uint8
from trainer.latent_density import draw
from trainer.modelfile import ModelFileError, load_model, load_strict, subdict
from trainer.nets import build


@dataclass
class Control:
    """One user control of a model: ``kind`` is choice, int, float, bool, seed or layers (a set of
    style layers, written "0,1,6"; ``choices`` label each layer)."""
    name: str
    kind: str
    default: Any
    label: str = ""
    help: str = ""
    choices: list = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    group: str = ""  # bool controls sharing a group are mutually exclusive (at most one on)
    active_when: dict = field(default_factory=dict)  # {other control: [values]} under which this one acts

    def active(self, values: dict) -> bool:
        return all(values.get(k) in v for k, v in self.active_when.items())

    def allowed(self) -> str:
        """What values this control takes, in words (for errors and ``gan-trainer inspect``)."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) if c == "" else str(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "layers":
            n = len(self.choices)
            return f"comma-separated layer numbers from 0 to {n - 1}, or empty" if n else \
                "comma-separated layer numbers"
        what = {"int": "a whole number", "seed": "a whole number", "float": "a number"}.get(self.kind, "a value")
        lo, hi = self.minimum, self.maximum
        if self.kind == "seed":
            lo, hi = (0 if lo is None else lo), (SEED_MAX if hi is None else hi)
        fmt = (lambda v: f"{int(v)}") if self.kind in ("int", "seed") else (lambda v: f"{v:g}")
        if lo is not None and hi is not None:
            return f"{what} from {fmt(lo)} to {fmt(hi)}"
        if lo is not None:
            return f"{what} of at least {fmt(lo)}"
        if hi is not None:
            return f"{what} of at most {fmt(hi)}"
        return f"{what} (finite)"

    def check(self, value):
        """``value`` normalised (ints for int and seed controls, bools for bool ones), or a
        :class:`ControlError` that gives the allowed values."""
        def refuse(why: str = ""):
            rule = f"choose {self.allowed()}" if self.kind == "choice" else f"allowed: {self.allowed()}"
            raise ControlError(f"{self.name} = {value!r}: {why + '; ' if why else ''}{rule}")

        if self.kind == "choice":
            if value not in self.choices:
                refuse()
            return value
        if self.kind == "bool":
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            if isinstance(value, numbers.Integral) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            refuse()
        if self.kind in ("int", "seed", "float"):
            number = value
            if isinstance(number, str):
                try:
                    number = float(number.strip())
                except ValueError:
                    refuse("not a number")
            if isinstance(number, (bool, np.bool_)) or not isinstance(number, numbers.Real):
                refuse("not a number")
            if not math.isfinite(float(number)):
                refuse("not a finite number")
            if self.kind in ("int", "seed"):
                if float(number) != math.floor(float(number)):
                    refuse("not a whole number")
                number = int(number)
            else:
                number = float(number)
            lo, hi = self.minimum, self.maximum
            if self.kind == "seed":
                lo, hi = (0 if lo is None else lo), (SEED_MAX if hi is None else hi)
            if (lo is not None and number < lo) or (hi is not None and number > hi):
                refuse("out of range")
            return number
        if self.kind == "layers":
            if value in (None, ""):
                return ""
            items = value if isinstance(value, (list, tuple)) else str(value).replace(" ", "").split(",")
            try:
                layers = [int(t) for t in items if t != ""]
            except (TypeError, ValueError):
                refuse("not layer numbers")
            if self.choices and any(not 0 <= i < len(self.choices) for i in layers):
                refuse("no such layer")
            return value
        return value


SEED_MAX = 2 ** 31 - 1


class ControlError(ValueError):
    """A control value that is unknown, not finite, of the wrong type or out of range; the message
    names the control and gives its allowed values (the CLI prints it and exits with code 2)."""


def build_net(card: dict, tensors: dict, name: str, device) -> nn.Module:
    spec = card["nets"][name]
    net = build(spec["name"], **spec["args"])
    load_strict(net, subdict(tensors, name), f"model file net {name}")
    return net.to(device)


class Translator:
    """Base: holds the card and the device; subclasses declare controls and implement
    :meth:`forward_array`."""

    controls: list[Control] = []

    def __init__(self, card: dict, tensors: dict, device="cpu"):
        self.card = card
        self.device = torch.device(device)
        self.image_size = int(card.get("image_size", 256))

    @property
    def needs_image(self) -> bool:
        return True

    def defaults(self) -> dict:
        return {c.name: c.default for c in self.controls}

    def check_controls(self, controls: dict) -> dict:
        """The defaults updated with ``controls``, each value checked against its control (kind,
        finiteness, range, choices) and normalised; a :class:`ControlError` otherwise."""
        known = {c.name: c for c in self.controls}
        unknown = sorted(set(controls) - set(known))
        if unknown:
            raise ControlError(f"unknown control{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; this model "
                               f"has {', '.join(known) or 'none'}")
        values = self.defaults()
        values.update(controls)
        return {name: known[name].check(value) for name, value in values.items()}

    def run_array(self, image=None, **controls) -> np.ndarray:
        """The output as a uint8 HWC array (what the studio's worker hands to the UI thread)."""
        values = self.check_controls(controls)
        if self.needs_image and image is None:
            raise ValueError("this model translates an image: pass image=")
        if isinstance(image, np.ndarray):  # uint8 HW or HWC (the studio's canvas)
            image = Image.fromarray(np.ascontiguousarray(image))
        with torch.inference_mode():
            return self.forward_array(open_image(image) if image is not None else None, **values)

    def run(self, image=None, **controls) -> Image.Image:
        """The output as a PIL image: RGB, or greyscale ("L") for a one-channel model."""
        out = self.run_array(image, **controls)
        if self.card.get("channels") == 1 and out.ndim == 3 and (out == out[..., :1]).all():
            return Image.fromarray(np.ascontiguousarray(out[..., 0]), "L")
        return Image.fromarray(out, "RGB")

    def forward_array(self, image: Image.Image | None, **controls) -> np.ndarray:
        raise NotImplementedError

    tensor_args: tuple[str, ...] = ()  # run_tensor's tensor-valued arguments (not controls)

    def run_tensor(self, x: torch.Tensor | None = None, **controls) -> torch.Tensor:
        """A batch in, a batch out, for scripts and notebooks: ``x`` (N, C, H, W) in [-1, 1] (a CHW
        image is a batch of one) -> a float tensor (N, 3, H', W') in [-1, 1] (a DCGAN's: its own
        channels) on the translator's device. Unlike :meth:`run`, nothing is resized: the network
        runs at x's own size. Controls as for :meth:`run`, checked the same way; :attr:`tensor_args`
        take tensors instead (StyleGAN ``z``/``w``, BicycleGAN ``z``, StarGAN ``c``, DCGAN
        ``z``/``labels``); a control of the same name wins over a tensor argument."""
        names = {c.name for c in self.controls}  # a control of the same name wins over a tensor argument
        extra = {k: controls.pop(k) for k in self.tensor_args if k in controls and k not in names}
        values = self.check_controls(controls)
        single = False
        if self.needs_image:
            if x is None:
                raise ValueError("this model translates images: pass x, an (N, C, H, W) tensor in [-1, 1]")
            single = isinstance(x, torch.Tensor) and x.dim() == 3
            x = self.batch(x)
        elif x is not None:
            raise ValueError(f"this model generates from latents and takes no image: pass "
                             f"{' or '.join(a + '=' for a in self.tensor_args)} (or a seed)")
        with torch.no_grad():
            out = self.forward_tensor(x, extra, **values).clamp(-1, 1)
        return out[0] if single else out

    def __call__(self, x: torch.Tensor | None = None, **controls) -> torch.Tensor:
        """``translator(x, **controls)``: :meth:`run_tensor`."""
        return self.run_tensor(x, **controls)

    def forward_tensor(self, x: torch.Tensor | None, tensors: dict, **controls) -> torch.Tensor:
        """The batch for checked ``controls``; ``tensors`` holds the given :attr:`tensor_args`."""
        raise NotImplementedError(f"{type(self).__name__} has no tensor API")

    def batch(self, x) -> torch.Tensor:
        """``x`` checked (a finite float NCHW or CHW tensor in [-1, 1]) as NCHW float32 on the device."""
        if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4) or not x.is_floating_point():
            what = f"a {x.dim()}-D {x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected a float tensor (N, C, H, W) or (C, H, W) in [-1, 1], got {what}")
        x = (x if x.dim() == 4 else x[None]).to(self.device, torch.float32)
        if x.numel() == 0:
            raise ValueError(f"x: an empty batch {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("x: holds NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1.001 or hi > 1.001:
            raise ValueError(f"x: values in [-1, 1] expected, got [{lo:g}, {hi:g}] (from [0, 1]: x * 2 - 1; "
                             "from uint8: x / 127.5 - 1)")
        return x

    @staticmethod
    def check_size(x: torch.Tensor, multiple: int, what: str = "this generator") -> None:
        h, w = x.shape[-2:]
        if h % multiple or w % multiple:
            raise ValueError(f"x is {h}x{w}: {what} needs a height and width that are multiples of {multiple}")

    @staticmethod
    def through_tensor(x: torch.Tensor, *nets) -> torch.Tensor:
        """:meth:`through` without the resizing: ``x`` through ``nets`` in turn, as 3 channels."""
        for net in nets:
            x = net(match_channels(x, input_channels(net)))
        return match_channels(x, 3)

    def latent_batch(self, value, width: int, name: str, batch: int | None = None) -> torch.Tensor:
        """A latent argument as an (N, width) float tensor on the device (a vector is a batch of one)."""
        t = torch.as_tensor(value, dtype=torch.float32).to(self.device)
        t = t[None] if t.dim() == 1 else t
        if t.dim() != 2 or t.shape[1] != width or (batch is not None and t.shape[0] not in (1, batch)):
            want = f"({batch if batch is not None else 'N'}, {width})"
            raise ValueError(f"{name}: expected a tensor of shape {want}, got {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}: holds NaN or infinite values")
        return t if batch is None else t.expand(batch, -1)

    def through(self, image: Image.Image, *nets) -> np.ndarray:
        """``image`` resized to the model's size, through ``nets`` in turn, back to the image's size.
        A one-channel net gets the image's luma; a one-channel result comes back as grey RGB."""
        size = self.image_size
        x = to_tensor(image.resize((size, size), Image.BICUBIC))[None].to(self.device)
        for net in nets:
            x = net(match_channels(x, input_channels(net)))
        x = match_channels(x, 3)
        out = Image.fromarray(to_uint8(x[0]), "RGB")
        if out.size != image.size:
            out = out.resize(image.size, Image.BICUBIC)
        return np.asarray(out)


def input_channels(net) -> int:
    """The image channels ``net`` reads: its first convolution's input channels (less a latent
    code's ``nz``); 3 for a wrapper function (StarGAN's label, BicycleGAN's code)."""
    if isinstance(net, nn.Module):
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                return m.in_channels - int(getattr(net, "nz", 0) or 0)
    return 3


LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's convert("L")


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """NCHW ``x`` as ``channels`` channels: RGB to luma, grey to RGB; otherwise unchanged."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 3 and channels == 1:
        w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    if x.shape[1] == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    return x


TEST_MODES = ("paper", "deterministic", "eval")


def set_norm_mode(net: nn.Module, mode: str) -> None:
    """pix2pix test-time behaviour: ``paper`` = batch statistics and dropout on (as in the paper),
    ``deterministic`` = batch statistics, dropout off, ``eval`` = running statistics, no dropout.
    Batch statistics are used without updating the running ones."""
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train(mode != "eval")
            m.track_running_stats = mode == "eval"
        elif isinstance(m, nn.Dropout):
            m.train(mode == "paper")


class ImageTranslator(Translator):
    """One generator from image to image (pix2pix): any size and mode in, the input's size out."""

    controls = [
        Control("mode", "choice", "paper", "Test-time mode",
                "paper: batch statistics and dropout noise, as the pix2pix paper; deterministic: no dropout; "
                "eval: running statistics", choices=list(TEST_MODES)),
        Control("seed", "seed", 0, "Noise seed", "Seed of the dropout noise (mode paper)", minimum=0,
                maximum=2 ** 31 - 1, active_when={"mode": ["paper"]}),
    ]
    sketch_controls = [  # sketch2photo models only; a card's "inference" may change their defaults
        Control("strokes", "bool", True, "Stroke normalisation",
                "Bring the sketch's lines to the width the model was trained on (thin pen and brush lines "
                "thickened, very wide ones thinned) before it is scaled to the model's size"),
        Control("output_size", "choice", "input", "Output size",
                "input: the photo resized (bicubic) to the input's size; model: the model's own resolution",
                choices=["input", "model"]),
    ]

    def __init__(self, card, tensors, device="cpu"):
        super().__init__(card, tensors, device)
        self.G = build_net(card, tensors, "G", self.device)
        self.nz = getattr(self.G, "nz", 0)  # a BicycleGAN U-Net takes a latent code
        # its codes' distribution when the export fitted one to the training photos' codes, else N(0, 1)
        self.latent_fit = None
        if self.nz and "latent_mean" in tensors:
            mean, tril = tensors["latent_mean"].float(), tensors.get("latent_scale_tril")
            if mean.shape != (self.nz,) or tril is None or tril.shape != (self.nz, self.nz):
                raise ModelFileError(f"the latent code's fitted distribution does not match nz {self.nz}: "
                                     f"latent_mean {tuple(mean.shape)}, latent_scale_tril "
                                     f"{None if tril is None else tuple(tril.shape)}")
            self.latent_fit = (mean.to(self.device), tril.float().to(self.device))
        sketch = card.get("task") == "sketch2photo"  # stroke normalisation (docs/sketch-strokes.md)
        self.controls = [Control(**{**c.__dict__, "default": card.get("inference", {}).get(c.name, c.default)})
                         for c in ImageTranslator.controls + (ImageTranslator.sketch_controls if sketch else [])]
        if self.nz:  # BicycleGAN: the seed draws the latent code in every mode
            self.controls[1] = Control(**{**self.controls[1].__dict__, "label": "Seed", "active_when": {},
                                          "help": "Seed of the latent code (one colouring per seed) and, in "
                                                  "mode paper, of the dropout noise"})
        from trainer.data.stroke_width import TRAINING_WIDTH
        # the training sketches' line width as a fraction of the side (a card may state its own)
        self.stroke_width = float(card.get("stroke_width", TRAINING_WIDTH))

    def latent(self, seed) -> torch.Tensor | None:
        """BicycleGAN's z for ``seed``: N(0, 1), or the fitted Gaussian's ``mean + L @ eps`` (None for
        a plain pix2pix generator)."""
        if not self.nz:
            return None
        eps = torch.randn(1, self.nz, generator=torch.Generator().manual_seed(int(seed))).to(self.device)
        return eps if self.latent_fit is None else draw(*self.latent_fit, eps)

    def sketch_input(self, image: Image.Image, strokes: bool, output_size: str = "input") -> Image.Image:
        """What the generator is given: with ``strokes``, a line drawing whose lines are thinner or
        wider than the training sketches' has them measured at its own resolution, redrawn at the
        training width and is scaled to the model's size (:func:`trainer.data.stroke_width.normalise`;
        lines of a training width, or an image without dark lines, are left as they are); for
        ``output_size`` "model", scaled to the model's size as :meth:`through` would."""
        size = self.image_size
        if strokes:
            from trainer.data.stroke_width import normalise
            normalised = normalise(image, self.stroke_width, size)
            if normalised is not None:
                return normalised
        if output_size == "model" and image.size != (size, size):
            return image.resize((size, size), Image.BICUBIC)
        return image

    def forward_array(self, image, mode="paper", seed=0, strokes=False, output_size="input"):
        set_norm_mode(self.G, mode)
        z = self.latent(seed)
        shown = image.size if output_size == "input" else (self.image_size, self.image_size)
        image = self.sketch_input(image, strokes, output_size)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(int(seed))
            out = self.through(image, self.G if z is None else lambda x: self.G(x, z))  # G may be a ResNet
        if out.shape[1::-1] != shown:  # normalised at the model's size: back to the input's
            out = np.asarray(Image.fromarray(out).resize(shown, Image.BICUBIC))
        return out

    tensor_args = ("z",)

    def normalise_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Stroke normalisation of each image of a batch at its own size (line drawings only)."""
        from trainer.data.stroke_width import normalise
        out = []
        for xi in x:
            image = Image.fromarray(to_uint8(xi) if xi.shape[0] != 1 else to_uint8(xi.expand(3, -1, -1)), "RGB")
            n = normalise(image, self.stroke_width, image.size)
            out.append(xi if n is None else
                       match_channels(to_tensor(n)[None].to(x.device, x.dtype), xi.shape[0])[0])
        return torch.stack(out)

    def forward_tensor(self, x, tensors, mode="paper", seed=0, strokes=False, output_size="input"):
        """``z`` (N, nz): BicycleGAN's standard-normal draws, mapped through the model's fitted
        Gaussian when it has one (as ``seed`` is); default: the seed's code for every image. Modes
        paper and deterministic use each image's own batch statistics and, in paper mode, dropout
        seeded by ``seed``, exactly as :meth:`run` does image by image. ``strokes`` (sketch2photo)
        normalises each line drawing's strokes at x's own size; ``output_size`` is :meth:`run`'s
        (nothing is resized here)."""
        spec = self.card["nets"]["G"]
        self.check_size(x, 2 ** int(spec["args"].get("num_downs", 8)) if spec["name"] == "unet" else 4)
        if strokes:
            x = self.normalise_batch(x)
        n, z = x.shape[0], tensors.get("z")
        codes = None
        if self.nz:
            if z is None:
                codes = self.latent(seed).expand(n, -1)
            else:
                codes = self.latent_batch(z, self.nz, "z", n)
                codes = codes if self.latent_fit is None else draw(*self.latent_fit, codes)
        elif z is not None:
            raise ValueError("z: this generator takes no latent code (only BicycleGAN's does)")
        set_norm_mode(self.G, mode)

        def run(xb, cb):
            return self.through_tensor(xb, self.G if cb is None else lambda t: self.G(t, cb))
        if mode == "eval":
            return run(x, codes)
        outs = []
        for i in range(n):
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(int(seed))
                outs.append(run(x[i:i + 1], None if codes is None else codes[i:i + 1]))
        return torch.cat(outs)


class CycleTranslator(Translator):
    """CycleGAN's two generators: a direction control, and the cycle reconstruction on request.
    A model file with one generator (a shared one-direction model) offers that direction only."""

    def __init__(self, card, tensors, device="cpu"):
        super().__init__(card, tensors, device)
        self.G = {n: build_net(card, tensors, n, self.device).eval() for n in ("G_A", "G_B") if n in card["nets"]}
        directions = [d for d, n in (("AtoB", "G_A"), ("BtoA", "G_B")) if n in self.G]
        outputs = ["translation", "reconstruction"] if len(self.G) == 2 else ["translation"]
        self.controls = [
            Control("direction", "choice", directions[0], "Direction", "A to B or B to A", choices=directions),
            Control("output", "choice", "translation", "Output",
                    "translation, or the cycle reconstruction (translated there and back)", choices=outputs)]

    def forward_array(self, image, direction="AtoB", output="translation"):
        there, back = (self.G.get("G_A"), self.G.get("G_B")) if direction == "AtoB" else \
            (self.G.get("G_B"), self.G.get("G_A"))
        nets = [there] if output == "translation" else [there, back]
        return self.through(image, *nets)

    def forward_tensor(self, x, tensors, direction="AtoB", output="translation"):
        self.check_size(x, 4)
        there, back = (self.G.get("G_A"), self.G.get("G_B")) if direction == "AtoB" else \
            (self.G.get("G_B"), self.G.get("G_A"))
        return self.through_tensor(x, *([there] if output == "translation" else [there, back]))


class StarTranslator(Translator):
    """StarGAN: one checkbox per domain (hair colours exclusive: like radio buttons that may all be
    off), and for a model trained jointly with a class-folder dataset, a class choice. The
    generator stays in training mode (instance statistics), without touching its running ones."""

    def __init__(self, card, tensors, device="cpu"):
        super().__init__(card, tensors, device)
        self.G = build_net(card, tensors, "G", self.device).train()
        for m in self.G.modules():
            if isinstance(m, nn.InstanceNorm2d):
                m.momentum = 0.0  # instance statistics, running ones left as trained
        self.domains = list(card.get("domains", []))
        self.classes = list(card.get("classes", []))
        groups = card.get("exclusive_groups", [])
        group_of = {d: f"group{i}" for i, g in enumerate(groups) for d in g}
        self.controls = [Control(d, "bool", False, d.replace("_", " "), f"Target domain {d}",
                                 group=group_of.get(d, "")) for d in self.domains]
        if self.classes:
            self.controls.append(Control("target_class", "choice", "", "Class",
                                         "A class of the second dataset (empty: use the attributes)",
                                         choices=["", *self.classes]))

    def check_controls(self, controls):
        values = super().check_controls(controls)
        for c in self.controls:
            if c.group and values[c.name]:
                others = [o.name for o in self.controls if o.group == c.group and o.name != c.name and values[o.name]]
                if others:
                    raise ValueError(f"{c.name} and {', '.join(others)} are mutually exclusive")
        return values

    def label(self, values) -> torch.Tensor:
        attrs = torch.tensor([[float(values[d]) for d in self.domains]], device=self.device)
        if not self.classes:
            return attrs
        cls = values.get("target_class", "")
        onehot = torch.zeros(1, len(self.classes), device=self.device)
        mask = torch.tensor([[0.0, 1.0] if cls else [1.0, 0.0]], device=self.device)
        if cls:
            onehot[0, self.classes.index(cls)] = 1
            attrs = torch.zeros_like(attrs)
        return torch.cat([attrs, onehot, mask], 1)

    def forward_array(self, image, **values):
        c = self.label(values)
        return self.through(image, lambda x: self.G(x, c))

    tensor_args = ("c",)

    def forward_tensor(self, x, tensors, **values):
        """``c`` (N, label size): the generator's target vector itself, instead of the controls."""
        self.check_size(x, 4)
        label, c = self.label(values), tensors.get("c")
        c = label.expand(x.shape[0], -1) if c is None else self.latent_batch(c, label.shape[1], "c", x.shape[0])
        return self.through_tensor(x, lambda t: self.G(t, c))


class SampleTranslator(Translator):
    """A generator from noise (DCGAN, WGAN-GP): a seed, and a class when conditional."""

    def __init__(self, card, tensors, device="cpu"):
        super().__init__(card, tensors, device)
        self.G = build_net(card, tensors, "G", self.device).eval()
        self.classes = list(card.get("classes", []))
        self.controls = [Control("seed", "seed", 0, "Seed", "Seed of the noise vector z", minimum=0,
                                 maximum=2 ** 31 - 1)]
        if self.classes:
            self.controls.append(Control("class_name", "choice", self.classes[0], "Class", "The class to draw",
                                         choices=self.classes))

    @property
    def needs_image(self) -> bool:
        return False

    def forward_array(self, image, seed=0, class_name=None):
        nz = self.card["nets"]["G"]["args"]["nz"]
        z = torch.randn(1, nz, generator=torch.Generator().manual_seed(int(seed))).to(self.device)
        labels = torch.tensor([self.classes.index(class_name)], device=self.device) if self.classes else None
        return to_uint8(self.G(z, labels)[0])

    tensor_args = ("z", "labels")

    def forward_tensor(self, x, tensors, seed=0, class_name=None):
        """``z`` (N, nz), default the seed's; ``labels`` (N,) class indices, default ``class_name``."""
        nz = self.card["nets"]["G"]["args"]["nz"]
        z, labels = tensors.get("z"), tensors.get("labels")
        if z is None:
            z = torch.randn(1, nz, generator=torch.Generator().manual_seed(int(seed)))
        z = self.latent_batch(z, nz, "z")
        if not self.classes:
            if labels is not None:
                raise ValueError("labels: this generator is not conditional")
            return self.G(z, None)
        if labels is None:
            labels = torch.full((z.shape[0],), self.classes.index(class_name), device=self.device)
        labels = torch.as_tensor(labels).to(self.device).long().reshape(-1)
        if labels.shape[0] != z.shape[0] or not ((labels >= 0) & (labels < len(self.classes))).all():
            raise ValueError(f"labels: {z.shape[0]} class indices from 0 to {len(self.classes) - 1} expected")
        return self.G(z, labels)


class StyleTranslator(Translator):
    """StyleGAN: source seed (w1), style seed (w2), crossover (layers below it take w1, the rest w2),
    truncation psi towards the mean latent, noise mode and strength, and a fixed-noise seed so that
    moving a slider changes only what the slider controls."""

    def __init__(self, card, tensors, device="cpu"):
        super().__init__(card, tensors, device)
        self.G = build_net(card, tensors, "G", self.device).eval()
        if "latent_avg" in tensors:
            self.mean_w = tensors["latent_avg"].to(self.device).reshape(1, -1)
        else:  # the mean of 4096 mapped latents, the same every time
            with torch.no_grad():
                self.mean_w = self.G.mean_latent(4096, torch.Generator(device=self.device).manual_seed(0))
        n = self.G.n_latent
        res = self.G.layer_resolutions()
        self.controls = [
            Control("seed", "seed", 0, "Source seed", "z of the source (layers below the crossover)", minimum=0,
                    maximum=2 ** 31 - 1),
            Control("style_seed", "seed", 1, "Style seed", "z of the style (layers from the crossover on)",
                    minimum=0, maximum=2 ** 31 - 1),
            Control("crossover", "int", n, "Crossover layer",
                    "layers below it follow the source; " + ", ".join(f"{i}: {r} px" for i, r in enumerate(res)),
                    minimum=0, maximum=n),
            Control("style_layers", "layers", "", "Style layers",
                    "the layers that take the style seed's w, as indices (e.g. 0,1,6); empty: use the crossover",
                    choices=[f"{i}: {r} px" for i, r in enumerate(res)]),
            Control("psi", "float", 0.7, "Truncation psi", "1: the full variety; 0: the mean face", minimum=0.0,
                    maximum=1.0),
            Control("noise_mode", "choice", "const", "Noise", "random: new noise each time; const: fixed; off; "
                    "stored: the model's own noise maps (rosinality's randomize_noise=False)",
                    choices=["random", "const", "off", "stored"]),
            Control("noise_strength", "float", 1.0, "Noise strength", "a multiplier on every noise input",
                    minimum=0.0, maximum=2.0),
            Control("noise_seed", "seed", 0, "Noise seed", "the fixed noise maps (noise mode const)", minimum=0,
                    maximum=2 ** 31 - 1),
        ]

    @property
    def needs_image(self) -> bool:
        return False

    def latent(self, seed) -> torch.Tensor:
        z = torch.randn(1, self.G.style_dim, generator=torch.Generator().manual_seed(int(seed))).to(self.device)
        return self.G.mapping(z)

    def noise(self, mode, strength, seed):
        if mode == "random":
            return None
        if mode == "stored":  # the generator's noises.noise_N buffers, as the checkpoint holds them
            return [m * float(strength) for m in self.G.const_noise()]
        maps = []
        g = torch.Generator().manual_seed(int(seed))
        for i in range(self.G.num_layers):
            res = 2 ** ((i + 5) // 2)
            m = torch.randn(1, 1, res, res, generator=g).to(self.device)
            maps.append(m * float(strength) if mode == "const" else torch.zeros_like(m))
        return maps

    @staticmethod
    def parse_layers(text, n: int) -> list[int]:
        """'0,1,6' (or a list of ints) -> sorted layer indices, each checked against n."""
        items = text if isinstance(text, (list, tuple)) else [t for t in str(text).replace(" ", "").split(",") if t]
        try:
            layers = sorted({int(t) for t in items})
        except ValueError:
            raise ValueError(f"style_layers = {text!r}: comma-separated layer numbers, e.g. 0,1,6") from None
        bad = [i for i in layers if not 0 <= i < n]
        if bad:
            raise ValueError(f"style_layers: no layer {bad[0]}; this model has layers 0..{n - 1}")
        return layers

    def style_mask(self, crossover, style_layers) -> torch.Tensor:
        """(n_latent,) bool: the layers that take the style seed's w: ``style_layers`` when given,
        else every layer from ``crossover`` on (none when it is None)."""
        n = self.G.n_latent
        if style_layers not in (None, ""):
            mask = torch.zeros(n, dtype=torch.bool, device=self.device)
            mask[self.parse_layers(style_layers, n)] = True
            return mask
        k = n if crossover is None else max(0, min(n, int(crossover)))
        return torch.arange(n, device=self.device) >= k

    def styles(self, seed, style_seed, crossover, style_layers, psi) -> torch.Tensor:
        """Per-layer w (1, n_latent, style_dim): the source's w, the style seed's w at the style
        layers (``style_layers``, else every layer from ``crossover`` on), both truncated by psi."""
        n = self.G.n_latent
        w1, w2 = (self.mean_w + float(psi) * (w - self.mean_w) for w in (self.latent(seed), self.latent(style_seed)))
        mask = self.style_mask(crossover, style_layers)
        return torch.where(mask.view(1, n, 1), w2.unsqueeze(1), w1.unsqueeze(1))

    def forward_array(self, image, seed=0, style_seed=1, crossover=None, style_layers="", psi=0.7,
                      noise_mode="const", noise_strength=1.0, noise_seed=0):
        w = self.styles(seed, style_seed, crossover, style_layers, psi)
        if noise_mode == "random" and float(noise_strength) != 1.0:
            noise = [torch.randn(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2), device=self.device)
                     * float(noise_strength) for i in range(self.G.num_layers)]
        else:
            noise = self.noise(noise_mode, noise_strength, noise_seed)
        return to_uint8(self.G.synthesis(w, noise)[0])

    def interpolate(self, seed_a, seed_b, frames: int = 24, psi=0.7, noise_mode="const", noise_strength=1.0,
                    noise_seed=0, **_) -> list[np.ndarray]:
        """Frames from seed_a's image to seed_b's, linear in w, with the same noise throughout."""
        checked = self.check_controls({"seed": seed_a, "style_seed": seed_b, "psi": psi, "noise_mode": noise_mode,
                                       "noise_strength": noise_strength, "noise_seed": noise_seed})
        seed_a, seed_b, psi, noise_mode, noise_strength, noise_seed = (
            checked[k] for k in ("seed", "style_seed", "psi", "noise_mode", "noise_strength", "noise_seed"))
        if isinstance(frames, bool) or not isinstance(frames, numbers.Real) or not 2 <= frames <= 10000:
            raise ControlError(f"frames = {frames!r}: allowed: a whole number from 2 to 10000")
        wa, wb = (self.styles(s, s, None, "", psi) for s in (seed_a, seed_b))
        noise = self.noise("const" if noise_mode == "random" else noise_mode, noise_strength, noise_seed)
        out = []
        with torch.inference_mode():
            for t in torch.linspace(0, 1, max(2, int(frames))):
                out.append(to_uint8(self.G.synthesis(torch.lerp(wa, wb, float(t)), noise)[0]))
        return out


    tensor_args = ("z", "w", "style_z", "style_w")

    def latent_w(self, z, w, seed, names) -> torch.Tensor:
        """w of ``z`` (N, style_dim) mapped, or ``w`` as given ((N, style_dim) or per layer
        (N, n_latent, style_dim)), or the seed's w (1, style_dim)."""
        if z is not None and w is not None:
            raise ValueError(f"pass {names[0]} or {names[1]}, not both")
        d, n = self.G.style_dim, self.G.n_latent
        if z is not None:
            return self.G.mapping(self.latent_batch(z, d, names[0]))
        if w is None:
            return self.latent(seed)
        w = torch.as_tensor(w, dtype=torch.float32).to(self.device)
        w = w[None] if w.dim() == 1 else w
        if not (w.dim() == 2 and w.shape[1] == d) and not (w.dim() == 3 and w.shape[1:] == (n, d)):
            raise ValueError(f"{names[1]}: expected (N, {d}) or (N, {n}, {d}), got {tuple(w.shape)}")
        if not torch.isfinite(w).all():
            raise ValueError(f"{names[1]}: holds NaN or infinite values")
        return w

    def forward_tensor(self, x, tensors, seed=0, style_seed=1, crossover=None, style_layers="", psi=0.7,
                       noise_mode="const", noise_strength=1.0, noise_seed=0):
        """``z`` (N, style_dim) or ``w`` ((N, style_dim) or (N, n_latent, style_dim)), default the
        seed's; ``style_z``/``style_w`` the style latents (default the style seed's) that the layers
        from ``crossover`` (or ``style_layers``) take. Both are truncated by ``psi`` towards the mean
        w, as :meth:`run` does; noise_mode "stored" uses the checkpoint's own noise maps."""
        n, d = self.G.n_latent, self.G.style_dim
        mean = self.mean_w.view(1, 1, d)
        w1, w2 = (mean + float(psi) * ((v if v.dim() == 3 else v.unsqueeze(1).expand(-1, n, -1)) - mean)
                  for v in (self.latent_w(tensors.get("z"), tensors.get("w"), seed, ("z", "w")),
                            self.latent_w(tensors.get("style_z"), tensors.get("style_w"), style_seed,
                                          ("style_z", "style_w"))))
        if w1.shape[0] != w2.shape[0] and 1 not in (w1.shape[0], w2.shape[0]):
            raise ValueError(f"the source latents are a batch of {w1.shape[0]} and the style latents of "
                             f"{w2.shape[0]}: give both the same batch size (or one of them a batch of one)")
        mask = self.style_mask(crossover, style_layers)
        wl = torch.where(mask.view(1, n, 1), w2, w1)
        if noise_mode == "random" and float(noise_strength) != 1.0:
            noise = [torch.randn(wl.shape[0], 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2), device=self.device)
                     * float(noise_strength) for i in range(self.G.num_layers)]
        else:
            noise = self.noise(noise_mode, noise_strength, noise_seed)
        return self.G.synthesis(wl, noise)

def upscale_tiled(net: nn.Module, x: torch.Tensor, scale: int, tile: int, overlap: int) -> np.ndarray:
    """``net`` (an x``scale`` upsampler) over ``x`` (1CHW) in tiles of ``tile`` input pixels that
    overlap by ``overlap`` on each side; only each tile's core is kept, so the seams see the same
    context as an untiled pass. Memory stays bounded by the tile; the result is uint8 HWC."""
    return to_uint8(upscale_tiled_tensor(net, x, scale, tile, overlap)[0])


def upscale_tiled_tensor(net: nn.Module, x: torch.Tensor, scale: int, tile: int, overlap: int) -> torch.Tensor:
    """:func:`upscale_tiled` for a batch, as a float NCHW tensor (the same tiles, the same cores)."""
    n, _, h, w = x.shape
    out = None
    step = max(1, tile - 2 * overlap)
    for y0 in range(0, h, step):
        for x0 in range(0, w, step):
            y1, x1 = min(y0 + step, h), min(x0 + step, w)
            ya, xa, yb, xb = max(0, y0 - overlap), max(0, x0 - overlap), min(h, y1 + overlap), min(w, x1 + overlap)
            o = net(x[:, :, ya:yb, xa:xb])
            if out is None:
                out = o.new_empty(n, o.shape[1], h * scale, w * scale)
            out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                o[:, :, (y0 - ya) * scale:(y1 - ya) * scale, (x0 - xa) * scale:(x1 - xa) * scale]
    return out


class SuperResTranslator(Translator):
    """SRResNet / SRGAN: any image enlarged by the model's factor, in overlapping tiles."""

    controls = [
        Control("tile", "int", 128, "Tile size", "input pixels per tile; smaller uses less memory", minimum=16,
                maximum=2048),
        Control("overlap", "int", 16, "Tile overlap", "context pixels around each tile (hides seams)", minimum=0,
                maximum=256),
    ]

    def __init__(self, card, tensors, device="cpu"):
        super().__init__(card, tensors, device)
        self.G = build_net(card, tensors, "G", self.device).eval()
        self.scale = int(card["nets"]["G"]["args"].get("scale", 4))

    def forward_array(self, image, tile=128, overlap=16):
        pixels = image.width * image.height * self.scale ** 2
        if pixels > MAX_PIXELS:
            raise ImageError(f"a {image.width}x{image.height} image enlarged {self.scale}x would have "
                             f"{pixels / 1e6:.0f} megapixels (the limit is {MAX_PIXELS / 1e6:.0f}); crop or "
                             "shrink it first")
        x = to_tensor(image)[None].to(self.device)
        return upscale_tiled(self.G, x, self.scale, max(1, int(tile)), max(0, int(overlap)))

    def forward_tensor(self, x, tensors, tile=128, overlap=16):
        pixels = x.shape[0] * x.shape[2] * x.shape[3] * self.scale ** 2
        if pixels > MAX_PIXELS:
            raise ImageError(f"a batch of {x.shape[0]} {x.shape[3]}x{x.shape[2]} images enlarged {self.scale}x "
                             f"would have {pixels / 1e6:.0f} megapixels (the limit is {MAX_PIXELS / 1e6:.0f})")
        return upscale_tiled_tensor(self.G, x, self.scale, max(1, int(tile)), max(0, int(overlap)))


class StyleTransferTranslator(Translator):
    """Fast style transfer: any photo stylised at its own resolution (up to ``max_side``)."""

    controls = [
        Control("max_side", "int", 1024, "Largest side", "larger photos are stylised at this size, then "
                "scaled back", minimum=64, maximum=4096),
    ]

    def __init__(self, card, tensors, device="cpu"):
        super().__init__(card, tensors, device)
        self.G = build_net(card, tensors, "G", self.device).eval()

    def forward_array(self, image, max_side=1024):
        work = image
        if max(image.size) > int(max_side):
            k = int(max_side) / max(image.size)
            work = image.resize((max(1, round(image.width * k)), max(1, round(image.height * k))), Image.BICUBIC)
        out = to_uint8(self.G(to_tensor(work)[None].to(self.device))[0])
        if work.size != image.size:
            out = np.asarray(Image.fromarray(out).resize(image.size, Image.BICUBIC))
        return out

    def forward_tensor(self, x, tensors, max_side=1024):
        """At x's own size (``max_side`` is for :meth:`run`, which shrinks large photos)."""
        return self.G(x)


TRANSLATORS = {"stylegan": StyleTranslator, "pix2pix": ImageTranslator, "cyclegan": CycleTranslator, "stargan": StarTranslator,
               "dcgan": SampleTranslator, "wgan_gp": SampleTranslator, "srgan": SuperResTranslator,
               "fast_style": StyleTransferTranslator}


def load(path, device="cpu") -> Translator:
    """Load a model file as a Translator for its method."""
    tensors, card = load_model(path)
    method = card.get("method")
    if method not in TRANSLATORS:
        raise ValueError(f"{path}: method {method!r} has no translator in this version "
                         f"(known: {', '.join(TRANSLATORS)})")
    return TRANSLATORS[method](card, tensors, device)
