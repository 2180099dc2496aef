"""BicycleGAN (Zhu, Zhang, Pathak, Darrell, Efros, Wang, Shechtman, "Toward Multimodal
Image-to-Image Translation", NeurIPS 2017): pix2pix (:mod:`trainer.methods.pix2pix`) whose U-Net
also takes a latent code ``z`` of ``model.nz`` numbers, so that one sketch has many colourings.

cVAE-GAN: an encoder E reads the target photo into ``z`` (KL to N(0, 1), weight ``lambda_kl``),
and the L1 and GAN losses score G(A, z) against that photo, so L1 no longer pulls an ambiguous
colour towards the average of its modes. cLR-GAN: G(A, z ~ N(0, 1)) must fool the same
discriminator and give back its ``z`` through E (L1, weight ``lambda_z``; G alone learns from it).
At test time ``z`` comes from a seed: each seed one coherent colouring, drawn from N(0, 1) or
(``latent_prior = "posterior"``) from a Gaussian fitted at export to the codes E gives the
training photos (:mod:`trainer.latent_density`). ``encoder_grid`` > 1 pools E to a grid, so a
code says where each colour is, not only which.

Older files spell this method ``pix2pix`` with ``model.nz`` > 0 (cards: a generator with ``nz``
> 0); they read as BicycleGAN, and new exports write ``bicyclegan``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from trainer.controls import Control
from trainer.errors import ConfigError, ModelFileError
from trainer.exporters.onnx_graphs import image_graph
from trainer.latent_density import draw, fit_gaussian, posterior_means
from trainer.losses import kl_divergence, l1_loss
from trainer.methods.base import REGULARISATION, set_requires_grad
from trainer.methods.pix2pix import ImageTranslator, Pix2Pix, Pix2PixConfig, generator_args, latent_size
from trainer.nets import build
from trainer.nets.init import init_weights
from trainer.translator import input_channels, match_channels

LATENT_PRIORS = ("normal", "posterior")


@dataclass
class BicycleGANConfig(Pix2PixConfig):
    """pix2pix's settings and the latent code's: its size ``nz`` (>= 1), the encoder's width and
    grid, the KL and z-regression weights, and how the exported model draws codes."""
    nz: int = 8  # the latent code's size (the paper's 8)
    nef: int = 64  # the encoder E's width (BicycleGAN's resnet_128 / resnet_256)
    encoder_grid: int = 1  # E pools to this grid (1: the paper's global average); > 1 codes where colours are
    lambda_kl: float = 0.01
    lambda_z: float = 0.5
    # the exported model's test-time codes: "normal" draws N(0, 1) (the paper); "posterior" draws from a
    # Gaussian fitted to E's codes of up to latent_fit_images training photos (trainer.latent_density)
    latent_prior: str = "normal"
    latent_fit_images: int = 2000


def encoder_args(cfg) -> dict:
    """BicycleGAN's E: four residual levels at 128 px and below, five above."""
    m = cfg.model
    return {"input_nc": m.output_nc, "nz": m.nz, "nef": m.nef, "n_blocks": 4 if cfg.data.image_size <= 128 else 5,
            **({"grid": m.encoder_grid} if m.encoder_grid != 1 else {})}


class CodeGraph(nn.Module):
    """ONNX: ``image`` and standard-normal ``z`` (N, nz), through the fitted Gaussian if any."""

    def __init__(self, G, fit):
        super().__init__()
        self.G, self.fitted = G, fit is not None
        if fit is not None:
            self.register_buffer("mean", fit[0].detach().cpu().clone())
            self.register_buffer("tril_t", fit[1].detach().cpu().T.contiguous())

    def forward(self, image, z):
        code = self.mean + z @ self.tril_t if self.fitted else z
        return match_channels(self.G(match_channels(image, input_channels(self.G)), code), 3).clamp(-1, 1)


class LatentImageTranslator(ImageTranslator):
    """pix2pix's translator with BicycleGAN's code: the seed draws z in every mode (N(0, 1), or the
    Gaussian the export fitted: ``latent_mean`` (nz,) and ``latent_scale_tril`` (nz, nz) in the
    model file); the tensor API takes ``z`` (N, nz) standard-normal draws. A model file whose fitted
    distribution does not match nz raises :class:`~trainer.errors.ModelFileError`."""

    def __init__(self, card, tensors, device="cpu"):
        super().__init__(card, tensors, device)
        self.nz = getattr(self.G, "nz", 0)  # the U-Net's latent code
        # its codes' distribution when the export fitted one to the training photos' codes, else N(0, 1)
        self.latent_fit = None
        if self.nz and "latent_mean" in tensors:
            mean, tril = tensors["latent_mean"].float(), tensors.get("latent_scale_tril")
            if mean.shape != (self.nz,) or tril is None or tril.shape != (self.nz, self.nz):
                raise ModelFileError(f"the latent code's fitted distribution does not match nz {self.nz}: "
                                     f"latent_mean {tuple(mean.shape)}, latent_scale_tril "
                                     f"{None if tril is None else tuple(tril.shape)}")
            self.latent_fit = (mean.to(self.device), tril.float().to(self.device))
        if self.nz:  # the seed draws the latent code in every mode
            self.controls[1] = Control(**{**self.controls[1].__dict__, "label": "Seed", "active_when": {},
                                          "help": "Seed of the latent code (one colouring per seed) and, in "
                                                  "mode paper, of the dropout noise"})

    def latent(self, seed) -> torch.Tensor | None:
        """z (1, nz) for ``seed``: N(0, 1), or the fitted Gaussian's ``mean + L @ eps`` (None for a
        generator without a code)."""
        if not self.nz:
            return None
        eps = torch.randn(1, self.nz, generator=torch.Generator().manual_seed(int(seed))).to(self.device)
        return eps if self.latent_fit is None else draw(*self.latent_fit, eps)

    def codes(self, n, seed, z):
        """(n, nz): ``z`` (N(0, 1) draws, mapped through the fitted Gaussian when there is one) or
        the seed's code for every image."""
        if not self.nz:
            return super().codes(n, seed, z)
        if z is None:
            return self.latent(seed).expand(n, -1)
        codes = self.latent_batch(z, self.nz, "z", n)
        return codes if self.latent_fit is None else draw(*self.latent_fit, codes)

    def onnx_graph(self, G, channels, multiple, doc):
        """``image`` and ``z`` (N, nz) standard-normal draws -> ``output``."""
        if not self.nz:
            return super().onnx_graph(G, channels, multiple, doc)
        fit = "mapped through the model's fitted Gaussian" if self.latent_fit is not None else "the code itself"
        return image_graph("", CodeGraph(G, self.latent_fit), channels, multiple, self.image_size,
                           {**doc, "z": f"(N, {self.nz}) standard-normal draws ({fit})"},
                           (torch.randn(2, self.nz),), ("z",), {"z": {0: 1}})


class BicycleGAN(Pix2Pix):
    name = "bicyclegan"
    paper = ('Zhu, Zhang, Pathak, Darrell, Efros, Wang, Shechtman: "Toward Multimodal Image-to-Image '
             'Translation", NeurIPS 2017')
    ModelConfig = BicycleGANConfig
    Translator = LatentImageTranslator
    loss_groups = {**Pix2Pix.loss_groups, "G_kl": REGULARISATION, "G_z": REGULARISATION}
    import_kinds = {}  # junyanz's U-Net takes no latent code

    @classmethod
    def reads_card(cls, card):
        """A card of this name, or an older pix2pix card whose generator takes a latent code."""
        method = card.get("method")
        return method in (cls.name, *cls.aliases) or (
            method in (Pix2Pix.name, *Pix2Pix.aliases)
            and latent_size(card.get("nets", {}).get("G", {}).get("args", {})) > 0)

    @classmethod
    def reads_config(cls, raw):
        """A configuration of this name, or an older pix2pix one with ``model.nz`` > 0."""
        method = raw.get("method")
        return method in (cls.name, *cls.aliases) or (
            method in (Pix2Pix.name, *Pix2Pix.aliases) and latent_size(raw.get("model", {})) > 0)

    @classmethod
    def upgrade(cls, raw):
        return raw

    @classmethod
    def validate_latent(cls, cfg):
        m = cfg.model
        if m.nz <= 0 or m.nef < 1:
            raise ConfigError(f"model.nz = {m.nz}, model.nef = {m.nef}: BicycleGAN's latent code has 1 number or "
                              f"more (none is pix2pix: method = \"pix2pix\"), with an encoder at least 1 channel wide")
        if m.encoder_grid < 1:
            raise ConfigError(f"model.encoder_grid = {m.encoder_grid}: 1 (global pooling) or more (a grid)")
        if m.latent_prior not in LATENT_PRIORS:
            raise ConfigError(f"model.latent_prior = {m.latent_prior!r}; choose one of {', '.join(LATENT_PRIORS)}")
        if m.latent_prior == "posterior" and m.latent_fit_images < 2:
            raise ConfigError("model.latent_prior = 'posterior' needs a latent code (model.nz > 0) and "
                              f"model.latent_fit_images >= 2 (got nz {m.nz}, {m.latent_fit_images} images)")
        if m.lambda_feat > 0:
            raise ConfigError("model.nz > 0 with model.lambda_feat: feature matching pairs each output with its "
                              "own photo, and BicycleGAN's random-z outputs have none")

    def generator_args(self) -> dict:
        return {**generator_args(self.cfg), "nz": self.cfg.model.nz}

    def add_encoder(self):
        """E learns with G, in G's optimiser (BicycleGAN steps both after one backward)."""
        m = self.cfg.model
        self.E = self.add_net("E", init_weights(build("latent_encoder", **encoder_args(self.cfg)), m.init_type,
                                                m.init_gain))

    def generator_parameters(self):
        return itertools.chain(self.G.parameters(), self.E.parameters())

    def generate(self, real_A, real_B, G):
        """One pass for both halves: z read from the photo (cVAE-GAN), and z from the prior (cLR-GAN)."""
        mu, logvar = self.train_nets["E"](real_B)
        z_random = torch.randn_like(mu)
        z = torch.cat([mu + torch.randn_like(mu) * (0.5 * logvar).exp(), z_random])
        inputs = torch.cat([real_A, real_A])
        fake = G(inputs, z)
        self._codes = (mu, logvar, z_random)
        return inputs, fake, fake[:real_A.size(0)]  # the outputs that have a photo to match

    def latent_losses(self, loss_G, fake, losses):
        """KL of E's codes to N(0, 1) and the L1 of E(G(A, z_random)) to z_random (G alone learns from it)."""
        m = self.cfg.model
        mu, logvar, z_random = self._codes
        n = mu.size(0)
        losses["G_kl"] = kl_divergence(mu, logvar)
        set_requires_grad(self.E, False)  # the latent's regression teaches G alone
        losses["G_z"] = l1_loss(self.E(fake[n:])[0], z_random)
        set_requires_grad(self.E, True)
        return loss_G + m.lambda_kl * losses["G_kl"] + m.lambda_z * losses["G_z"]

    def export(self):
        tensors, card = super().export()
        if self.cfg.model.latent_prior == "posterior":
            tensors["latent_mean"], tensors["latent_scale_tril"], used = self.fit_latent()
            card["latent_prior"] = {"name": "posterior", "images": used}
        return tensors, card

    def fit_latent(self):
        """A Gaussian over E's codes of up to ``model.latent_fit_images`` training photos, spread
        evenly over the dataset (each with augmentation seed 0, so an export is repeatable): (mean
        (nz,), scale_tril (nz, nz), images used). Raises ConfigError for fewer than 2 photos."""
        data = self.dataset("train", log=lambda *a: None)
        if len(data) < 2:
            raise ConfigError(f"model.latent_prior = 'posterior' fits the codes of the training photos and "
                              f"this dataset has {len(data)}: export with model.latent_prior = 'normal'")
        step = max(1, len(data) // self.cfg.model.latent_fit_images)
        picks = range(0, len(data), step)[:self.cfg.model.latent_fit_images]
        codes = posterior_means(self.E, (data[(i, 0)]["B"] for i in picks))
        return (*fit_gaussian(codes), len(picks))
