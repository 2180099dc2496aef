"""A toy method, defined in this one file: a plugin for the test that a method needs no other file
(issue 27). Load it with ``GAN_STUDIO_PLUGINS=toy_method`` and this folder on ``PYTHONPATH``.

Its generator is one 3x3 convolution that learns to give back its input (L1); its model has one
float control, ``strength``, that blends the generator's output with the input."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trainer.controls import Control
from trainer.data.folder import FolderDataset
from trainer.errors import ConfigError
from trainer.losses import l1_loss
from trainer.methods.base import REGULARISATION, Method, image_grid, side_effect_free
from trainer.nets import register as register_net
from trainer.registry import register
from trainer.translator import Translator, build_net


class OneConv(nn.Module):
    """(N, 3, H, W) in [-1, 1] -> the same shape: one convolution, tanh."""

    def __init__(self, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, kernel, padding=kernel // 2)

    def forward(self, x):
        return torch.tanh(self.conv(x))


register_net("toy_one_conv", OneConv)


@dataclass
class ToyConfig:
    kernel: int = 3
    lambda_l1: float = 1.0


class ToyTranslator(Translator):
    """The convolution over the image at the model's size, blended with the input by ``strength``."""

    controls = [Control("strength", "float", 1.0, "Strength", "0: the input; 1: the generator's output",
                        minimum=0.0, maximum=1.0)]

    def __init__(self, card, tensors, device="cpu"):
        super().__init__(card, tensors, device)
        self.G = build_net(card, tensors, "G", self.device).eval()

    def forward_array(self, image, strength=1.0):
        return self.through(image, lambda x: torch.lerp(x, self.G(x), float(strength)))

    def forward_tensor(self, x, tensors, strength=1.0):
        return torch.lerp(x, self.G(x), float(strength))


@register
class ToyMethod(Method):
    name = "toy_one_conv"
    task = "photo2photo"
    paper = "none: a test fixture"
    ModelConfig = ToyConfig
    Translator = ToyTranslator
    layouts = frozenset({"image folder"})
    discriminator_optimizers = ()
    loss_groups = {"G_L1": REGULARISATION}

    @classmethod
    def validate(cls, cfg):
        cls.check_common(cfg, "image folder layout", "/path/to/images")
        if cfg.model.kernel < 1 or cfg.model.kernel % 2 == 0:
            raise ConfigError(f"model.kernel = {cfg.model.kernel}: an odd number of at least 1")

    def __init__(self, cfg, device, amp_dtype=None, channels_last=False, any_rank=None):
        super().__init__(cfg, device, amp_dtype, channels_last, any_rank)
        self.G = self.add_net("G", OneConv(cfg.model.kernel))
        self.add_optimizer("G", self.G.parameters(), cfg.train.lr, (cfg.train.beta1, cfg.train.beta2))

    def dataset(self, phase="train", log=print):
        d = self.cfg.data
        return FolderDataset(self.image_root(log), phase, d.image_size, 0, d.flip, log=log)

    def train_step(self, batch):
        x = self.to_device(batch["image"])
        with self.autocast():
            losses = {"G_L1": l1_loss(self.train_nets["G"](x), x)}
        self.optimize("G", self.cfg.model.lambda_l1 * losses["G_L1"])
        self.end_step()
        return losses

    def sample(self, batch):
        x = self.to_device(batch["image"][:4])
        with side_effect_free(self.G), self.autocast():
            y = self.G(x).float()
        self._sample_outputs = y
        return image_grid([[a, b] for a, b in zip(x.float(), y)])

    def export(self):
        card = self.card({"G": {"name": "toy_one_conv", "args": {"kernel": self.cfg.model.kernel}}})
        return {f"G.{k}": v for k, v in self.G.state_dict().items()}, card
