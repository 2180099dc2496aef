"""pix2pix (Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR
2017): the method, its settings, its model's runtime and its reference-checkpoint hooks.

U-Net generator, PatchGAN discriminator on (input, output) pairs, loss = cGAN + lambda_l1 * L1.
The paper's ablations are settings: ``lambda_l1 = 0`` (cGAN only), ``lambda_gan = 0`` (L1 only,
no discriminator is trained), ``conditional_D = false`` (the discriminator sees the output alone),
and ``netD`` = basic (70x70 PatchGAN), n_layers, pixel (1x1) or image (ImageGAN). From pix2pixHD
(Wang et al. 2018): ``num_D`` > 1 PatchGANs at halved resolutions, and ``lambda_feat`` for the
discriminator feature-matching loss.

Data: the aligned layout (``train/`` with A|B side-by-side images, :mod:`trainer.data.aligned`);
``data.image_size`` a power of two the U-Net can halve down to 1 px (:func:`trainer.nets.unet.unet_depth`).
Reference checkpoints: junyanz/pytorch-CycleGAN-and-pix2pix U-Net generators, in and out.
BicycleGAN (:mod:`trainer.methods.bicyclegan`) is this method with a latent code.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from trainer.controls import Control
from trainer.data.aligned import AlignedDataset
from trainer.data.stroke_width import TRAINING_WIDTH, normalise
from trainer.data.transforms import to_tensor, to_uint8
from trainer.errors import ConfigError
from trainer.evaluation import sketch
from trainer.exporters import junyanz as junyanz_export
from trainer.exporters.onnx_graphs import ImageGraph, image_graph, per_image_norm, swap_modules
from trainer.images import image_grid
from trainer.importers import ImportKind
from trainer.importers import junyanz as junyanz_import
from trainer.losses import feature_matching_loss, gan_loss, gradient_penalty, l1_loss
from trainer.methods.base import (DISCRIMINATOR, GENERATOR, REGULARISATION, Method, set_requires_grad,
                                  side_effect_free)
from trainer.nets import build
from trainer.nets.init import init_weights
from trainer.nets.patchgan import patch_grid
from trainer.nets.unet import UPSAMPLES, unet_depth
from trainer.seeded_dropout import attach, seeded
from trainer.translator import (TEST_MODES, Translator, build_net, input_channels, match_channels,
                                resolution_control, set_norm_mode)

D_KINDS = ("basic", "n_layers", "pixel", "image")


@dataclass
class Pix2PixConfig:
    """pix2pix's ``[model]`` settings: widths, discriminator kind and depth, norm, dropout,
    initialisation, GAN mode and loss weights (``lambda_*``: weights >= 0, 0 turns a loss off)."""
    ngf: int = 64
    ndf: int = 64
    netD: str = "basic"
    n_layers_D: int = 3
    norm: str = "batch"
    dropout: bool = True
    init_type: str = "normal"
    init_gain: float = 0.02
    gan_mode: str = "vanilla"
    lambda_l1: float = 100.0
    lambda_gan: float = 1.0
    lambda_gp: float = 10.0  # only with gan_mode = "wgangp"
    conditional_D: bool = True
    num_D: int = 1  # PatchGANs at 1, 1/2, 1/4... resolution (pix2pixHD's multi-scale discriminator)
    lambda_feat: float = 0.0  # pix2pixHD's feature matching on D's activations (PatchGAN discriminators)
    input_nc: int = 3
    output_nc: int = 3
    task: str = ""  # empty: sketch2photo for the sketches dataset, else photo2photo
    # the exported model's default test-time mode (trainer.translator.TEST_MODES): "paper" keeps batch
    # statistics and dropout as the paper; "eval" uses the running statistics, which keep the
    # per-image information that batch statistics of a single image remove at the small inner levels
    test_mode: str = "paper"
    upsample: str = "transpose"  # the U-Net's doubling (trainer.nets.unet): "resize" avoids checkerboard artifacts


#: [model] keys that configurations written before BicycleGAN was a method of its own carry for a
#: plain pix2pix run (its latent settings, with these values when unused); read and dropped
LATENT_SETTINGS = {"nz": 0, "nef": 64, "encoder_grid": 1, "lambda_kl": 0.01, "lambda_z": 0.5,
                   "latent_prior": "normal", "latent_fit_images": 2000}


def latent_size(section: dict) -> int:
    """The ``nz`` of a ``[model]`` section or a generator's card arguments (0 when absent)."""
    nz = section.get("nz", 0) if isinstance(section, dict) else 0
    return nz if isinstance(nz, (int, float)) and not isinstance(nz, bool) else 0


def generator_args(cfg) -> dict:
    """The U-Net's constructor arguments (the card's ``nets.G.args``)."""
    m = cfg.model
    return {"input_nc": m.input_nc, "output_nc": m.output_nc, "num_downs": unet_depth(cfg.data.image_size),
            "ngf": m.ngf, "norm": m.norm, "use_dropout": m.dropout,
            **({"upsample": m.upsample} if m.upsample != "transpose" else {})}


def patch_layers(m) -> int:
    """The PatchGAN's depth: 3 (70x70 patches) for ``basic``, else ``n_layers_D``."""
    return 3 if m.netD == "basic" else m.n_layers_D


def discriminator(cfg) -> tuple[str, dict]:
    m = cfg.model
    input_nc = m.output_nc + (m.input_nc if m.conditional_D else 0)
    if m.netD == "pixel":
        return "pixelgan", {"input_nc": input_nc, "ndf": m.ndf, "norm": m.norm}
    if m.netD == "image":
        return "imagegan", {"input_nc": input_nc, "image_size": cfg.data.image_size, "ndf": m.ndf, "norm": m.norm}
    args = {"input_nc": input_nc, "ndf": m.ndf, "n_layers": patch_layers(m), "norm": m.norm}
    return ("multiscale_patchgan", {**args, "num_D": m.num_D}) if m.num_D > 1 else ("patchgan", args)


def task_of(cfg) -> str:
    """The exported card's task: ``model.task``, else sketch2photo for the sketches dataset and
    photo2photo for any other."""
    return cfg.model.task or ("sketch2photo" if cfg.data.synth == "sketches" else "photo2photo")


class ImageTranslator(Translator):
    """One generator from image to image (pix2pix): any size and mode in, the input's size out.

    Controls: ``mode`` (:data:`~trainer.translator.TEST_MODES`), ``seed`` (the dropout noise in
    mode paper), for a sketch2photo model ``strokes`` (stroke normalisation) and ``output_size``,
    and ``resolution``: native (the image at its own size, padded to the generator's multiple,
    2 ** num_downs for a U-Net) except for sketch2photo models, whose sketches are drawn at the
    model's scale (training); a card's ``inference`` may change their defaults. Tensor API: x
    (N, C, H, W) in [-1, 1] with H and W multiples of 2 ** num_downs."""

    reduced_precision = True  # bf16: within 2/255 of fp32 on the bundled sketch2photo (docs/performance.md)
    full_precision_layers = (0, -1)  # the image's first and last convolutions
    # modes paper and deterministic (batch statistics, which amplify bf16's rounding on a mostly white
    # sketch): the outer levels too. sketch2photo at 128-384 px native: up to 7/255 with none of them,
    # 4/255 with the second alone, 3/255 on 3 pixels of 24 sketches with these (docs/performance.md)
    batch_statistics_full_precision_layers = (1, 2, 3, -2)

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
                "input: the photo resized (bicubic) to the input's size; model: the model's own resolution "
                "(with resolution training)", choices=["input", "model"], active_when={"resolution": ["training"]}),
    ]
    nz = 0  # the latent code's size (BicycleGAN's translator has one)
    latent_fit = None

    def __init__(self, card, tensors, device="cpu"):
        super().__init__(card, tensors, device)
        self.G = build_net(card, tensors, "G", self.device)
        attach(self.G)  # mode paper's dropout from each render's seeded generator (trainer.seeded_dropout)
        sketch_model = card.get("task") == "sketch2photo"  # stroke normalisation (docs/sketch-strokes.md)
        self.controls = [Control(**{**c.__dict__, "default": card.get("inference", {}).get(c.name, c.default)})
                         for c in ImageTranslator.controls + (ImageTranslator.sketch_controls if sketch_model else [])]
        self.controls.append(resolution_control(card, "training" if sketch_model else "native"))
        self.multiple = self.G.size_multiple
        # the training sketches' line width as a fraction of the side (a card may state its own)
        self.stroke_width = float(card.get("stroke_width", TRAINING_WIDTH))

    def latent(self, seed) -> torch.Tensor | None:
        """The latent code (1, nz) for ``seed``; None: this generator takes none."""
        return None

    def codes(self, n: int, seed, z) -> torch.Tensor | None:
        """The latent codes (n, nz) of a batch from the tensor argument ``z`` or the seed; None
        here (a ValueError when ``z`` is given: this generator takes no code)."""
        if z is not None:
            raise ValueError("z: this generator takes no latent code (only BicycleGAN's does)")
        return None

    def generator(self, z, seed=0, **options):
        """The generator as a function of images, with the code ``z`` bound when there is one
        (``seed`` and ``options``: BicycleGAN's per-object colours)."""
        return self.G if z is None else (lambda x: self.G(x, z))

    def whole_image(self, image: Image.Image, out: np.ndarray, seed=0, **options) -> np.ndarray:
        """What follows the generator over the whole picture at native resolution, where G may have
        run tile by tile: ``out`` (H, W, 3) uint8 of ``image``; here nothing (BicycleGAN's
        per-object colours)."""
        return out

    def sketch_input(self, image: Image.Image, strokes: bool, output_size: str = "input",
                     native: bool = False) -> Image.Image:
        """What the generator is given: with ``strokes``, a line drawing whose lines are thinner or
        wider than the training sketches' has them measured at its own resolution, redrawn at the
        training width and is scaled to the model's size, or kept at its own for ``native``
        (:func:`trainer.data.stroke_width.normalise`; lines of a training width, or an image without
        dark lines, are left as they are); for ``output_size`` "model", scaled to the model's size
        as :meth:`through` would."""
        size = self.image_size
        if strokes:
            normalised = normalise(image, self.stroke_width, image.size if native else size)
            if normalised is not None:
                return normalised
        if output_size == "model" and image.size != (size, size):
            return image.resize((size, size), Image.BICUBIC)
        return image

    def forward_array(self, image, mode="paper", seed=0, strokes=False, output_size="input", resolution="native",
                      **options):
        set_norm_mode(self.G, mode)
        z = self.latent(seed)
        native = resolution == "native" and output_size == "input"  # output_size "model" is the training size's
        shown = image.size if output_size == "input" else (self.image_size, self.image_size)
        image = self.sketch_input(image, strokes, output_size, native)
        with seeded(seed, self.device):  # mode paper's dropout, drawn on this thread alone
            if native:  # tiled when large: anything over the whole picture comes after the tiles
                out = self.whole_image(image, self.through(image, self.generator(z, seed), native=True), seed,
                                       **options)
            else:
                out = self.through(image, self.generator(z, seed, **options))  # G may be a ResNet
        if out.shape[1::-1] != shown:  # normalised at the model's size: back to the input's
            out = np.asarray(Image.fromarray(out).resize(shown, Image.BICUBIC))
        return out

    tensor_args = ("z",)

    def normalise_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Stroke normalisation of each image of a batch at its own size (line drawings only)."""
        out = []
        for xi in x:
            image = Image.fromarray(to_uint8(xi) if xi.shape[0] != 1 else to_uint8(xi.expand(3, -1, -1)), "RGB")
            n = normalise(image, self.stroke_width, image.size)
            out.append(xi if n is None else
                       match_channels(to_tensor(n)[None].to(x.device, x.dtype), xi.shape[0])[0])
        return torch.stack(out)

    def forward_tensor(self, x, tensors, mode="paper", seed=0, strokes=False, output_size="input",
                       resolution="native", **options):
        """``z`` (N, nz): BicycleGAN's standard-normal draws, mapped through the model's fitted
        Gaussian when it has one (as ``seed`` is); default: the seed's code for every image. Modes
        paper and deterministic use each image's own batch statistics and, in paper mode, dropout
        seeded by ``seed``, exactly as :meth:`run` does image by image. ``strokes`` (sketch2photo)
        normalises each line drawing's strokes at x's own size; ``output_size`` and ``resolution``
        are :meth:`run`'s (nothing is resized here)."""
        self.check_size(x, self.multiple)
        if strokes:
            x = self.normalise_batch(x)
        n = x.shape[0]
        codes = self.codes(n, seed, tensors.get("z"))
        set_norm_mode(self.G, mode)

        def run(xb, cb):
            return self.through_tensor(xb, self.generator(cb, seed, **options))
        if mode == "eval":
            return run(x, codes)
        outs = []
        for i in range(n):
            with seeded(seed, self.device):
                outs.append(run(x[i:i + 1], None if codes is None else codes[i:i + 1]))
        return torch.cat(outs)

    def onnx_graphs(self, latent="z", mode=None, noise_mode="stored", noise_seed=0):
        """One graph ``image`` -> ``output``: test mode ``mode`` (default the card's) as per-image
        statistics without dropout (paper, deterministic: a graph is deterministic) or the
        running statistics (eval); H and W multiples of 2 ** num_downs."""
        mode = mode or self.card.get("inference", {}).get("mode", "paper")
        if mode not in TEST_MODES:
            raise ValueError(f"mode {mode!r}: choose one of {', '.join(TEST_MODES)}")
        G = copy.deepcopy(self.G)
        if mode == "eval":
            set_norm_mode(G, "eval")
        else:
            swap_modules(G, lambda m: isinstance(m, nn.modules.batchnorm._BatchNorm), per_image_norm)
        G.eval()
        doc = {"mode": "eval (running statistics)" if mode == "eval" else
               "per-image statistics, no dropout (the studio's deterministic mode)"}
        return [self.onnx_graph(G, input_channels(self.G), self.multiple, doc)]

    def onnx_graph(self, G, channels: int, multiple: int, doc: dict):
        """The graph of the prepared generator copy ``G``."""
        return image_graph("", ImageGraph(G), channels, multiple, self.image_size, doc)


def _plan_junyanz(tensors: dict, card: dict, out):
    return junyanz_export.plan(tensors, card, out, names=["G"], model="pix2pix", paired=True)


class Pix2Pix(Method):
    name = "pix2pix"
    task = "photo2photo"
    paper = ('Isola, Zhu, Zhou, Efros: "Image-to-Image Translation with Conditional Adversarial Networks", '
             "CVPR 2017")
    ModelConfig = Pix2PixConfig
    Translator = ImageTranslator
    layouts = frozenset({"aligned"})
    loss_groups = {"D_fake": DISCRIMINATOR, "D_real": DISCRIMINATOR, "D_gp": REGULARISATION,
                   "G_GAN": GENERATOR, "G_feat": REGULARISATION, "G_L1": REGULARISATION}
    import_kinds = {"pix2pix": ImportKind(
        junyanz_import.import_unet, "junyanz pix2pix U-Net generator (latest_net_G.pth)",
        options=frozenset({"direction"}), detect=junyanz_import.is_unet,
        signature="a pix2pix U-Net (model.model.0.weight)")}
    export_formats = {"junyanz": _plan_junyanz}

    @classmethod
    def reads_card(cls, card):
        """A card of this name whose generator takes no latent code (that one is BicycleGAN's)."""
        return super().reads_card(card) and latent_size(card.get("nets", {}).get("G", {}).get("args", {})) <= 0

    @classmethod
    def reads_config(cls, raw):
        """A configuration of this name without a latent code (``model.nz`` > 0 is BicycleGAN's)."""
        return super().reads_config(raw) and latent_size(raw.get("model", {})) <= 0

    @classmethod
    def upgrade(cls, raw):
        """Drops the latent settings that configurations written before BicycleGAN was a method of
        its own carry (``model.nz = 0`` and the others at their unused values); any other value of
        them is refused: it needs ``method = "bicyclegan"`` (or ``model.nz`` > 0)."""
        model = raw.get("model")
        if not isinstance(model, dict) or not set(model) & set(LATENT_SETTINGS):
            return raw
        model = dict(model)
        for key, unused in LATENT_SETTINGS.items():
            if key in model:
                value = model.pop(key)
                if key == "nz" and value != unused:
                    raise ConfigError(f"model.nz = {value!r}: the latent code's size is 0 (pix2pix) or more "
                                      f"(BicycleGAN, method = \"bicyclegan\")")
                if value != unused or isinstance(value, bool):
                    raise ConfigError(f"model.{key} = {value!r}: a BicycleGAN setting, which needs a latent code "
                                      f"(model.nz > 0, method = \"bicyclegan\"); pix2pix has none "
                                      f"(model.nz = 0)")
        return {**raw, "model": model}

    @classmethod
    def check_image_size(cls, size, model=None):
        """A size the U-Net halves down to 1 px: a power of two (:func:`trainer.nets.unet.unet_depth`)."""
        try:
            unet_depth(size)
        except ValueError as e:
            raise ConfigError(f"data.image_size: {e}") from None

    @classmethod
    def validate(cls, cfg):
        m = cfg.model
        cls.check_common(cfg, "aligned layout (train/ with A|B side-by-side images)", "/path/to/facades")
        if m.netD not in D_KINDS:
            raise ConfigError(f"model.netD = {m.netD!r}; choose one of {', '.join(D_KINDS)}")
        cls.check_norm(m.norm)
        if m.test_mode not in TEST_MODES:
            raise ConfigError(f"model.test_mode = {m.test_mode!r}; choose one of {', '.join(TEST_MODES)}")
        if m.num_D < 1:
            raise ConfigError(f"model.num_D = {m.num_D}; use 1 (one PatchGAN) or more (pix2pixHD's scales)")
        patch = m.netD in ("basic", "n_layers")
        if (m.num_D > 1 or m.lambda_feat > 0) and not patch:
            raise ConfigError(f"model.num_D and model.lambda_feat need a PatchGAN (netD basic or n_layers), "
                              f"not {m.netD!r}")
        coarsest = cfg.data.image_size // 2 ** (m.num_D - 1)
        if patch and patch_grid(coarsest, patch_layers(m)) < 1:
            raise ConfigError(f"model.num_D = {m.num_D}: the coarsest discriminator would see {coarsest} px, "
                              f"too small for its PatchGAN; use fewer scales or fewer layers")
        if m.num_D > 1 and m.gan_mode == "wgangp":
            raise ConfigError("model.num_D > 1 with gan_mode wgangp: the gradient penalty takes one critic")
        cls.validate_latent(cfg)
        if m.upsample not in UPSAMPLES:
            raise ConfigError(f"model.upsample = {m.upsample!r}; choose one of {', '.join(UPSAMPLES)}")
        cls.check_image_size(cfg.data.image_size, m)

    @classmethod
    def validate_latent(cls, cfg) -> None:
        """The latent code's settings (none here; BicycleGAN's)."""

    @classmethod
    def evaluate(cls, translator, data=None, n=None, progress=True, **options):
        """:func:`trainer.evaluation.sketch.evaluate`: object accuracy, FID, saturation, edges, L1."""
        return sketch.evaluate(translator, data=data, n=n, progress=progress, **options)

    def __init__(self, cfg, device, amp_dtype=None, channels_last=False, any_rank=None):
        super().__init__(cfg, device, amp_dtype, channels_last, any_rank)
        m, t = cfg.model, cfg.train
        self.G = self.add_net("G", init_weights(build("unet", **self.generator_args()), m.init_type, m.init_gain))
        self.add_encoder()
        self.add_optimizer("G", self.generator_parameters(), t.lr, (t.beta1, t.beta2))
        self.use_D = m.lambda_gan > 0
        if self.use_D:
            d_name, d_args = discriminator(cfg)
            self.D = self.add_net("D", init_weights(build(d_name, **d_args), m.init_type, m.init_gain))
            self.add_optimizer("D", self.D.parameters(), t.lr, (t.beta1, t.beta2))

    def generator_args(self) -> dict:
        """The U-Net's constructor arguments (the card's ``nets.G.args``)."""
        return generator_args(self.cfg)

    def add_encoder(self) -> None:
        """Nets that learn in G's optimiser beside G (none here; BicycleGAN's encoder E)."""

    def generator_parameters(self):
        """What G's optimiser steps (BicycleGAN adds its encoder's)."""
        return self.G.parameters()

    def dataset(self, phase="train", log=print):
        d = self.cfg.data
        root = self.data_root(log)
        if phase != "train" and not (root / phase).is_dir():
            phase = "train"
        return AlignedDataset(root, phase, d.image_size, d.load_size or None, d.preprocess, d.flip,
                              d.direction, log=log)

    def _pair(self, a, b):
        return torch.cat([a, b], 1) if self.cfg.model.conditional_D else b

    def generate(self, real_A, real_B, G):
        """(generator inputs, outputs, the outputs that have a photo to match) for a batch."""
        fake = G(real_A)
        return real_A, fake, fake

    def latent_losses(self, loss_G, fake, losses: dict):
        """G's total loss with the latent code's losses added (none here; BicycleGAN's KL and z
        regression, which it also records in ``losses``)."""
        return loss_G

    def train_step(self, batch):
        m = self.cfg.model
        real_A, real_B = self.to_device(batch["A"]), self.to_device(batch["B"])
        G = self.train_nets["G"]
        losses = {}
        n = real_A.size(0)
        with self.autocast():
            inputs, fake, fake_B = self.generate(real_A, real_B, G)
        match = self.use_D and m.lambda_feat > 0

        def judge(net, pair):  # (logits, per-scale activations ending in the logits, or None)
            if not match:
                return net(pair), None
            feats = net(pair, features=True)
            return [s[-1] for s in feats], feats
        if self.use_D:
            D = self.train_nets["D"]
            set_requires_grad(self.D, True)
            with self.autocast():
                fake_AB = self._pair(inputs, fake.detach())
                real_AB = self._pair(real_A, real_B)
                losses["D_fake"] = gan_loss(m.gan_mode, D(fake_AB), False)
                real_logits, real_feats = judge(D, real_AB)
                losses["D_real"] = gan_loss(m.gan_mode, real_logits, True)
                loss_D = (losses["D_fake"] + losses["D_real"]) * 0.5
                if m.gan_mode == "wgangp":
                    losses["D_gp"] = gradient_penalty(D, real_AB, fake_AB[:n], m.lambda_gp)
                    loss_D = loss_D + losses["D_gp"]
            self.optimize("D", loss_D)
            set_requires_grad(self.D, False)
        with self.autocast():
            loss_G = 0.0
            if self.use_D:  # the raw module: D's weights are the same on every rank
                pred, fake_feats = judge(self.D, self._pair(inputs, fake))
                losses["G_GAN"] = gan_loss(m.gan_mode, pred, True, for_discriminator=False)
                loss_G = loss_G + m.lambda_gan * losses["G_GAN"]
                if match:  # the real pair's activations from before D's update, as pix2pixHD
                    losses["G_feat"] = feature_matching_loss(fake_feats, real_feats)
                    loss_G = loss_G + m.lambda_feat * losses["G_feat"]
            losses["G_L1"] = l1_loss(fake_B, real_B)
            if m.lambda_l1 > 0:
                loss_G = loss_G + m.lambda_l1 * losses["G_L1"]
            loss_G = self.latent_losses(loss_G, fake, losses)
        self.optimize("G", loss_G)
        self.end_step()
        return losses

    def sample(self, batch):
        """Rows of input | output | target, the generator as at test time in the paper (a
        BicycleGAN generator with z = 0, the prior's mean)."""
        real_A, real_B = self.to_device(batch["A"]), self.to_device(batch["B"])
        with side_effect_free(self.G), self.autocast():
            fake_B = self.G(real_A).float()
        self._sample_outputs = fake_B
        return image_grid([[a, f, b] for a, f, b in zip(real_A.float(), fake_B, real_B.float())])

    def export(self):
        cfg = self.cfg
        card = self.card({"G": {"name": "unet", "args": self.generator_args()}}, task=task_of(cfg),
                         direction=cfg.data.direction,
                         inference={"mode": cfg.model.test_mode})
        tensors = {f"G.{k}": v for k, v in self.G.state_dict().items()}
        return tensors, card
