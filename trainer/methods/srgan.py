"""SRResNet and SRGAN (Ledig et al. 2017): x2/x4/x8 super-resolution of bicubically downscaled
crops of a folder of high-resolution images.

``adversarial = false`` is the plain SRResNet (pixel MSE). ``adversarial = true`` is SRGAN: the
content loss (``lambda_mse`` pixel MSE plus ``lambda_vgg`` times the MSE of VGG19 relu5_4
features, SRGAN's "VGG54"; needs ``model.vgg_weights``) plus ``lambda_adv`` (1e-3) times the
non-saturating adversarial loss against the SRGAN discriminator. ``data.image_size`` is the
high-resolution crop.

Data: an image folder of high-resolution photos (or an aligned folder, its images taken whole);
``data.image_size`` a multiple of ``model.scale``. The exported model enlarges any image in
overlapping tiles.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trainer.controls import Control
from trainer.data.imageio import MAX_PIXELS
from trainer.data.superres import SuperResDataset
from trainer.data.transforms import to_tensor
from trainer.errors import ConfigError, ImageError, VGGWeightsError
from trainer.evaluation import superres
from trainer.exporters.onnx_graphs import ImageGraph, image_graph
from trainer.images import image_grid
from trainer.losses import GAN_MODES, feature_reconstruction_loss, gan_loss
from trainer.methods.base import (DISCRIMINATOR, GENERATOR, REGULARISATION, Method, set_requires_grad,
                                  side_effect_free)
from trainer.nets import build
from trainer.nets.vgg import VGGFeatures, require_weights
from trainer.translator import Translator, build_net, input_channels, upscale_tiled, upscale_tiled_tensor


@dataclass
class SRGANConfig:
    """SRGAN's ``[model]`` settings: the scale (2, 4 or 8), residual blocks and widths, adversarial
    or not (SRResNet), the content and adversarial weights, and the VGG features of the content loss."""
    scale: int = 4
    n_blocks: int = 16
    ngf: int = 64
    ndf: int = 64
    adversarial: bool = True
    gan_mode: str = "vanilla"
    lambda_mse: float = 0.0
    lambda_vgg: float = 0.006  # the 1 / 12.75^2 rescaling of VGG features of the paper
    lambda_adv: float = 1e-3
    vgg: str = "vgg19"
    vgg_layer: str = "relu5_4"
    vgg_weights: str = ""


class SuperResTranslator(Translator):
    """SRResNet / SRGAN: any image enlarged by the model's factor, in overlapping tiles."""

    reduced_precision = True  # bf16: within 2/255 of fp32 on the bundled superres-x4 (docs/performance.md)

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

    def onnx_graphs(self, latent="z", mode=None, noise_mode="stored", noise_seed=0):
        """One graph ``image`` -> ``output`` at ``scale`` times its size (no tiling)."""
        G = copy.deepcopy(self.G).eval()
        return [image_graph("", ImageGraph(G), input_channels(G), 1, max(8, self.image_size // self.scale),
                            {"scale": f"the output is {self.scale}x the input"})]


class SRGAN(Method):
    name = "srgan"
    task = "superres"
    paper = ('Ledig, Theis, Huszar, Caballero, Cunningham, Acosta, Aitken, Tejani, Totz, Wang, Shi: "Photo-Realistic '
             'Single Image Super-Resolution Using a Generative Adversarial Network", CVPR 2017')
    ModelConfig = SRGANConfig
    Translator = SuperResTranslator
    layouts = frozenset({"image folder", "aligned"})
    # PSNR is logged with the losses and plotted with the reconstruction losses
    loss_groups = {"D_real": DISCRIMINATOR, "D_fake": DISCRIMINATOR, "G_MSE": REGULARISATION,
                   "G_VGG": REGULARISATION, "G_GAN": GENERATOR, "PSNR": REGULARISATION}

    @classmethod
    def check_image_size(cls, size, model=None):
        """A multiple of ``model.scale`` (``data.image_size`` is the high-resolution crop)."""
        scale = (model or cls.ModelConfig()).scale
        if size % scale:
            raise ConfigError(f"data.image_size = {size} (the high-resolution crop) must be a "
                              f"multiple of model.scale = {scale}")

    @classmethod
    def evaluate(cls, translator, data=None, n=None, progress=True, **options):
        """:func:`trainer.evaluation.superres.evaluate`: PSNR and SSIM against bicubic upscaling."""
        return superres.evaluate(translator, data=data, n=n, progress=progress, **options)

    @classmethod
    def validate(cls, cfg):
        m = cfg.model
        cls.check_common(cfg, "a folder of high-resolution images", "/path/to/photos")
        if m.scale not in (2, 4, 8):
            raise ConfigError(f"model.scale = {m.scale}: choose 2, 4 or 8")
        cls.check_image_size(cfg.data.image_size, m)
        if m.gan_mode not in GAN_MODES:
            raise ConfigError(f"model.gan_mode = {m.gan_mode!r}; choose one of {', '.join(GAN_MODES)}")
        if m.lambda_mse <= 0 and m.lambda_vgg <= 0:
            raise ConfigError("set model.lambda_mse or model.lambda_vgg above 0: there is no content loss")
        if m.lambda_vgg > 0:
            try:
                require_weights(m.vgg, m.vgg_weights)
            except VGGWeightsError as e:
                raise ConfigError(f"{e} (or set model.lambda_vgg = 0 for the pixel loss alone)") from None

    def __init__(self, cfg, device, amp_dtype=None, channels_last=False, any_rank=None):
        super().__init__(cfg, device, amp_dtype, channels_last, any_rank)
        m, t = cfg.model, cfg.train
        self.G = self.add_net("G", build("srresnet", **self.generator_args()))
        self.add_optimizer("G", self.G.parameters(), t.lr, (t.beta1, t.beta2))
        if m.adversarial:
            self.D = self.add_net("D", build("srgan_D", ndf=m.ndf))
            self.add_optimizer("D", self.D.parameters(), t.lr, (t.beta1, t.beta2))
        self.vgg = VGGFeatures(m.vgg, m.vgg_weights, [m.vgg_layer]).to(device) if m.lambda_vgg > 0 else None

    def generator_args(self) -> dict:
        m = self.cfg.model
        return {"scale": m.scale, "n_blocks": m.n_blocks, "ngf": m.ngf}

    def dataset(self, phase="train", log=print):
        d = self.cfg.data
        return SuperResDataset(self.data_root(log), phase, d.image_size, self.cfg.model.scale, d.flip, log=log)

    def content_loss(self, sr, hr, losses):
        m = self.cfg.model
        total = 0
        if m.lambda_mse > 0:
            losses["G_MSE"] = F.mse_loss(sr.float(), hr.float())
            total = total + m.lambda_mse * losses["G_MSE"]
        if self.vgg is not None:
            with torch.no_grad():
                target = self.vgg(hr)[m.vgg_layer]
            losses["G_VGG"] = feature_reconstruction_loss(self.vgg(sr)[m.vgg_layer], target)
            total = total + m.lambda_vgg * losses["G_VGG"]
        return total

    def train_step(self, batch):
        m = self.cfg.model
        G = self.train_nets["G"]
        lr, hr = self.to_device(batch["LR"]), self.to_device(batch["HR"])
        losses = {}
        with self.autocast():
            sr = G(lr)
        if m.adversarial:
            D = self.train_nets["D"]
            with self.autocast():
                losses["D_real"] = gan_loss(m.gan_mode, D(hr), True)
                losses["D_fake"] = gan_loss(m.gan_mode, D(sr.detach()), False)
            self.optimize("D", losses["D_real"] + losses["D_fake"])
            set_requires_grad(self.D, False)
        with self.autocast():
            loss = self.content_loss(sr, hr, losses)
            if m.adversarial:
                losses["G_GAN"] = gan_loss(m.gan_mode, self.train_nets["D"](sr), True, for_discriminator=False)
                loss = loss + m.lambda_adv * losses["G_GAN"]
        self.optimize("G", loss)
        if m.adversarial:
            set_requires_grad(self.D, True)
        with torch.no_grad():
            mse = F.mse_loss(sr.detach().float().clamp(-1, 1), hr.float(), reduction="none").mean((1, 2, 3))
            losses["PSNR"] = (10 * torch.log10(4.0 / mse.clamp_min(1e-10))).mean()  # range 2 -> peak^2 = 4
        self.end_step()
        return losses

    def sample(self, batch):
        """Rows of bicubic | super-resolved | ground truth."""
        lr, hr = self.to_device(batch["LR"][:4]), batch["HR"][:4].float()
        with side_effect_free(self.G), self.autocast():
            self.G.eval()
            sr = self.G(lr).float().cpu()
            self.G.train()
        bicubic = F.interpolate(lr.float().cpu(), size=hr.shape[-2:], mode="bicubic", align_corners=False)
        return image_grid([[b, s, h] for b, s, h in zip(bicubic, sr, hr)])

    def export(self):
        card = self.card({"G": {"name": "srresnet", "args": self.generator_args()}}, scale=self.cfg.model.scale)
        return {f"G.{k}": v for k, v in self.G.state_dict().items()}, card
