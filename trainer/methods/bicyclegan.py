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

``region_codes``: each object the sketch encloses also gets a colour code of its own (pix2pixHD's
instance-wise codes, Wang et al. 2018; :mod:`trainer.region_codes`), so that the objects of one
scene can differ in colour. G reads a code map beside ``z``; in the cVAE half each region's code is
the photo's mean colour there and E reads the photo with the objects blanked out (``z`` keeps the
wall and floor), in the cLR half each region gets another training region's colour and the output's
mean colour there must give it back (L1, weight ``lambda_region``). The export stores the training
regions' colours, from which a seed draws each object's. ``region_features`` d > 0 adds pix2pixHD's
feature encoder F: its d maps of the photo, averaged over each object, join the object's code (what a
mean colour cannot say: a house's roof and door in a second colour), are read back from the
cLR output the same way, and are stored with the colours. ``region_palette`` 2 makes the colour
part of a code the object's two dominant colours (2-means over its pixels, the larger cluster
first) instead of its mean: the same idea without anything to learn.

Older files spell this method ``pix2pix`` with ``model.nz`` > 0 (cards: a generator with ``nz``
> 0); they read as BicycleGAN, and new exports write ``bicyclegan``.
"""
from __future__ import annotations

import functools
import itertools
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from PIL import Image
from torch import nn

from trainer.controls import Control
from trainer.data.transforms import to_tensor, to_uint8
from trainer.errors import ConfigError, ModelFileError
from trainer.exporters.onnx_graphs import example_side, image_graph
from trainer.latent_density import draw, fit_gaussian, posterior_means
from trainer.losses import kl_divergence, l1_loss
from trainer.images import image_grid
from trainer.methods.base import REGULARISATION, set_requires_grad, side_effect_free
from trainer.methods.pix2pix import ImageTranslator, Pix2Pix, Pix2PixConfig, generator_args, latent_size, task_of
from trainer.nets import build
from trainer.nets.init import init_weights
from trainer.object_colours import merge_fragments, transfer
from trainer.object_segmenter import object_regions
from trainer.region_codes import region_channels, region_map, region_means, region_palette, seeded_colours
from trainer.translator import build_net, input_channels, match_channels

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
    # a colour code per object the sketch encloses (trainer.region_codes), read back with this L1 weight
    region_codes: bool = False
    lambda_region: float = 1.0
    # learned instance features per object beside its colour (pix2pixHD's feature encoder, net F): what one
    # mean colour cannot say (a house's roof and door in a second colour)
    region_features: int = 0
    # colours per object code: 1 its mean colour, 2 its two dominant colours (2-means: a house's walls, then
    # its roof and door)
    region_palette: int = 1
    # how objects are found in a sketch: "bundled" (the learned segmenter, trainer.object_segmenter), a
    # segmenter file, or "enclosure" (areas the lines enclose; touching objects join); exports carry it
    region_segmenter: str = "bundled"
    # instead of region codes: the export carries the training objects' colours and the segmenter, and the
    # model moves each object of G's output to a colour drawn from the seed (trainer.object_colours)
    object_colours: bool = False


MAX_REGION_FEATURES = 64  # pix2pixHD uses 3; far more only adds code-map channels nothing fills


def feature_encoder_args(cfg) -> dict:
    """pix2pixHD's feature encoder F: a U-Net 16 channels wide with instance norm, ``region_features``
    maps in [-1, 1] (tanh)."""
    from trainer.nets.unet import unet_depth
    return {"input_nc": cfg.model.output_nc, "output_nc": cfg.model.region_features,
            "num_downs": unet_depth(cfg.data.image_size), "ngf": 16, "norm": "instance"}


def encoder_args(cfg) -> dict:
    """BicycleGAN's E: four residual levels at 128 px and below, five above."""
    m = cfg.model
    return {"input_nc": m.output_nc, "nz": m.nz, "nef": m.nef, "n_blocks": 4 if cfg.data.image_size <= 128 else 5,
            **({"grid": m.encoder_grid} if m.encoder_grid != 1 else {})}


@functools.cache
def _beside_G() -> ThreadPoolExecutor:
    """One thread that finds a sketch's objects while G runs (LatentImageTranslator.generator): a
    pool, which the interpreter shuts down (and waits for) before it tears torch down at exit."""
    return ThreadPoolExecutor(1, thread_name_prefix="object-colours")


os.register_at_fork(after_in_child=_beside_G.cache_clear)  # a forked child has no pool thread: a new pool


class CodeGraph(nn.Module):
    """ONNX: ``image`` and standard-normal ``z`` (N, nz), through the fitted Gaussian if any; a
    generator with per-object codes also takes ``regions``, the (N, G.region_nc, H, W) code map."""

    def __init__(self, G, fit):
        super().__init__()
        self.G, self.fitted = G, fit is not None
        if fit is not None:
            self.register_buffer("mean", fit[0].detach().cpu().clone())
            self.register_buffer("tril_t", fit[1].detach().cpu().T.contiguous())

    def forward(self, image, z, regions=None):
        code = self.mean + z @ self.tril_t if self.fitted else z
        out = self.G(match_channels(image, input_channels(self.G)), code, *(() if regions is None else (regions,)))
        return match_channels(out, 3).clamp(-1, 1)


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
        # per-object codes: the training regions' colours, from which each seed draws each object's,
        # and the segmenter that finds the objects (net S; without one, the enclosure rule)
        self.region_colours = None
        self.segmenter = build_net(card, tensors, "S", self.device).eval() if "S" in card.get("nets", {}) else None
        if getattr(self.G, "region_nc", 0):
            bank, width = tensors.get("region_colours"), self.G.region_nc - 1  # less the indicator
            if bank is None or bank.dim() != 2 or bank.shape[0] < 1 or bank.shape[1] != width:
                raise ModelFileError(f"a generator with {self.G.region_nc} code-map channels needs region_colours "
                                     f"(M, {width}) in the model file, got "
                                     f"{None if bank is None else tuple(bank.shape)}")
            self.region_colours = bank.float().clamp(-1, 1).to(self.device)
        # a colour per object after G (trainer.object_colours) of a sketch2photo generator without code-map
        # channels (the segmenter reads line drawings)
        self.object_colours = None
        if card.get("object_colours") and card.get("task") == "sketch2photo" and self.region_colours is None:
            bank = tensors.get("region_colours")
            usable = bank is not None and bank.dim() == 2 and bank.shape[0] >= 1 and bank.shape[1] == 3 \
                and bank.is_floating_point() and bool(torch.isfinite(bank).all())
            if not usable:
                got = "none" if bank is None else f"{tuple(bank.shape)} {str(bank.dtype).replace('torch.', '')}"
                raise ModelFileError(f"a card with object_colours needs region_colours, (M, 3) finite RGB rows, in "
                                     f"the model file, got {got}")
            self.object_colours = bank.float().clamp(-1, 1).cpu()
            self.controls.append(Control(
                "object_colours", "bool", True, "Colour per object",
                "Each object the sketch holds gets a colour of its own, drawn from the seed (a colour transfer "
                "over its pixels that keeps the shading); off: the generator's colours, one for all objects"))
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

    def generator(self, z, seed=0, object_colours=False):
        """G with the code ``z`` bound and, for per-object codes, each region of the sketch it is
        given coloured from the seed (:func:`trainer.region_codes.seeded_colours`); for a model
        with ``object_colours`` when that control is given on, each object of G's output moved to a
        colour drawn from the seed (:func:`trainer.object_colours.transfer`)."""
        if self.region_colours is not None:
            return lambda x: self.G(x, z, self.code_map(x, seed))
        G = super().generator(z, seed)
        if self.object_colours is None or not object_colours:
            return G

        def recoloured(x):
            threads = torch.get_num_threads()  # the process's: a second thread's ops take as many
            if x.device.type == "cpu" and 2 * threads <= (os.cpu_count() or 1):
                # the objects found on cores G leaves free (the studio's lane runs 1 thread on 2 cores):
                # 30.7 against 35.4 ms a render, G alone 25.9 (2026-11-30, 512 px sketch, 1 thread)
                stop = threading.Event()
                try:
                    found = _beside_G().submit(self.object_colouring, x, seed, stop)
                except RuntimeError:  # the interpreter is shutting the pool down: the objects after G
                    return self.colour_objects(x, G(x), seed)
                try:
                    out = G(x)
                except BaseException:  # G interrupted (a newer stroke in the studio): so is the helper, which
                    stop.set()  # would otherwise hold up the next render's objects with this one's
                    found.cancel()
                    raise
                return transfer(out, *found.result())
            return self.colour_objects(x, G(x), seed)
        return recoloured

    def object_colouring(self, x: torch.Tensor, seed=0, stop: threading.Event | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """The objects of sketches ``x`` (N, C, H, W) in [-1, 1] as the segmenter finds them, (N, H,
        W) int64 (0: background), and each one's colour drawn from ``seed`` (N, k, 3) in [-1, 1]
        (one draw per place, the same for every image of a batch whatever its ``z``). Once ``stop``
        is set, :class:`concurrent.futures.CancelledError` at the segmenter's next step."""
        with torch.inference_mode():  # also on a helper thread, where the caller's mode does not reach
            labels = merge_fragments(object_regions(x, self.segmenter, stop))
            return labels, seeded_colours(labels.cpu(), self.object_colours, seed).to(x.device)

    def colour_objects(self, x: torch.Tensor, out: torch.Tensor, seed=0) -> torch.Tensor:
        """G's photos ``out`` (N, 3, H, W) in [-1, 1] of sketches ``x``, each object moved to its
        colour from :meth:`object_colouring` (:mod:`trainer.object_colours`)."""
        return transfer(out, *self.object_colouring(x, seed))

    def whole_image(self, image, out, seed=0, object_colours=True, **options):
        """At native resolution, the per-object colours over the whole picture after G's tiles."""
        if self.object_colours is None or not object_colours:
            return out
        x = to_tensor(image.convert("RGB"))[None].to(self.device)
        y = to_tensor(Image.fromarray(out, "RGB"))[None].to(self.device)
        return to_uint8(self.colour_objects(x, y, seed)[0])

    def code_map(self, x: torch.Tensor, seed=0) -> torch.Tensor:
        """The per-object code map (N, G.region_nc, H, W) G reads for sketches ``x`` (N, C, H, W) in [-1, 1]:
        the objects the model's segmenter finds, each coloured from the seed (what an ONNX graph's
        ``regions`` input takes). ValueError for a generator without per-object codes."""
        if self.region_colours is None:
            raise ValueError("this generator has no per-object codes (model.region_codes)")
        labels = object_regions(x, self.segmenter)
        colours = seeded_colours(labels.cpu(), self.region_colours.cpu(), seed).to(x.device)
        return region_map(labels, colours)

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
        doc = {**doc, "z": f"(N, {self.nz}) standard-normal draws ({fit})"}
        extra, names, dynamic = (torch.randn(2, self.nz),), ("z",), {"z": {0: 1}}
        if self.region_colours is not None:
            side = example_side(multiple, self.image_size)
            c = self.G.region_nc
            extra, names = (*extra, torch.zeros(2, c, side, side)), (*names, "regions")
            dynamic["regions"] = {0: 1, 2: multiple, 3: multiple}
            doc["regions"] = (f"(N, {c}, H, W) per-object code map: channels 0-2 an RGB colour in [-1, 1] over "
                              f"each object's pixels, channel 3 1 there{', then its learned features' if c > 4 else ''}"
                              f", all 0 elsewhere; each object's code is a row of the .safetensors model's "
                              f"region_colours (trainer.region_codes; LatentImageTranslator.code_map paints it; "
                              f"the graph's metadata region_colours holds them as JSON rows)")
        graph = image_graph("", CodeGraph(G, self.latent_fit), channels, multiple, self.image_size, doc,
                            extra, names, dynamic)
        bank = self.region_colours if self.region_colours is not None else self.object_colours
        if bank is not None:
            graph.metadata["region_colours"] = json.dumps([[round(v, 6) for v in row] for row in bank.cpu().tolist()])
        if self.object_colours is not None:
            graph.metadata["object_colours"] = (
                "not in this graph: it is the generator; GAN Studio then moves each object of its output to a "
                "colour drawn from the seed (trainer.object_colours.transfer, objects from the model file's "
                "segmenter S, colours from region_colours); the graph gives the generator's own colours")
        return graph


class BicycleGAN(Pix2Pix):
    name = "bicyclegan"
    paper = ('Zhu, Zhang, Pathak, Darrell, Efros, Wang, Shechtman: "Toward Multimodal Image-to-Image '
             'Translation", NeurIPS 2017')
    ModelConfig = BicycleGANConfig
    Translator = LatentImageTranslator
    loss_groups = {**Pix2Pix.loss_groups, "G_kl": REGULARISATION, "G_z": REGULARISATION, "G_region": REGULARISATION}
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
        if m.region_palette not in (1, 2) or (m.region_palette > 1 and not m.region_codes):
            raise ConfigError(f"model.region_palette = {m.region_palette}: 1 (each object's mean colour) or 2 (its "
                              f"two dominant colours), and 2 only with model.region_codes = true")
        if not 0 <= m.region_features <= MAX_REGION_FEATURES or (m.region_features and not m.region_codes):
            raise ConfigError(f"model.region_features = {m.region_features}: 0 to {MAX_REGION_FEATURES} learned "
                              f"features per object, and only with model.region_codes = true")
        if m.object_colours and m.region_codes:
            raise ConfigError("model.object_colours and model.region_codes: choose one (region codes already give "
                              "each object a colour of its own, inside the generator)")
        if m.object_colours and task_of(cfg) != "sketch2photo":
            raise ConfigError(f"model.object_colours finds objects in line drawings: it needs a sketch2photo model "
                              f"(data.synth = \"sketches\" or model.task = \"sketch2photo\"), and this one is "
                              f"{task_of(cfg)}")
        if m.lambda_feat > 0:
            raise ConfigError("model.nz > 0 with model.lambda_feat: feature matching pairs each output with its "
                              "own photo, and BicycleGAN's random-z outputs have none")

    def generator_args(self) -> dict:
        m = self.cfg.model
        return {**generator_args(self.cfg), "nz": m.nz,
                **({"region_nc": region_channels(m.region_features, m.region_palette)} if m.region_codes else {})}

    def add_encoder(self):
        """E learns with G, in G's optimiser (BicycleGAN steps both after one backward)."""
        m = self.cfg.model
        self.E = self.add_net("E", init_weights(build("latent_encoder", **encoder_args(self.cfg)), m.init_type,
                                                m.init_gain))
        if m.region_features:  # pix2pixHD's feature encoder: per-pixel features, averaged over each object
            self.F = self.add_net("F", init_weights(build("unet", **feature_encoder_args(self.cfg)), m.init_type,
                                                    m.init_gain))
        self.segmenter = None  # fixed while G learns: not one of the run's nets, but carried by the export
        if (m.region_codes or m.object_colours) and m.region_segmenter != "enclosure":
            from trainer.object_segmenter import load
            try:
                self.segmenter = load(None if m.region_segmenter == "bundled" else m.region_segmenter, self.device)
            except ModelFileError as e:
                raise ModelFileError(f"model.region_segmenter: {e}") from None

    def generator_parameters(self):
        return itertools.chain(self.G.parameters(), self.E.parameters(),
                               self.F.parameters() if self.cfg.model.region_features else ())

    def region_codes(self, photo, labels, k, net=None):
        """Each region's code (N, k, 3 p + d) and pixel count (N, k): its mean colour in ``photo``
        (N, 3, H, W) in [-1, 1] (p = ``model.region_palette`` 2: its two dominant colours), then the
        mean of the feature encoder's d maps over it (``net``, default the trained F; none without
        ``model.region_features``)."""
        colours, counts = region_palette(photo.float(), labels, k, self.cfg.model.region_palette)
        if not self.cfg.model.region_features:
            return colours, counts
        features = (net or self.train_nets["F"])(photo)
        return torch.cat([colours, region_means(features.float(), labels, k)[0]], -1), counts

    def generate(self, real_A, real_B, G):
        """One pass for both halves: z read from the photo (cVAE-GAN), and z from the prior (cLR-GAN);
        with region codes, each object's colour read from the photo and drawn from other objects'."""
        regions, seen = (), real_B
        self._regions = None
        if self.cfg.model.region_codes:
            labels = object_regions(real_A, self.segmenter)
            k = max(1, int(labels.max()))
            colours, counts = self.region_codes(real_B, labels, k)
            present = counts > 0
            pool = colours.detach()[present]  # the drawn codes are targets: no gradient into F through them
            drawn = (pool[torch.randint(len(pool), present.shape, device=pool.device)] * present[..., None]
                     if len(pool) else torch.zeros_like(colours))
            background = (labels == 0)[:, None].to(real_B.dtype)
            seen = real_B * background  # E reads the scene without its objects: z keeps wall and floor
            regions = (torch.cat([region_map(labels, colours), region_map(labels, drawn)]),)
            self._regions = (labels, k, drawn, present, background)
        mu, logvar = self.train_nets["E"](seen)
        z_random = torch.randn_like(mu)
        z = torch.cat([mu + torch.randn_like(mu) * (0.5 * logvar).exp(), z_random])
        inputs = torch.cat([real_A, real_A])
        fake = G(inputs, z, *regions)
        self._codes = (mu, logvar, z_random)
        return inputs, fake, fake[:real_A.size(0)]  # the outputs that have a photo to match

    def latent_losses(self, loss_G, fake, losses):
        """KL of E's codes to N(0, 1) and the L1 of E(G(A, z_random)) to z_random (G alone learns from it)."""
        m = self.cfg.model
        mu, logvar, z_random = self._codes
        n = mu.size(0)
        losses["G_kl"] = kl_divergence(mu, logvar)
        set_requires_grad(self.E, False)  # the latent's regression teaches G alone
        regions = self._regions
        losses["G_z"] = l1_loss(self.E(fake[n:] if regions is None else fake[n:] * regions[4])[0], z_random)
        set_requires_grad(self.E, True)
        loss_G = loss_G + m.lambda_kl * losses["G_kl"] + m.lambda_z * losses["G_z"]
        if regions is not None:  # each object's mean colour (and F's features) gives its drawn code back
            labels, k, drawn, present, _ = regions
            if m.region_features:
                set_requires_grad(self.F, False)  # as for z: the regression teaches G alone
            means = self.region_codes(fake[n:], labels, k, self.F if m.region_features else None)[0]
            if m.region_features:
                set_requires_grad(self.F, True)
            losses["G_region"] = ((means - drawn).abs().mean(-1) * present).sum() / present.sum().clamp(min=1)
            loss_G = loss_G + m.lambda_region * losses["G_region"]
        return loss_G

    def sample(self, batch):
        """Rows of input | output | target: G with z = 0 and, with region codes, each object's
        colour read from the target photo."""
        if not self.cfg.model.region_codes:
            return super().sample(batch)
        real_A, real_B = self.to_device(batch["A"]), self.to_device(batch["B"])
        labels = object_regions(real_A, self.segmenter)
        with torch.no_grad():
            codes = self.region_codes(real_B, labels, max(1, int(labels.max())), getattr(self, "F", None))[0]
        regions = region_map(labels, codes)
        with side_effect_free(self.G), self.autocast():
            fake_B = self.G(real_A, None, regions).float()
        self._sample_outputs = fake_B
        return image_grid([[a, f, b] for a, f, b in zip(real_A.float(), fake_B, real_B.float())])

    def export(self):
        tensors, card = super().export()
        m = self.cfg.model
        if m.latent_prior == "posterior" or m.region_codes or m.object_colours:
            codes, colours, used = self.training_photo_codes()
            if m.latent_prior == "posterior":
                tensors["latent_mean"], tensors["latent_scale_tril"] = fit_gaussian(codes)
                card["latent_prior"] = {"name": "posterior", "images": used}
            if m.region_codes or m.object_colours:
                if not len(colours):
                    what = "region_codes" if m.region_codes else "object_colours"
                    raise ConfigError(f"model.{what}: the segmenter (model.region_segmenter = "
                                      f"{m.region_segmenter!r}) found no object in the training sketches, so there "
                                      f"are no object colours to draw from: is it trained (the held-out scores in "
                                      f"its card)? The run's checkpoints are kept")
                tensors["region_colours"] = colours
                if m.object_colours:
                    card["object_colours"] = "transfer"
                if self.segmenter is not None:
                    from trainer.object_segmenter import card_spec
                    tensors.update({f"S.{k}": v for k, v in self.segmenter.state_dict().items()})
                    card["nets"]["S"] = card_spec(self.segmenter)
        return tensors, card

    def training_photo_codes(self, batch_size: int = 32):
        """What the export fits, from up to ``model.latent_fit_images`` training pairs spread evenly
        over the dataset (each with augmentation seed 0, so an export is repeatable): E's mean codes
        (N, nz) float64 of the photos as E reads them (with region codes: less the objects), the
        objects' codes (M, 3 p + d) (with region codes or object colours; else empty), and N.
        Raises ConfigError for fewer than 2 pairs."""
        data = self.dataset("train", log=lambda *a: None)
        if len(data) < 2:
            raise ConfigError(f"model.latent_prior = 'posterior' and model.region_codes fit what the training "
                              f"photos hold and this dataset has {len(data)} pairs: export with "
                              f"model.latent_prior = 'normal' and without region codes")
        step = max(1, len(data) // self.cfg.model.latent_fit_images)
        picks = list(range(0, len(data), step)[:self.cfg.model.latent_fit_images])
        colours = []

        def seen():
            for i in range(0, len(picks), batch_size):
                items = [data[(j, 0)] for j in picks[i:i + batch_size]]
                a, b = torch.stack([it["A"] for it in items]), torch.stack([it["B"] for it in items])
                if self.cfg.model.region_codes or self.cfg.model.object_colours:
                    with torch.no_grad():
                        labels = object_regions(a.to(self.device), self.segmenter)
                        means, counts = self.region_codes(b.to(self.device), labels, max(1, int(labels.max())),
                                                          getattr(self, "F", None))
                    colours.append(means[counts > 0].cpu())
                    if self.cfg.model.region_codes:  # E reads the scene without its objects
                        b = b * (labels.cpu() == 0)[:, None].to(b.dtype)
                yield from b
        codes = posterior_means(self.E, seen())
        width = 3 * self.cfg.model.region_palette + self.cfg.model.region_features
        return codes, (torch.cat(colours).float() if colours else torch.zeros(0, width)), len(picks)
