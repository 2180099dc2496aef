"""pix2pix (Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", 2017).

U-Net generator, PatchGAN discriminator on (input, output) pairs, loss = cGAN + lambda_l1 * L1.
The paper's ablations are settings: ``lambda_l1 = 0`` (cGAN only), ``lambda_gan = 0`` (L1 only,
no discriminator is trained), ``conditional_D = false`` (the discriminator sees the output alone),
and ``netD`` = basic (70x70 PatchGAN), n_layers, pixel (1x1) or image (ImageGAN). From pix2pixHD
(Wang et al. 2018): ``num_D`` > 1 PatchGANs at halved resolutions, and ``lambda_feat`` for the
discriminator feature-matching loss.

``nz`` > 0 makes it BicycleGAN (Zhu et al., "Toward Multimodal Image-to-Image Translation", 2017):
the U-Net also takes a latent code. cVAE-GAN: an encoder E reads the target photo into ``z`` (KL to
N(0, 1), weight ``lambda_kl``), and the L1 and GAN losses score G(A, z) against that photo, so L1
no longer pulls an ambiguous colour towards the average of its modes. cLR-GAN: G(A, z ~ N(0, 1))
must fool the same discriminator and give back its ``z`` through E (L1, weight ``lambda_z``; G
alone learns from it). At test time ``z`` comes from a seed: each seed one coherent colouring,
drawn from N(0, 1) or (``latent_prior = "posterior"``) from a Gaussian fitted at export to the
codes E gives the training photos (:mod:`trainer.latent_density`).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from trainer.config import ConfigError
from trainer.data.aligned import AlignedDataset
from trainer.latent_density import fit_gaussian, posterior_means
from trainer.losses import feature_matching_loss, gan_loss, gradient_penalty, kl_divergence, l1_loss
from trainer.methods.base import Method, image_grid, set_requires_grad, side_effect_free
from trainer.nets import build
from trainer.nets.init import init_weights
from trainer.nets.patchgan import patch_grid
from trainer.nets.unet import UPSAMPLES, unet_depth

D_KINDS = ("basic", "n_layers", "pixel", "image")
LATENT_PRIORS = ("normal", "posterior")


@dataclass
class Pix2PixConfig:
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
    # the exported model's default test-time mode (trainer.inference.TEST_MODES): "paper" keeps batch
    # statistics and dropout as the paper; "eval" uses the running statistics, which keep the
    # per-image information that batch statistics of a single image remove at the small inner levels
    test_mode: str = "paper"
    upsample: str = "transpose"  # the U-Net's doubling (trainer.nets.unet): "resize" avoids checkerboard artifacts
    nz: int = 0  # > 0: BicycleGAN's latent code of this size (cVAE-GAN + cLR-GAN), see the module docstring
    nef: int = 64  # the encoder E's width (BicycleGAN's resnet_128 / resnet_256)
    encoder_grid: int = 1  # E pools to this grid (1: the paper's global average); > 1 codes where colours are
    lambda_kl: float = 0.01
    lambda_z: float = 0.5
    # the exported model's test-time codes: "normal" draws N(0, 1) (the paper); "posterior" draws from a
    # Gaussian fitted to E's codes of up to latent_fit_images training photos (trainer.latent_density)
    latent_prior: str = "normal"
    latent_fit_images: int = 2000


def generator_args(cfg) -> dict:
    m = cfg.model
    return {"input_nc": m.input_nc, "output_nc": m.output_nc, "num_downs": unet_depth(cfg.data.image_size),
            "ngf": m.ngf, "norm": m.norm, "use_dropout": m.dropout,
            **({"upsample": m.upsample} if m.upsample != "transpose" else {}), **({"nz": m.nz} if m.nz else {})}


def encoder_args(cfg) -> dict:
    """BicycleGAN's E: four residual levels at 128 px and below, five above."""
    m = cfg.model
    return {"input_nc": m.output_nc, "nz": m.nz, "nef": m.nef, "n_blocks": 4 if cfg.data.image_size <= 128 else 5,
            **({"grid": m.encoder_grid} if m.encoder_grid != 1 else {})}


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


class Pix2Pix(Method):
    name = "pix2pix"
    task = "photo2photo"
    ModelConfig = Pix2PixConfig

    @classmethod
    def validate(cls, cfg):
        m = cfg.model
        cls.check_common(cfg, "aligned layout (train/ with A|B side-by-side images)", "/path/to/facades")
        if m.netD not in D_KINDS:
            raise ConfigError(f"model.netD = {m.netD!r}; choose one of {', '.join(D_KINDS)}")
        if m.norm not in ("batch", "instance", "none"):
            raise ConfigError(f"model.norm = {m.norm!r}; choose batch, instance or none")
        from trainer.inference import TEST_MODES
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
        if m.nz < 0 or (m.nz and m.nef < 1):
            raise ConfigError(f"model.nz = {m.nz}, model.nef = {m.nef}: the latent size is 0 (pix2pix) or more "
                              f"(BicycleGAN), with an encoder at least 1 channel wide")
        if m.encoder_grid < 1:
            raise ConfigError(f"model.encoder_grid = {m.encoder_grid}: 1 (global pooling) or more (a grid)")
        if m.latent_prior not in LATENT_PRIORS:
            raise ConfigError(f"model.latent_prior = {m.latent_prior!r}; choose one of {', '.join(LATENT_PRIORS)}")
        if m.latent_prior == "posterior" and (m.nz <= 0 or m.latent_fit_images < 2):
            raise ConfigError("model.latent_prior = 'posterior' needs a latent code (model.nz > 0) and "
                              f"model.latent_fit_images >= 2 (got nz {m.nz}, {m.latent_fit_images} images)")
        if m.nz and m.lambda_feat > 0:
            raise ConfigError("model.nz > 0 with model.lambda_feat: feature matching pairs each output with its "
                              "own photo, and BicycleGAN's random-z outputs have none")
        if m.upsample not in UPSAMPLES:
            raise ConfigError(f"model.upsample = {m.upsample!r}; choose one of {', '.join(UPSAMPLES)}")
        try:
            unet_depth(cfg.data.image_size)
        except ValueError as e:
            raise ConfigError(f"data.image_size: {e}") from None

    def __init__(self, cfg, device, amp_dtype=None, channels_last=False):
        super().__init__(cfg, device, amp_dtype, channels_last)
        m, t = cfg.model, cfg.train
        self.G = self.add_net("G", init_weights(build("unet", **generator_args(cfg)), m.init_type, m.init_gain))
        self.E = None
        if m.nz:  # E learns with G, in G's optimiser (BicycleGAN steps both after one backward)
            self.E = self.add_net("E", init_weights(build("latent_encoder", **encoder_args(cfg)), m.init_type,
                                                    m.init_gain))
        self.add_optimizer("G", itertools.chain(self.G.parameters(), *([self.E.parameters()] if self.E else [])),
                           t.lr, (t.beta1, t.beta2))
        self.use_D = m.lambda_gan > 0
        if self.use_D:
            d_name, d_args = discriminator(cfg)
            self.D = self.add_net("D", init_weights(build(d_name, **d_args), m.init_type, m.init_gain))
            self.add_optimizer("D", self.D.parameters(), t.lr, (t.beta1, t.beta2))

    def dataset(self, phase="train", log=print):
        d = self.cfg.data
        root = self.data_root(log)
        if phase != "train" and not (root / phase).is_dir():
            phase = "train"
        return AlignedDataset(root, phase, d.image_size, d.load_size or None, d.preprocess, d.flip,
                              d.direction, log=log)

    def _pair(self, a, b):
        return torch.cat([a, b], 1) if self.cfg.model.conditional_D else b

    def train_step(self, batch):
        m = self.cfg.model
        real_A, real_B = self.to_device(batch["A"]), self.to_device(batch["B"])
        G = self.train_nets["G"]
        losses = {}
        n = real_A.size(0)
        with self.autocast():
            if self.E is None:
                inputs, fake = real_A, G(real_A)
            else:  # one pass for both halves: z read from the photo, and z from the prior
                mu, logvar = self.train_nets["E"](real_B)
                z_random = torch.randn_like(mu)
                z = torch.cat([mu + torch.randn_like(mu) * (0.5 * logvar).exp(), z_random])
                inputs = torch.cat([real_A, real_A])
                fake = G(inputs, z)
            fake_B = fake[:n]  # the outputs that have a photo to match
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
            if self.E is not None:
                losses["G_kl"] = kl_divergence(mu, logvar)
                set_requires_grad(self.E, False)  # the latent's regression teaches G alone
                losses["G_z"] = l1_loss(self.E(fake[n:])[0], z_random)
                set_requires_grad(self.E, True)
                loss_G = loss_G + m.lambda_kl * losses["G_kl"] + m.lambda_z * losses["G_z"]
        self.optimize("G", loss_G)
        self.end_step()
        return losses

    def sample(self, batch):
        """Rows of input | output | target, the generator as at test time in the paper (a
        BicycleGAN generator with z = 0, the prior's mean)."""
        real_A, real_B = self.to_device(batch["A"]), self.to_device(batch["B"])
        with side_effect_free(self.G), self.autocast():
            fake_B = self.G(real_A).float()
        self.sample_outputs = fake_B
        return image_grid([[a, f, b] for a, f, b in zip(real_A.float(), fake_B, real_B.float())])

    def export(self):
        cfg = self.cfg
        task = cfg.model.task or ("sketch2photo" if cfg.data.synth == "sketches" else "photo2photo")
        card = self.card({"G": {"name": "unet", "args": generator_args(cfg)}}, task=task,
                         direction=cfg.data.direction,
                         inference={"mode": cfg.model.test_mode})
        tensors = {f"G.{k}": v for k, v in self.G.state_dict().items()}
        if self.E is not None and cfg.model.latent_prior == "posterior":
            tensors["latent_mean"], tensors["latent_scale_tril"], used = self.fit_latent()
            card["latent_prior"] = {"name": "posterior", "images": used}
        return tensors, card

    def fit_latent(self):
        """A Gaussian over E's codes of up to ``model.latent_fit_images`` training photos, spread
        evenly over the dataset (each with augmentation seed 0, so an export is repeatable): (mean,
        scale_tril, images used)."""
        data = self.dataset("train", log=lambda *a: None)
        if len(data) < 2:
            raise ConfigError(f"model.latent_prior = 'posterior' fits the codes of the training photos and "
                              f"this dataset has {len(data)}: export with model.latent_prior = 'normal'")
        step = max(1, len(data) // self.cfg.model.latent_fit_images)
        picks = range(0, len(data), step)[:self.cfg.model.latent_fit_images]
        codes = posterior_means(self.E, (data[(i, 0)]["B"] for i in picks))
        return (*fit_gaussian(codes), len(picks))
