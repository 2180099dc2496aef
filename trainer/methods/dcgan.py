"""DCGAN (Radford et al. 2016), the conditional GAN (Mirza & Osindero 2014) and WGAN-GP
(Gulrajani et al. 2017): one generator from noise z (and a class label), one discriminator.

``dcgan``: vanilla loss, batch norm in D, Adam 2e-4 (0.5, 0.999). ``wgan_gp``: the same nets
with a critic without batch norm, the Wasserstein loss with the gradient penalty on
interpolates (lambda 10), n_critic 5, Adam 1e-4 (0.5, 0.9). ``conditional = true`` joins the
class label (the dataset's class folders) to z and to the discriminator's input.

Data: an image folder (or one subfolder per class; CelebA's image folder works too);
``data.image_size`` a power of two of at least 8. The exported model samples from seeds.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from trainer.controls import Control
from trainer.data.folder import FolderDataset, class_names
from trainer.data.transforms import to_uint8
from trainer.errors import ConfigError
from trainer.exporters.onnx_graphs import Graph
from trainer.images import image_grid
from trainer.losses import gan_loss, gradient_penalty
from trainer.methods.base import (DISCRIMINATOR, GENERATOR, REGULARISATION, Method, require_doubling_size,
                                  set_requires_grad, side_effect_free)
from trainer.nets import build
from trainer.nets.init import init_weights
from trainer.translator import Translator, build_net

SAMPLE_SEED = 1234


@dataclass
class DCGANConfig:
    """DCGAN's ``[model]`` settings: the noise size ``nz``, widths, conditional on the class folders,
    GAN mode, the discriminator's norm, ``n_critic`` and the gradient penalty's weight."""
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


class SampleGraph(nn.Module):
    """ONNX: ``z`` (N, nz) and, when conditional, ``labels`` (N,) int64 -> images."""

    def __init__(self, G, conditional):
        super().__init__()
        self.G, self.conditional = G, conditional

    def forward(self, z, labels=None):
        return self.G(z, labels if self.conditional else None).clamp(-1, 1)


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

    def onnx_graphs(self, latent="z", mode=None, noise_mode="stored", noise_seed=0):
        """One graph ``z`` (and ``labels`` when conditional) -> ``output``."""
        nz = self.card["nets"]["G"]["args"]["nz"]
        G = copy.deepcopy(self.G).eval()
        doc = {"z": f"(N, {nz}) standard normal"}
        if self.classes:
            doc["labels"] = f"(N,) int64 class index: {', '.join(self.classes)}"
            return [Graph("", SampleGraph(G, True), (torch.randn(2, nz), torch.zeros(2, dtype=torch.long)),
                          ["z", "labels"], {"z": {0: 1}, "labels": {0: 1}}, doc)]
        return [Graph("", SampleGraph(G, False), (torch.randn(2, nz),), ["z"], {"z": {0: 1}}, doc)]


class DCGAN(Method):
    name = "dcgan"
    task = "sample"
    paper = ('Radford, Metz, Chintala: "Unsupervised Representation Learning with Deep Convolutional '
             'Generative Adversarial Networks", ICLR 2016; conditional: Mirza, Osindero, "Conditional '
             'Generative Adversarial Nets", 2014')
    ModelConfig = DCGANConfig
    Translator = SampleTranslator
    layouts = frozenset({"image folder", "attributes"})
    loss_groups = {"D_real": DISCRIMINATOR, "D_fake": DISCRIMINATOR, "D_gp": REGULARISATION, "G": GENERATOR}

    @classmethod
    def check_image_size(cls, size, model=None):
        """A power of two of at least 8 (:func:`trainer.methods.base.require_doubling_size`)."""
        require_doubling_size(size, "DCGAN")

    @classmethod
    def validate(cls, cfg):
        cls.check_common(cfg, "image folder layout (images, or one subfolder per class)", "/path/to/images")
        m = cfg.model
        if m.gan_mode == "wgangp" and m.d_norm == "batch":
            raise ConfigError("the WGAN-GP penalty is per sample: use model.d_norm = none or layer, not batch")
        cls.check_image_size(cfg.data.image_size, m)

    def __init__(self, cfg, device, amp_dtype=None, channels_last=False, any_rank=None):
        super().__init__(cfg, device, amp_dtype, channels_last, any_rank)
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
        self._sample_outputs = torch.stack(rows[0])
        return image_grid(rows)

    def export(self):
        card = self.card({"G": {"name": "dcgan_G", "args": self.generator_args()}}, classes=self.classes)
        return {f"G.{k}": v for k, v in self.G.state_dict().items()}, card


class WGANGP(DCGAN):
    """DCGAN's nets as a Wasserstein critic with the gradient penalty (WGAN-GP)."""
    name = "wgan_gp"
    paper = 'Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville: "Improved Training of Wasserstein GANs", NeurIPS 2017'
    ModelConfig = WGANGPConfig
