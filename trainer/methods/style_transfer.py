"""Fast neural style transfer (Johnson et al. 2016): an image transformation network trained on a
folder of content photos against one style image with perceptual losses from a frozen VGG16:
feature reconstruction at ``content_layer`` (relu2_2), style reconstruction with Gram matrices at
relu1_2, relu2_2, relu3_3, relu4_3, and total variation. Needs ``model.vgg_weights`` and
``model.style_image``.

Data: a folder of content photos (an image folder, or an aligned folder); any ``data.image_size``.
The exported model stylises a photo at its own resolution (up to a largest side)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from trainer.controls import Control
from trainer.data.folder import FolderDataset
from trainer.data.imageio import open_image
from trainer.data.transforms import to_tensor, to_uint8
from trainer.errors import ConfigError, ImageError, VGGWeightsError
from trainer.exporters.onnx_graphs import ImageGraph, image_graph
from trainer.images import image_grid
from trainer.losses import feature_reconstruction_loss, gram_matrix, style_reconstruction_loss, total_variation_loss
from trainer.methods.base import REGULARISATION, Method, side_effect_free
from trainer.nets import build
from trainer.nets.vgg import VGGFeatures, require_weights
from trainer.translator import Translator, build_net

JOHNSON_STYLE_LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]


@dataclass
class StyleTransferConfig:
    """Fast style transfer's ``[model]`` settings: the style image and its size, the transformation
    network's width and blocks, the VGG (its weights file) and layers, and the loss weights."""
    style_image: str = ""
    style_size: int = 0  # 0: the style image at the training image size
    ngf: int = 32
    n_blocks: int = 5
    vgg: str = "vgg16"
    vgg_weights: str = ""
    content_layer: str = "relu2_2"
    style_layers: list = field(default_factory=lambda: list(JOHNSON_STYLE_LAYERS))
    lambda_content: float = 1e5
    lambda_style: float = 1e10
    lambda_tv: float = 0.0


class StyleTransferTranslator(Translator):
    """Fast style transfer: any photo stylised at its own resolution (up to ``max_side``)."""

    controls = [
        Control("max_side", "int", 1024, "Largest side", "larger photos are stylised at this size, then "
                "scaled back", minimum=64, maximum=4096),
    ]

    def __init__(self, card, tensors, device="cpu"):
        super().__init__(card, tensors, device)
        self.G = build_net(card, tensors, "G", self.device).eval()

    def forward_array(self, image, max_side=1024):
        work = image
        if max(image.size) > int(max_side):
            k = int(max_side) / max(image.size)
            work = image.resize((max(1, round(image.width * k)), max(1, round(image.height * k))), Image.BICUBIC)
        out = to_uint8(self.G(to_tensor(work)[None].to(self.device))[0])
        if work.size != image.size:
            out = np.asarray(Image.fromarray(out).resize(image.size, Image.BICUBIC))
        return out

    def forward_tensor(self, x, tensors, max_side=1024):
        """At x's own size (``max_side`` is for :meth:`run`, which shrinks large photos)."""
        return self.G(x)

    def onnx_graphs(self, latent="z", mode=None, noise_mode="stored", noise_seed=0):
        """One graph ``image`` -> ``output`` at the image's size; H and W multiples of 4."""
        return [image_graph("", ImageGraph(copy.deepcopy(self.G).eval()), 3, 4, self.image_size, {})]


class FastStyleTransfer(Method):
    name = "fast_style"
    task = "stylize"
    paper = ('Johnson, Alahi, Fei-Fei: "Perceptual Losses for Real-Time Style Transfer and Super-Resolution", '
             'ECCV 2016')
    ModelConfig = StyleTransferConfig
    Translator = StyleTransferTranslator
    layouts = frozenset({"image folder", "aligned"})
    discriminator_optimizers = ()
    loss_groups = {"G_content": REGULARISATION, "G_style": REGULARISATION, "G_tv": REGULARISATION}

    @classmethod
    def validate(cls, cfg):
        m = cfg.model
        cls.check_common(cfg, "a folder of content photos", "/path/to/photos")
        if not m.style_image:
            raise ConfigError("model.style_image is empty: set it to the style image, "
                              "e.g. --set model.style_image=/path/to/starry-night.jpg")
        try:
            open_image(Path(m.style_image).expanduser())
        except ImageError as e:
            raise ConfigError(f"model.style_image: {e}") from None
        try:
            require_weights(m.vgg, m.vgg_weights)
        except VGGWeightsError as e:
            raise ConfigError(str(e)) from None

    def __init__(self, cfg, device, amp_dtype=None, channels_last=False, any_rank=None):
        super().__init__(cfg, device, amp_dtype, channels_last, any_rank)
        m, t = cfg.model, cfg.train
        self.G = self.add_net("G", build("transformer_net", ngf=m.ngf, n_blocks=m.n_blocks))
        self.add_optimizer("G", self.G.parameters(), t.lr, (t.beta1, t.beta2))
        layers = sorted(set(m.style_layers) | {m.content_layer})
        self.vgg = VGGFeatures(m.vgg, m.vgg_weights, layers).to(device)
        size = m.style_size or cfg.data.image_size
        style = open_image(Path(m.style_image).expanduser())
        scale = size / min(style.size)
        style = style.resize((max(1, round(style.width * scale)), max(1, round(style.height * scale))))
        with torch.no_grad():
            features = self.vgg(to_tensor(style)[None].to(device))
        self.style_grams = {k: gram_matrix(features[k]) for k in m.style_layers}

    def dataset(self, phase="train", log=print):
        d = self.cfg.data
        return FolderDataset(self.image_root(log), phase, d.image_size, 0, d.flip, log=log)

    def train_step(self, batch):
        m = self.cfg.model
        x = self.to_device(batch["image"])
        losses = {}
        with self.autocast():
            y = self.train_nets["G"](x)
            features = self.vgg(y)
            with torch.no_grad():
                target = self.vgg(x)[m.content_layer]
            losses["G_content"] = feature_reconstruction_loss(features[m.content_layer], target)
            losses["G_style"] = style_reconstruction_loss({k: features[k] for k in m.style_layers},
                                                          self.style_grams)
            losses["G_tv"] = total_variation_loss(y)
        self.optimize("G", m.lambda_content * losses["G_content"] + m.lambda_style * losses["G_style"]
                      + m.lambda_tv * losses["G_tv"])
        self.end_step()
        return losses

    def sample(self, batch):
        """Rows of content | stylised."""
        x = self.to_device(batch["image"][:4])
        with side_effect_free(self.G), self.autocast():
            y = self.G(x).float()
        return image_grid([[a, b] for a, b in zip(x.float(), y)])

    def export(self):
        m = self.cfg.model
        card = self.card({"G": {"name": "transformer_net", "args": {"ngf": m.ngf, "n_blocks": m.n_blocks}}},
                         style_image=Path(m.style_image).name)
        return {f"G.{k}": v for k, v in self.G.state_dict().items()}, card
