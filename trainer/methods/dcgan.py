"""DCGAN (Radford et al. 2016), the conditional GAN (Mirza & Osindero 2014) and WGAN-GP
(Gulrajani et al. 2017): one generator from noise z (and a class label), one discriminator.

``dcgan``: vanilla loss, batch norm in D, Adam 2e-4 (0.5, 0.999). ``wgan_gp``: the same nets
with a critic without batch norm, the Wasserstein loss with the gradient penalty on
interpolates (lambda 10), n_critic 5, Adam 1e-4 (0.5, 0.9). ``conditional = true`` joins the
class label (the dataset's class folders) to z and to the discriminator's input.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from trainer.config import ConfigError
from trainer.data.folder import FolderDataset, class_names
from trainer.losses import gan_loss, gradient_penalty
from trainer.methods.base import Method, image_grid, set_requires_grad, side_effect_free
from trainer.nets import build
from trainer.nets.init import init_weights

SAMPLE_SEED = 1234


@dataclass
class DCGANConfig:
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    conditional: bool = False
    gan_mode: str = "vanilla"
    d_norm: str = "batch"
    n_critic: int = 1
    lambda_gp: float = 10.0


@dataclass
class WGANGPConfig(DCGANConfig):
    gan_mode: str = "wgangp"
    d_norm: str = "none"
    n_critic: int = 5


class DCGAN(Method):
    name = "dcgan"
    task = "sample"
    ModelConfig = DCGANConfig

    @classmethod
    def validate(cls, cfg):
        cls.check_common(cfg, "image folder layout (images, or one subfolder per class)", "/path/to/images")
        m = cfg.model
        if m.gan_mode == "wgangp" and m.d_norm == "batch":
            raise ConfigError("the WGAN-GP penalty is per sample: use model.d_norm = none or layer, not batch")
        size = cfg.data.image_size
        if size < 8 or size & (size - 1):
            raise ConfigError(f"data.image_size = {size}: must be a power of two of at least 8")

    def __init__(self, cfg, device, amp_dtype=None, channels_last=False):
        super().__init__(cfg, device, amp_dtype, channels_last)
        m, t = cfg.model, cfg.train
        self.classes = class_names(self.image_root(log=None)) if m.conditional else []
        if m.conditional and not self.classes:
            raise ConfigError("model.conditional = true needs a dataset with one subfolder per class")
        self.G = self.add_net("G", init_weights(build("dcgan_G", **self.generator_args())))
        self.D = self.add_net("D", init_weights(build("dcgan_D", ndf=m.ndf, nc=3, image_size=cfg.data.image_size,
                                                      n_classes=len(self.classes), norm=m.d_norm)))
        self.add_optimizer("G", self.G.parameters(), t.lr, (t.beta1, t.beta2))
        self.add_optimizer("D", self.D.parameters(), t.lr, (t.beta1, t.beta2))

    def generator_args(self) -> dict:
        m = self.cfg.model
        return {"nz": m.nz, "ngf": m.ngf, "nc": 3, "image_size": self.cfg.data.image_size,
                "n_classes": len(self.classes)}

    def dataset(self, phase="train", log=print):
        d = self.cfg.data
        return FolderDataset(self.image_root(log), phase, d.image_size, 0, d.flip, log=log)

    def train_step(self, batch):
        m = self.cfg.model
        G, D = self.train_nets["G"], self.train_nets["D"]
        real = self.to_device(batch["image"])
        labels = batch["class_index"].to(self.device) if self.classes else None
        b = real.size(0)
        losses = {}
        with self.autocast():
            fake = G(torch.randn(b, m.nz, device=self.device), labels)
            losses["D_real"] = gan_loss(m.gan_mode, D(real, labels), True)
            losses["D_fake"] = gan_loss(m.gan_mode, D(fake.detach(), labels), False)
            loss_D = losses["D_real"] + losses["D_fake"]
            if m.gan_mode == "wgangp":
                losses["D_gp"] = gradient_penalty(lambda x: D(x, labels), real, fake, m.lambda_gp)
                loss_D = loss_D + losses["D_gp"]
        self.optimize("D", loss_D)
        if (self.schedulers["D"].last_epoch + 1) % m.n_critic == 0:
            set_requires_grad(self.D, False)
            with self.autocast():
                fake = G(torch.randn(b, m.nz, device=self.device), labels)
                losses["G"] = gan_loss(m.gan_mode, self.D(fake, labels), True, for_discriminator=False)
            self.optimize("G", losses["G"])
            set_requires_grad(self.D, True)
        self.end_step()
        return losses

    def sample(self, batch):
        """8 fixed noise vectors; a row per class when conditional."""
        m = self.cfg.model
        z = torch.randn(8, m.nz, generator=torch.Generator().manual_seed(SAMPLE_SEED)).to(self.device)
        rows = []
        with side_effect_free(self.G), self.autocast():
            self.G.eval()
            for c in range(max(1, len(self.classes))):
                labels = torch.full((8,), c, device=self.device) if self.classes else None
                rows.append(list(self.G(z, labels).float()))
            self.G.train()
        self.sample_outputs = torch.stack(rows[0])
        return image_grid(rows)

    def export(self):
        card = self.card({"G": {"name": "dcgan_G", "args": self.generator_args()}}, classes=self.classes)
        return {f"G.{k}": v for k, v in self.G.state_dict().items()}, card


class WGANGP(DCGAN):
    name = "wgan_gp"
    ModelConfig = WGANGPConfig
