"""StyleGAN2 (Karras et al. 2020), trained as rosinality/stylegan2-pytorch trains it.

Non-saturating logistic loss; lazy R1 on reals every ``d_reg_every`` steps (weight r1 / 2, times
the interval); style-mixing regularisation (two latents crossing at a random layer with
probability ``mixing``); optional path-length regularisation every ``g_reg_every`` steps; Adam
with betas (0, 0.99) and the learning rate and betas of a lazily regularised net scaled by
``interval / (interval + 1)``; an EMA copy of the generator (half-life ``ema_kimg`` thousand
images) that is the one sampled and exported, with its mean latent for truncation.

Data: an image folder (CelebA's image folder works too); ``data.image_size`` a power of two of at
least 8. The exported model samples from seeds, with style mixing at a crossover layer or a set
of layers. Reference checkpoints: rosinality's generators, in and out.
"""
from __future__ import annotations

import copy
import numbers
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trainer.controls import Control, ControlError, parse_layers
from trainer.data.folder import FolderDataset
from trainer.data.transforms import to_uint8
from trainer.errors import ConfigError
from trainer.evaluation import style
from trainer.exporters import rosinality as rosinality_export
from trainer.exporters.onnx_graphs import Graph
from trainer.images import image_grid
from trainer.importers import ImportKind
from trainer.importers import rosinality as rosinality_import
from trainer.losses import layout_distance, logistic_loss, path_length_penalty, r1_penalty, thumbnail_distance
from trainer.methods.base import (DISCRIMINATOR, GENERATOR, REGULARISATION, Method, require_doubling_size,
                                  set_requires_grad, side_effect_free)
from trainer.nets import build
from trainer.nets.stylegan import rgb_resolutions
from trainer.translator import Translator, build_net

SAMPLE_SEED = 1234


@dataclass
class StyleGANConfig:
    """StyleGAN2's ``[model]`` settings: the style size and mapping depth, the channel table, the
    mapping's learning-rate multiplier, mixing probability, R1 weight and interval, path-length
    regularisation, and the EMA half-life in thousands of images."""
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    channel_max: int = 512
    channel_base: int = 0  # 0: rosinality's channel table; else channel_base // resolution (StyleGAN2-ADA)
    lr_mlp: float = 0.01
    mixing: float = 0.9
    r1: float = 10.0
    d_reg_every: int = 16
    path_regularize: float = 0.0  # 2.0 in the paper's config; 0 turns it off
    path_batch_shrink: int = 2
    g_reg_every: int = 4
    ema_kimg: float = 10.0
    output_skips_from: int = 4  # the lowest resolution whose ToRGB adds to the image; the size: one output
    lambda_mix_colour: float = 0.0  # the mix's colours to the style image's, a ratio (0: off, as the paper)
    lambda_mix_layout: float = 0.0  # the mix's layout to the source image's, a ratio (0: off, as the paper)
    mix_every: int = 4  # the mixing-consistency interval in steps (lazy, as R1)
    mix_from: int = 2000  # the first step of the mixing consistency (before it, the images are all alike)


class StyleGraph(nn.Module):
    """StyleGAN from ``z`` (mapped, the same w for every layer) or per-layer ``w``; truncation
    ``psi`` towards the mean w; fixed noise maps times ``noise_strength``."""

    def __init__(self, G, mean_w, noise, latent):
        super().__init__()
        self.G, self.latent = G, latent
        self.register_buffer("mean_w", mean_w.detach().cpu().reshape(1, 1, -1).clone())
        for i, m in enumerate(noise):
            self.register_buffer(f"noise_{i}", m.detach().cpu().clone())
        self.n_noise = len(noise)

    def forward(self, lat, psi, noise_strength):
        if self.latent == "z":
            w = self.G.mapping(lat).unsqueeze(1).expand(-1, self.G.n_latent, -1)
        else:
            w = lat
        w = self.mean_w + psi * (w - self.mean_w)
        noise = [getattr(self, f"noise_{i}") * noise_strength for i in range(self.n_noise)]
        return self.G.synthesis(w, noise).clamp(-1, 1)


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
                    f"layers below it follow the source; {n} (the default): no mixing; {self.G.coarse_crossover()}: "
                    "the coarse/middle boundary, where the Style page opens; "
                    + ", ".join(f"{i}: {r} px" for i, r in enumerate(res)),
                    minimum=0, maximum=n),
            Control("style_layers", "layers", "", "Style layers",
                    "the layers that take the style seed's w, as indices (e.g. 0,1,6); empty: use the crossover",
                    choices=[f"{i}: {r} px" for i, r in enumerate(res)], data=list(res)),
            Control("psi", "float", 0.7, "Truncation psi", "1: the full variety; 0: the mean face", minimum=0.0,
                    maximum=1.0),
            Control("noise_mode", "choice", "const", "Noise", "random: new noise each time; const: fixed; off; "
                    "stored: the model's own noise maps (rosinality's randomize_noise=False)",
                    choices=["random", "const", "off", "stored"]),
            Control("noise_strength", "float", 1.0, "Noise strength", "a multiplier on every noise input",
                    minimum=0.0, maximum=2.0, active_when={"noise_mode": ["random", "const", "stored"]}),
            Control("noise_seed", "seed", 0, "Noise seed", "the fixed noise maps (noise mode const)", minimum=0,
                    maximum=2 ** 31 - 1, active_when={"noise_mode": ["const"]}),
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
        for buffer in self.G.const_noise():  # in the shapes of the generator's own noise inputs
            m = torch.randn(buffer.shape, generator=g).to(self.device)
            maps.append(m * float(strength) if mode == "const" else torch.zeros_like(m))
        return maps

    @staticmethod
    def parse_layers(text, n: int) -> list[int]:
        """'0,1,6' (or a list of ints) -> sorted layer indices, each checked against n;
        :func:`trainer.controls.parse_layers`. ValueError naming ``style_layers`` otherwise."""
        try:
            return parse_layers(text, n)
        except ValueError as e:
            raise ValueError(f"style_layers = {text!r}: {e}") from None

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
            noise = [torch.randn(b.shape, device=self.device) * float(noise_strength) for b in self.G.const_noise()]
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
        with torch.inference_mode(), self.autocast():  # the precision run_array uses (fp32 in auto)
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
            noise = [torch.randn(wl.shape[0], *b.shape[1:], device=self.device) * float(noise_strength)
                     for b in self.G.const_noise()]
        else:
            noise = self.noise(noise_mode, noise_strength, noise_seed)
        return self.G.synthesis(wl, noise)

    def onnx_graphs(self, latent="z", mode=None, noise_mode="stored", noise_seed=0):
        """One graph ``z`` (N, style_dim) or, with ``latent="w"``, ``w`` (N, n_latent, style_dim), and
        scalars ``psi`` and ``noise_strength`` -> ``output``; the noise maps of ``noise_mode``
        (stored, const or off) fixed in the graph."""
        if latent not in ("z", "w"):
            raise ValueError(f"latent {latent!r}: choose z or w")
        if noise_mode not in ("stored", "const", "off"):
            raise ValueError(f"noise_mode {noise_mode!r}: an ONNX graph is deterministic; choose stored, const or off")
        G = copy.deepcopy(self.G).eval()
        for m in G.modules():
            if hasattr(m, "grouped"):
                m.grouped = False  # one convolution for any batch (the same function as the grouped form)
        noise = self.noise(noise_mode, 1.0, noise_seed)
        d, n = G.style_dim, G.n_latent
        first = torch.randn(2, d) if latent == "z" else torch.randn(2, n, d)
        shape = f"(N, {d}) z, mapped to w" if latent == "z" else f"(N, {n}, {d}) per-layer w"
        return [Graph("", StyleGraph(G, self.mean_w, noise, latent), (first, torch.tensor(0.7), torch.tensor(1.0)),
                      [latent, "psi", "noise_strength"], {latent: {0: 1}},
                      {latent: shape, "psi": "() float: 1 the full variety, 0 the mean w",
                       "noise_strength": f"() float: a multiplier on the noise maps ({noise_mode})"})]


def _plan_rosinality(tensors: dict, card: dict, out):
    return rosinality_export.plan(tensors, card, out)


class StyleGAN(Method):
    name = "stylegan"
    task = "style"
    paper = ('Karras, Laine, Aittala, Hellsten, Lehtinen, Aila: "Analyzing and Improving the Image Quality of '
             'StyleGAN", CVPR 2020')
    ModelConfig = StyleGANConfig
    Translator = StyleTranslator
    layouts = frozenset({"image folder", "attributes"})
    loss_groups = {"D_real": DISCRIMINATOR, "D_fake": DISCRIMINATOR, "D_r1": REGULARISATION, "G": GENERATOR,
                   "G_path": REGULARISATION, "G_path_length": REGULARISATION, "G_mix_colour": REGULARISATION,
                   "G_mix_layout": REGULARISATION}
    import_kinds = {"stylegan": ImportKind(
        rosinality_import.import_generator,
        "rosinality/stylegan2-pytorch generator (.pt: training checkpoint, {'g_ema': ...} or a bare state dict)",
        detect=rosinality_import.detect, signature="a StyleGAN2 generator (style.1.weight)", raw=True)}
    export_formats = {"rosinality": _plan_rosinality}

    @classmethod
    def check_image_size(cls, size, model=None):
        """A power of two of at least 8 (:func:`trainer.methods.base.require_doubling_size`)."""
        require_doubling_size(size, "StyleGAN")

    @classmethod
    def validate(cls, cfg):
        cls.check_common(cfg, "image folder layout (a folder of images)", "/path/to/faces")
        m = cfg.model
        cls.check_image_size(cfg.data.image_size, m)
        if not 0 <= m.mixing <= 1:
            raise ConfigError(f"model.mixing = {m.mixing}: a probability in [0, 1]")
        sizes = rgb_resolutions(cfg.data.image_size)
        if m.output_skips_from not in sizes:
            raise ConfigError(f"model.output_skips_from = {m.output_skips_from}: a resolution of the generator, "
                              f"one of {', '.join(map(str, sizes))}")
        if m.d_reg_every < 1 or m.g_reg_every < 1 or m.mix_every < 1:
            raise ConfigError("model.d_reg_every, model.g_reg_every and model.mix_every must be at least 1")
        if m.mix_from < 0:
            raise ConfigError(f"model.mix_from = {m.mix_from}: a step, at least 0")
        if (m.lambda_mix_colour or m.lambda_mix_layout) and cfg.data.image_size < 16:
            raise ConfigError(f"model.lambda_mix_colour / lambda_mix_layout need a coarse/middle boundary inside the "
                              f"generator: data.image_size = {cfg.data.image_size}, at least 16")

    @classmethod
    def evaluate(cls, translator, data=None, n=None, progress=True, **options):
        """:func:`trainer.evaluation.style.evaluate`: FID against real faces, what style mixing
        takes from whom, what the noise changes."""
        return style.evaluate(translator, data=data, n=n, progress=progress, **options)

    def __init__(self, cfg, device, amp_dtype=None, channels_last=False, any_rank=None):
        super().__init__(cfg, device, amp_dtype, channels_last, any_rank)
        m, t = cfg.model, cfg.train
        self.G = self.add_net("G", build("stylegan_G", **self.generator_args()))
        self.D = self.add_net("D", build("stylegan_D", size=cfg.data.image_size,
                                         channel_multiplier=m.channel_multiplier, channel_max=m.channel_max,
                                         channel_base=m.channel_base))
        self.G_ema = self.add_net("G_ema", copy.deepcopy(self.G).eval())
        set_requires_grad(self.G_ema, False)
        g_ratio = m.g_reg_every / (m.g_reg_every + 1) if m.path_regularize > 0 else 1.0
        d_ratio = m.d_reg_every / (m.d_reg_every + 1) if m.r1 > 0 else 1.0
        self.add_optimizer("G", self.G.parameters(), t.lr * g_ratio, (t.beta1 ** g_ratio, t.beta2 ** g_ratio))
        self.add_optimizer("D", self.D.parameters(), t.lr * d_ratio, (t.beta1 ** d_ratio, t.beta2 ** d_ratio))
        self.mean_path_length = torch.zeros((), device=device)
        self.mix_rng = random.Random(t.seed)

    def generator_args(self) -> dict:
        m = self.cfg.model
        return {"size": self.cfg.data.image_size, "style_dim": m.style_dim, "n_mlp": m.n_mlp,
                "channel_multiplier": m.channel_multiplier, "channel_max": m.channel_max, "lr_mlp": m.lr_mlp, "channel_base": m.channel_base,
                **({"output_skips_from": m.output_skips_from} if m.output_skips_from != 4 else {})}

    def dataset(self, phase="train", log=print):
        d = self.cfg.data
        return FolderDataset(self.image_root(log), phase, d.image_size, 0, d.flip, log=log)

    def latents(self, b: int) -> list[torch.Tensor]:
        """One z per sample, or two (style mixing) with probability ``mixing``."""
        n = 2 if self.mix_rng.random() < self.cfg.model.mixing else 1
        return list(torch.randn(n, b, self.cfg.model.style_dim, device=self.device).unbind(0))

    def generate(self, G, b: int, return_latents=False):
        z = self.latents(b)
        k = self.mix_rng.randint(1, self.G.n_latent - 1) if len(z) == 2 else None
        return G(z, inject_index=k, return_latents=return_latents)

    def train_step(self, batch):
        m = self.cfg.model
        G, D = self.train_nets["G"], self.train_nets["D"]
        real = self.to_device(batch["image"])
        b = real.size(0)
        step = self.schedulers["D"].last_epoch
        losses = {}

        set_requires_grad(self.G, False)
        with self.autocast():
            fake = self.generate(G, b)
            losses["D_real"] = logistic_loss(D(real), True)
            losses["D_fake"] = logistic_loss(D(fake), False)
        self.optimize("D", losses["D_real"] + losses["D_fake"])
        if m.r1 > 0 and step % m.d_reg_every == 0:
            real = real.detach().requires_grad_(True)
            with self.autocast():
                prediction = D(real)
            losses["D_r1"] = r1_penalty(prediction, real)
            # the 0 * prediction term keeps every DDP parameter in the graph, as the reference does
            self.optimize("D", m.r1 / 2 * losses["D_r1"] * m.d_reg_every + 0 * prediction.float().mean())

        set_requires_grad(self.G, True)
        set_requires_grad(self.D, False)
        with self.autocast():
            losses["G"] = logistic_loss(D(self.generate(G, b)), True)
        self.optimize("G", losses["G"])
        if m.path_regularize > 0 and step % m.g_reg_every == 0:
            with self.autocast():
                images, w = self.generate(G, max(1, b // m.path_batch_shrink), return_latents=True)
            penalty, self.mean_path_length, losses["G_path_length"] = path_length_penalty(
                images, w, self.mean_path_length)
            losses["G_path"] = penalty
            self.optimize("G", m.path_regularize * m.g_reg_every * penalty + 0 * images.float().mean())
        if (m.lambda_mix_colour or m.lambda_mix_layout) and step >= m.mix_from and step % m.mix_every == 0:
            losses.update(self.mixing_consistency(G, max(1, b // m.path_batch_shrink)))
        set_requires_grad(self.D, True)
        self.accumulate(0.5 ** (b / (m.ema_kimg * 1000)))
        self.end_step()
        return losses

    def mixing_consistency(self, G, b: int) -> dict:
        """Style mixing that splits layout from colour (ours; off in the paper's configuration):
        for ``b`` pairs of latents, the image whose layers below the coarse/middle crossover take
        the source's w and the rest the style's should have the style image's colours on the
        source image's layout. Both are ratios over the batch, so that making every image alike
        cannot lower them: ``G_mix_colour`` = 4x4 colour distance (:func:`thumbnail_distance`)
        mix to style / source to style, weight ``lambda_mix_colour``; ``G_mix_layout`` = layout
        distance (:func:`layout_distance`) mix to source / style to source, weight
        ``lambda_mix_layout``. 0: the mix is its target, 1: no nearer than the other image.
        Source, style and mix share their noise; source and style are targets (no gradient);
        compared at 32 px at most. One lazy step of optimiser G, the weights times ``mix_every``.
        Returns both ratios (0-d tensors)."""
        m = self.cfg.model
        z = torch.randn(2, b, m.style_dim, device=self.device)
        noise = [torch.randn(b, *n.shape[1:], device=self.device) for n in self.G.const_noise()]
        with self.autocast():
            with torch.no_grad():
                source, style = G([z[0]], noise=noise), G([z[1]], noise=noise)
            mix = G([z[0], z[1]], inject_index=self.G.coarse_crossover(), noise=noise)
        factor = max(1, mix.shape[-1] // 32)
        mix, source, style = (torch.nn.functional.avg_pool2d(t.float(), factor) for t in (mix, source, style))
        colour = thumbnail_distance(torch.cat([mix, source]), torch.cat([style, style])).view(2, b).sum(1)
        layout = layout_distance(torch.cat([mix, style]), torch.cat([source, source])).view(2, b).sum(1)
        colour, layout = colour[0] / (colour[1].detach() + 1e-8), layout[0] / (layout[1].detach() + 1e-8)
        self.optimize("G", m.mix_every * (m.lambda_mix_colour * colour + m.lambda_mix_layout * layout))
        return {"G_mix_colour": colour.detach(), "G_mix_layout": layout.detach()}

    @torch.no_grad()
    def accumulate(self, decay: float) -> None:
        """G_ema <- decay * G_ema + (1 - decay) * G."""
        ema, live = list(self.G_ema.parameters()), list(self.G.parameters())
        torch._foreach_lerp_(ema, live, 1.0 - decay)

    def truncation_latent(self) -> torch.Tensor:
        g = torch.Generator(device=self.device).manual_seed(0)
        return self.G_ema.mean_latent(4096, g)

    def sample(self, batch):
        """EMA generator on 8 fixed latents with fixed noise: psi 1, psi 0.7, and the first row's
        sources with the style of the next latent from the middle layer on."""
        z = torch.randn(9, self.cfg.model.style_dim, generator=torch.Generator().manual_seed(SAMPLE_SEED))
        z = z.to(self.device)
        G = self.G_ema
        with side_effect_free(G), self.autocast():
            mean = self.truncation_latent()
            rows = [G([z[:8]], randomize_noise=False),
                    G([z[:8]], randomize_noise=False, truncation=0.7, truncation_latent=mean),
                    G([z[:8], z[1:]], inject_index=G.n_latent // 2, randomize_noise=False)]
        self._sample_outputs = rows[0].float()
        return image_grid([list(r.float()) for r in rows])

    def state(self) -> dict:
        return {**super().state(), "mean_path_length": float(self.mean_path_length),
                "mix_rng": self.mix_rng.getstate()}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.mean_path_length.fill_(state.get("mean_path_length", 0.0))
        if "mix_rng" in state:
            self.mix_rng.setstate(tuple(state["mix_rng"][:1]) + (tuple(state["mix_rng"][1]),)
                                  + tuple(state["mix_rng"][2:]))

    def export(self):
        with torch.no_grad():
            latent_avg = self.truncation_latent().float().cpu()
        card = self.card({"G": {"name": "stylegan_G", "args": self.generator_args()}},
                         n_latent=self.G.n_latent, layer_resolutions=self.G.layer_resolutions())
        tensors = {f"G.{k}": v for k, v in self.G_ema.state_dict().items()}
        tensors["latent_avg"] = latent_avg
        return tensors, card
