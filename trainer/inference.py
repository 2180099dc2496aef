"""A loaded model file as a Translator: ``card``, declared ``controls`` and
``run(image=None, **controls) -> PIL.Image``. The studio builds its panels from ``controls``,
so a new method needs no new widget code."""
from __future__ import annotations

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
        known = {c.name: c for c in self.controls}
        unknown = sorted(set(controls) - set(known))
        if unknown:
            raise ValueError(f"unknown control(s) {', '.join(unknown)}; this model has {', '.join(known) or 'none'}")
        values = self.defaults()
        values.update(controls)
        for name, value in values.items():
            c = known[name]
            if c.kind == "choice" and value not in c.choices:
                raise ValueError(f"{name} = {value!r}; choose one of {', '.join(map(str, c.choices))}")
        return values

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
        return Image.fromarray(self.run_array(image, **controls), "RGB")

    def forward_array(self, image: Image.Image | None, **controls) -> np.ndarray:
        raise NotImplementedError

    def through(self, image: Image.Image, *nets) -> np.ndarray:
        """``image`` resized to the model's size, through ``nets`` in turn, back to the image's size."""
        size = self.image_size
        x = to_tensor(image.resize((size, size), Image.BICUBIC))[None].to(self.device)
        for net in nets:
            x = net(x)
        out = Image.fromarray(to_uint8(x[0]), "RGB")
        if out.size != image.size:
            out = out.resize(image.size, Image.BICUBIC)
        return np.asarray(out)


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
        self.controls = [Control(**{**c.__dict__, "default": card.get("inference", {}).get(c.name, c.default)})
                         for c in ImageTranslator.controls]
        if self.nz:  # BicycleGAN: the seed draws the latent code in every mode
            self.controls[1] = Control(**{**self.controls[1].__dict__, "label": "Seed", "active_when": {},
                                          "help": "Seed of the latent code (one colouring per seed) and, in "
                                                  "mode paper, of the dropout noise"})

    def latent(self, seed) -> torch.Tensor | None:
        """BicycleGAN's z for ``seed``: N(0, 1), or the fitted Gaussian's ``mean + L @ eps`` (None for
        a plain pix2pix generator)."""
        if not self.nz:
            return None
        eps = torch.randn(1, self.nz, generator=torch.Generator().manual_seed(int(seed))).to(self.device)
        return eps if self.latent_fit is None else draw(*self.latent_fit, eps)

    def forward_array(self, image, mode="paper", seed=0):
        set_norm_mode(self.G, mode)
        z = self.latent(seed)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(int(seed))
            return self.through(image, self.G if z is None else lambda x: self.G(x, z))  # G may be a ResNet


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
            Control("noise_mode", "choice", "const", "Noise", "random: new noise each time; const: fixed; off",
                    choices=["random", "const", "off"]),
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

    def styles(self, seed, style_seed, crossover, style_layers, psi) -> torch.Tensor:
        """Per-layer w (1, n_latent, style_dim): the source's w, the style seed's w at the style
        layers (``style_layers``, else every layer from ``crossover`` on), both truncated by psi."""
        n = self.G.n_latent
        w1, w2 = (self.mean_w + float(psi) * (w - self.mean_w) for w in (self.latent(seed), self.latent(style_seed)))
        if style_layers not in (None, ""):
            mask = torch.zeros(n, dtype=torch.bool, device=self.device)
            mask[self.parse_layers(style_layers, n)] = True
        else:
            k = n if crossover is None else max(0, min(n, int(crossover)))
            mask = torch.arange(n, device=self.device) >= k
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
        wa, wb = (self.styles(s, s, None, "", psi) for s in (seed_a, seed_b))
        noise = self.noise("const" if noise_mode == "random" else noise_mode, noise_strength, noise_seed)
        out = []
        with torch.inference_mode():
            for t in torch.linspace(0, 1, max(2, int(frames))):
                out.append(to_uint8(self.G.synthesis(torch.lerp(wa, wb, float(t)), noise)[0]))
        return out


def upscale_tiled(net: nn.Module, x: torch.Tensor, scale: int, tile: int, overlap: int) -> np.ndarray:
    """``net`` (an x``scale`` upsampler) over ``x`` (1CHW) in tiles of ``tile`` input pixels that
    overlap by ``overlap`` on each side; only each tile's core is kept, so the seams see the same
    context as an untiled pass. Memory stays bounded by the tile; the result is uint8 HWC."""
    _, _, h, w = x.shape
    out = np.empty((h * scale, w * scale, 3), np.uint8)
    step = max(1, tile - 2 * overlap)
    for y0 in range(0, h, step):
        for x0 in range(0, w, step):
            y1, x1 = min(y0 + step, h), min(x0 + step, w)
            ya, xa, yb, xb = max(0, y0 - overlap), max(0, x0 - overlap), min(h, y1 + overlap), min(w, x1 + overlap)
            o = net(x[:, :, ya:yb, xa:xb])
            core = o[0, :, (y0 - ya) * scale:(y1 - ya) * scale, (x0 - xa) * scale:(x1 - xa) * scale]
            out[y0 * scale:y1 * scale, x0 * scale:x1 * scale] = to_uint8(core)
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
