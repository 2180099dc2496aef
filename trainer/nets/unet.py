"""U-Net generator of pix2pix (Isola et al. 2017), module for module as junyanz builds it.

The state-dict keys and shapes equal junyanz/pytorch-CycleGAN-and-pix2pix's ``unet_128`` and
``unet_256``, so its checkpoints load with ``strict=True`` and ours load in its code.

``upsample="resize"`` replaces each 4x4 stride-2 transposed convolution by a nearest-neighbour
doubling and a 3x3 convolution (Odena, Dumoulin & Olah 2016, "Deconvolution and Checkerboard
Artifacts"): even where the stride divides the kernel size, the learnt kernel's four output phases
rarely weigh alike, so a transposed convolution paints a grid of period 2 into the photo (plain to
see on the 26,000-step sketch2photo's balls; an evaluator reading 128 px took it for the texture of
a box). It is computed on the small map (trainer.nets.resize_conv: 16 multiply-adds where the
doubled map's convolution takes 36). Its keys differ (``...upconv`` becomes a two-module sequence), so it is our format only.

``nz`` > 0 takes a latent code as BicycleGAN's ``G_Unet_add_input`` does (Zhu et al. 2017): ``z``
spread over the image and stacked onto the input's channels; ``z = None`` means zeros, the prior's mean.
``region_nc`` > 0 also stacks a code *map* of that many channels (per-object codes,
:mod:`trainer.region_codes`); ``regions = None`` means zeros (no object has a code of its own). A
generator saved without those channels loads as the same function (:meth:`adapt_state`: the first
convolution's new input channels weigh 0).
"""
import math

import torch
from torch import nn

from trainer.nets.adapt import AdaptsState
from trainer.nets.norm import norm_layer, uses_bias
from trainer.nets.resize_conv import NearestResizeConv2d
from trainer.nets.small_conv import SmallMapConv2d, SmallMapConvTranspose2d

UPSAMPLES = ("transpose", "resize")


def up_conv(cin: int, cout: int, bias: bool, upsample: str) -> nn.Module:
    """The doubling of one U-Net level: junyanz's transposed convolution, or resize-convolution."""
    if upsample == "transpose":
        return SmallMapConvTranspose2d(cin, cout, kernel_size=4, stride=2, padding=1, bias=bias)
    if upsample == "resize":
        # the doubling happens inside the convolution (computed on the small map); the empty first
        # module keeps the keys of the nn.Sequential(nn.Upsample, nn.Conv2d) models were saved with
        return nn.Sequential(nn.Identity(), NearestResizeConv2d(cin, cout, bias=bias))
    raise ValueError(f"upsample must be one of {', '.join(UPSAMPLES)}, got {upsample!r}")


class UnetSkipConnectionBlock(nn.Module):
    """One level of the U-Net: down, the inner levels, up, and the skip that joins them."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False,
                 innermost=False, norm="batch", use_dropout=False, upsample="transpose"):
        super().__init__()
        self.outermost = outermost
        norm_fn, bias = norm_layer(norm), uses_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = SmallMapConv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        if outermost:
            upconv = up_conv(inner_nc * 2, outer_nc, True, upsample)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = up_conv(inner_nc, outer_nc, bias, upsample)
            layers = [downrelu, downconv, uprelu, upconv, norm_fn(outer_nc)]
        else:
            upconv = up_conv(inner_nc * 2, outer_nc, bias, upsample)
            layers = [downrelu, downconv, norm_fn(inner_nc), submodule, uprelu, upconv, norm_fn(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(AdaptsState, nn.Module):
    """U-Net with ``num_downs`` halvings: 7 for 128x128 (``unet_128``), 8 for 256x256 (``unet_256``).

    The innermost ``num_downs - 5`` levels have ``ngf * 8`` channels and dropout (the
    generator's noise in pix2pix).
    """

    def __init__(self, input_nc=3, output_nc=3, num_downs=8, ngf=64, norm="batch", use_dropout=False,
                 upsample="transpose", nz=0, region_nc=0):
        super().__init__()
        self.nz, self.region_nc = nz, region_nc
        self.size_multiple = 2 ** num_downs  # what H and W must be multiples of
        if num_downs < 5:
            raise ValueError(f"a U-Net needs at least 5 downsamplings (32 px), got {num_downs}")
        up = {"norm": norm, "upsample": upsample}
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, **up)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout, **up)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, **up)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, **up)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, **up)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc + nz + region_nc, submodule=block,
                                             outermost=True, **up)

    def adapt_state(self, state: dict) -> dict:
        """``state`` of a generator with fewer code channels (``region_nc`` 0) with the first
        convolution's weight widened by zero columns for the new ones: the same function."""
        out = dict(state)
        key = "model.model.0.weight"
        w, conv = state.get(key), self.model.model[0]
        if w is not None and w.dim() == 4 and w.shape[1] < conv.in_channels and w.shape[0] == conv.out_channels:
            out[key] = torch.cat([w, w.new_zeros(w.shape[0], conv.in_channels - w.shape[1], *w.shape[2:])], 1)
        return out

    def forward(self, x, z=None, regions=None):
        """``x`` (N, input_nc, H, W) in [-1, 1]; ``z`` (N, nz) or None; ``regions`` (N, region_nc,
        H, W) or None -> (N, output_nc, H, W) in [-1, 1]."""
        if self.nz:
            if z is None:
                z = x.new_zeros(x.size(0), self.nz)
            zmap = z.to(x.dtype).view(z.size(0), self.nz, 1, 1).expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, zmap], 1)
        if self.region_nc:
            regions = x.new_zeros(x.size(0), self.region_nc, *x.shape[2:]) if regions is None else regions.to(x.dtype)
            x = torch.cat([x, regions], 1)
        return self.model(x)


def unet_depth(image_size: int) -> int:
    """The number of downsamplings that takes ``image_size`` to 1x1 (7 at 128, 8 at 256)."""
    depth = int(round(math.log2(image_size)))
    if 2 ** depth != image_size or depth < 5:
        raise ValueError(f"a U-Net needs a power-of-two image size of at least 32, got {image_size}")
    return depth
