"""U-Net generator of pix2pix (Isola et al. 2017), module for module as junyanz builds it.

The state-dict keys and shapes equal junyanz/pytorch-CycleGAN-and-pix2pix's ``unet_128`` and
``unet_256``, so its checkpoints load with ``strict=True`` and ours load in its code.
"""
import math

import torch
from torch import nn

from trainer.nets.norm import norm_layer, uses_bias


class UnetSkipConnectionBlock(nn.Module):
    """One level of the U-Net: down, the inner levels, up, and the skip that joins them."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False,
                 innermost=False, norm="batch", use_dropout=False):
        super().__init__()
        self.outermost = outermost
        norm_fn, bias = norm_layer(norm), uses_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [downrelu, downconv, uprelu, upconv, norm_fn(outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [downrelu, downconv, norm_fn(inner_nc), submodule, uprelu, upconv, norm_fn(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` halvings: 7 for 128x128 (``unet_128``), 8 for 256x256 (``unet_256``).

    The innermost ``num_downs - 5`` levels have ``ngf * 8`` channels and dropout (the
    generator's noise in pix2pix).
    """

    def __init__(self, input_nc=3, output_nc=3, num_downs=8, ngf=64, norm="batch", use_dropout=False):
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"a U-Net needs at least 5 downsamplings (32 px), got {num_downs}")
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm=norm, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block,
                                             outermost=True, norm=norm)

    def forward(self, x):
        return self.model(x)


def unet_depth(image_size: int) -> int:
    """The number of downsamplings that takes ``image_size`` to 1x1 (7 at 128, 8 at 256)."""
    depth = int(round(math.log2(image_size)))
    if 2 ** depth != image_size or depth < 5:
        raise ValueError(f"a U-Net needs a power-of-two image size of at least 32, got {image_size}")
    return depth
