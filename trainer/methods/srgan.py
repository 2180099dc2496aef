"""SRResNet and SRGAN (Ledig et al. 2017): x2/x4/x8 super-resolution of bicubically downscaled
crops of a folder of high-resolution images.

``adversarial = false`` is the plain SRResNet (pixel MSE). ``adversarial = true`` is SRGAN: the
content loss (``lambda_mse`` pixel MSE plus ``lambda_vgg`` times the MSE of VGG19 relu5_4
features, SRGAN's "VGG54"; needs ``model.vgg_weights``) plus ``lambda_adv`` (1e-3) times the
non-saturating adversarial loss against the SRGAN discriminator. ``data.image_size`` is the
high-resolution crop.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trainer.config import ConfigError
from trainer.data.superres import SuperResDataset
from trainer.losses import GAN_MODES, feature_reconstruction_loss, gan_loss
from trainer.methods.base import Method, image_grid, set_requires_grad, side_effect_free
from trainer.nets import build
from trainer.nets.vgg import VGGFeatures, VGGWeightsError, require_weights


@dataclass
class SRGANConfig:
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


class SRGAN(Method):
    name = "srgan"
    task = "superres"
    ModelConfig = SRGANConfig

    @classmethod
    def validate(cls, cfg):
        m = cfg.model
        cls.check_common(cfg, "a folder of high-resolution images", "/path/to/photos")
        if m.scale not in (2, 4, 8):
            raise ConfigError(f"model.scale = {m.scale}: choose 2, 4 or 8")
        if cfg.data.image_size % m.scale:
            raise ConfigError(f"data.image_size = {cfg.data.image_size} (the high-resolution crop) must be a "
                              f"multiple of model.scale = {m.scale}")
        if m.gan_mode not in GAN_MODES:
            raise ConfigError(f"model.gan_mode = {m.gan_mode!r}; choose one of {', '.join(GAN_MODES)}")
        if m.lambda_mse <= 0 and m.lambda_vgg <= 0:
            raise ConfigError("set model.lambda_mse or model.lambda_vgg above 0: there is no content loss")
        if m.lambda_vgg > 0:
            try:
                require_weights(m.vgg, m.vgg_weights)
            except VGGWeightsError as e:
                raise ConfigError(f"{e} (or set model.lambda_vgg = 0 for the pixel loss alone)") from None

    def __init__(self, cfg, device, amp_dtype=None, channels_last=False):
        super().__init__(cfg, device, amp_dtype, channels_last)
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
