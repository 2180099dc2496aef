"""StyleGAN2 generator (Karras et al. 2020) in plain PyTorch, module for module as
rosinality/stylegan2-pytorch builds it, so its checkpoints load with ``strict=True``.

Mapping network (pixel norm, ``n_mlp`` equalised linear layers with lr multiplier 0.01), learned
constant 4x4 input, two modulated (and demodulated) 3x3 convolutions per resolution, a to-RGB
layer per resolution summed through upsampled skips, per-layer noise with learned strength.
Equalised learning rate throughout. No custom CUDA extension: upfirdn2d is a depthwise conv.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainer.nets.inference_cache import derived, inference_only
from trainer.nets.small_conv import conv_transpose_product

CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}


def channels(channel_multiplier=2, channel_max=512, channel_base=0) -> dict[int, int]:
    """Channels per resolution: rosinality's table (times the multiplier from 64 px on), or with
    ``channel_base`` StyleGAN2-ADA's rule ``channel_base // resolution``; capped at ``channel_max``."""
    if channel_base:
        return {r: max(1, min(channel_max, channel_base // r)) for r in CHANNELS}
    return {r: min(channel_max, c * (channel_multiplier if r >= 64 else 1)) for r, c in CHANNELS.items()}


def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
    """Upsample by zero insertion, pad, FIR-filter (depthwise), downsample."""
    b, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(b, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(b, c, h * up, w * up)
    p0, p1 = pad
    padding = p0 if p0 == p1 and p0 > 0 else 0  # zeros the convolution adds itself (no padded copy)
    if not padding:
        x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
        x = x[:, :, max(-p0, 0): x.shape[2] - max(-p1, 0), max(-p0, 0): x.shape[3] - max(-p1, 0)]
    kh, kw = kernel.shape
    k = torch.flip(kernel, [0, 1]).to(x.dtype).view(1, 1, kh, kw).expand(c, 1, kh, kw)
    x = F.conv2d(x, k, padding=padding, groups=c)
    return x[:, :, ::down, ::down]


def make_kernel(k):
    k = torch.tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def fused_leaky_relu(x, bias, negative_slope=0.2, scale=2 ** 0.5):
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return F.leaky_relu(x + bias.view(shape).to(x.dtype), negative_slope) * scale


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(torch.mean(x ** 2, dim=1, keepdim=True) + 1e-8)


class Upsample(nn.Module):
    def __init__(self, kernel, factor=2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * factor ** 2)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class Blur(nn.Module):
    def __init__(self, kernel, pad, upsample_factor=1):
        super().__init__()
        kernel = make_kernel(kernel)
        if upsample_factor > 1:
            kernel = kernel * upsample_factor ** 2
        self.register_buffer("kernel", kernel)
        self.pad = pad

    def forward(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad)


class EqualLinear(nn.Module):
    def __init__(self, in_dim, out_dim, bias=True, bias_init=0.0, lr_mul=1.0, activation=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.zeros(out_dim).fill_(bias_init)) if bias else None
        self.activation, self.scale, self.lr_mul = activation, 1 / math.sqrt(in_dim) * lr_mul, lr_mul

    def forward(self, x):
        weight = derived(self, "scaled", lambda: self.weight * self.scale)  # once on an inference-only net
        if self.activation:
            return fused_leaky_relu(F.linear(x, weight), self.bias * self.lr_mul)
        return F.linear(x, weight, None if self.bias is None else self.bias * self.lr_mul)


class ModulatedConv2d(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, demodulate=True, upsample=False,
                 blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.upsample, self.demodulate = upsample, demodulate
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)

    def forward(self, x, style):
        if x.shape[0] > 1 and self.grouped is not True:
            return self.forward_shared(x, style)
        return self.forward_grouped(x, style)

    grouped = None  # None: the per-sample (grouped) weights for batch 1, the shared weight otherwise

    def forward_shared(self, x, style):
        """Modulate the input instead of the weight (StyleGAN2's ``fused_modconv=False``): one
        convolution with the shared weight for the whole batch, demodulated afterwards. The same
        function as the grouped form, and several times faster for batches on the CPU."""
        b, c = x.shape[:2]
        style = self.modulation(style)
        x = x * style.to(x.dtype).view(b, c, 1, 1)
        if self.upsample:
            out = self.blur(self.transposed_convolution(x))
        else:
            out = F.conv2d(x, self.scaled_weight().to(x.dtype), padding=self.padding)
        if self.demodulate:
            out = out * self.demodulation(style).to(out.dtype).view(b, self.out_channel, 1, 1)
        return out

    def transposed_convolution(self, x: torch.Tensor) -> torch.Tensor:
        """The upsampling layer's stride-2 transposed convolution with the shared weight: (b, in, h, w)
        -> (b, out, 2h + 1, 2w + 1). On an inference-only net in float32, without gradients, one
        matrix product and col2im with the matrix made once (trainer.nets.small_conv: 1.4x faster
        than oneDNN's transposed convolution at 32 x 32 x 512, whose output it copies once more)."""
        if (inference_only(self) and x.dtype == torch.float32 and not torch.is_grad_enabled()
                and not torch.is_autocast_enabled(x.device.type)):
            matrix = derived(self, "transposed", lambda: self.scaled_weight().transpose(0, 1)
                             .reshape(self.in_channel, -1).t().contiguous())  # (out * k * k, in)
            return conv_transpose_product(x, matrix, self.kernel_size, 2)
        return F.conv_transpose2d(x, self.scaled_weight().transpose(0, 1).to(x.dtype), padding=0, stride=2)

    def scaled_weight(self) -> torch.Tensor:
        """The equalised weight (out, in, k, k): made once on an inference-only net
        (trainer.nets.inference_cache), at each call otherwise."""
        return derived(self, "scaled", lambda: self.scale * self.weight[0])

    def demodulation(self, style: torch.Tensor) -> torch.Tensor:
        """StyleGAN2's demodulation factors (b, out), float32, for the modulation ``style`` (b, in):
        1 / sqrt(sum over in, k of (w s)^2 + 1e-8), computed as s^2 @ (sum over k of w^2), so the
        (b, out, in, k, k) product is never formed (it and its backward were 40 % of a 64 px training
        step on the CPU); the (in, out) sums made once on an inference-only net."""
        squares = derived(self, "squares", lambda: self.scaled_weight().float().pow(2).sum([2, 3]).t())
        return torch.rsqrt(style.float().pow(2) @ squares + 1e-8)

    def forward_grouped(self, x, style):
        b, c, h, w = x.shape
        style = self.modulation(style)
        weight = self.scaled_weight()[None] * style.view(b, 1, c, 1, 1)
        if self.demodulate:
            weight = weight * self.demodulation(style).to(weight.dtype).view(b, self.out_channel, 1, 1, 1)
        k = self.kernel_size
        x = x.reshape(1, b * c, h, w)
        weight = weight.to(x.dtype)
        if self.upsample:
            weight = weight.view(b, self.out_channel, c, k, k).transpose(1, 2).reshape(b * c, self.out_channel, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=b)
            return self.blur(out.view(b, self.out_channel, out.shape[2], out.shape[3]))
        out = F.conv2d(x, weight.reshape(b * self.out_channel, c, k, k), padding=self.padding, groups=b)
        return out.view(b, self.out_channel, out.shape[2], out.shape[3])


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image, noise=None):
        if noise is None:
            noise = image.new_empty(image.shape[0], 1, image.shape[2], image.shape[3]).normal_()
        return image + self.weight.to(image.dtype) * noise.to(image.dtype)


class ConstantInput(nn.Module):
    def __init__(self, channel, size=4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int):
        return self.input.repeat(batch, 1, 1, 1)


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, x):
        return fused_leaky_relu(x, self.bias)


class StyledConv(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, upsample=False, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, upsample=upsample,
                                    blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x, style, noise=None):
        return self.activate(self.noise(self.conv(x, style), noise=noise))


class ToRGB(nn.Module):
    def __init__(self, in_channel, style_dim, upsample=True, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias.to(x.dtype)
        if skip is not None:
            out = out + self.upsample(skip)
        return out


def rgb_resolutions(size: int) -> list[int]:
    """The resolution (px) of each ToRGB output of a ``size`` px generator: 4, 8, ..., size."""
    return [2 ** r for r in range(2, int(math.log2(size)) + 1)]


class StyleGenerator(nn.Module):
    """``forward(w)`` takes per-layer latents w of shape (batch, n_latent, style_dim) and per-layer
    noise (a list, None entries drawn at random, or ``noise_strength`` times the given maps).

    ``output_skips_from`` (px, a power of two from 4 to ``size``; default 4, StyleGAN2's output
    skips, Karras et al. 2020, figure 7b): the lowest resolution whose ToRGB adds to the image.
    Above 4 the ToRGBs below it are left out (``size``: one output, as the original StyleGAN); their
    weights stay zero, so rosinality's Generator, which adds every ToRGB, draws the same image.
    Raises ValueError for another value."""

    def __init__(self, size=256, style_dim=512, n_mlp=8, channel_multiplier=2, lr_mlp=0.01, channel_max=512,
                 blur_kernel=(1, 3, 3, 1), channel_base=0, output_skips_from=4):
        super().__init__()
        self.size, self.style_dim = size, style_dim
        self.log_size = int(math.log2(size))
        if 2 ** self.log_size != size or size < 8:
            raise ValueError(f"StyleGAN needs a power-of-two size of at least 8, got {size}")
        if type(output_skips_from) is not int or output_skips_from not in rgb_resolutions(size):
            raise ValueError(f"output_skips_from = {output_skips_from!r}: a power of two (an int) from 4 to the "
                             f"size {size}")
        self.output_skips_from = output_skips_from
        ch = channels(channel_multiplier, channel_max, channel_base)
        self.channels = ch
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp,
                                                              activation="fused_lrelu") for _ in range(n_mlp)])
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(ch[4], style_dim, upsample=False)
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.convs, self.upsamples, self.to_rgbs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.noises = nn.Module()
        for i in range(self.num_layers):
            res = (i + 5) // 2
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, 2 ** res, 2 ** res))
        in_ch = ch[4]
        for i in range(3, self.log_size + 1):
            out_ch = ch[2 ** i]
            self.convs.append(StyledConv(in_ch, out_ch, 3, style_dim, upsample=True, blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out_ch, out_ch, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_ch, style_dim))
            in_ch = out_ch
        self.n_latent = self.log_size * 2 - 2
        for name in self.left_out_to_rgbs():  # never called: zeros, so a reference synthesis that adds it adds nothing
            to_rgb = self.get_submodule(name)
            nn.init.zeros_(to_rgb.conv.weight)
            nn.init.zeros_(to_rgb.bias)
            for p in to_rgb.parameters():  # and not trained (DDP requires every trainable weight to get a gradient)
                p.requires_grad_(False)
                p.frozen = True  # trainer.methods.base.set_requires_grad leaves it off

    def left_out_to_rgbs(self) -> list[str]:
        """The module names of the ToRGBs ``output_skips_from`` leaves out ("to_rgb1", "to_rgbs.0", ...)."""
        names = ["to_rgb1"] + [f"to_rgbs.{i}" for i in range(len(self.to_rgbs))]
        return [n for n, r in zip(names, rgb_resolutions(self.size)) if r < self.output_skips_from]

    def layer_resolutions(self) -> list[int]:
        """The resolution each of the n_latent style inputs controls: 4, 4, 8, 8, 16, 16, ... (a style
        that drives a ToRGB and the next resolution's first convolution is named by its ToRGB).
        With ``output_skips_from`` above 4 a style whose ToRGB is left out drives only that
        convolution and is named by it: skips from 16 give 4, 8, 8, 16, 16, 16, 32, ..."""
        res = [4, 4]
        for r in range(3, self.log_size + 1):
            res += [2 ** r] * 2
        res = res[:self.n_latent]
        return [r * 2 if i % 2 and r < self.output_skips_from else r for i, r in enumerate(res)]

    def coarse_crossover(self, coarse_px: int = 8) -> int:
        """The crossover at the coarse/middle boundary: the first style index whose
        :meth:`layer_resolutions` entry is above ``coarse_px`` (n_latent when none is)."""
        res = self.layer_resolutions()
        return next((i for i, r in enumerate(res) if r > coarse_px), len(res))

    def mapping(self, z):
        return self.style(z)

    def mean_latent(self, n=4096, generator=None):
        z = torch.randn(n, self.style_dim, generator=generator, device=self.input.input.device)
        return self.style(z).mean(0, keepdim=True)

    def const_noise(self) -> list[torch.Tensor]:
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    def synthesis(self, w, noise=None):
        """w: (batch, n_latent, style_dim); noise: a list of num_layers maps or None entries."""
        noise = noise if noise is not None else [None] * self.num_layers
        out = self.conv1(self.input(w.shape[0]), w[:, 0], noise=noise[0])
        skip = self.to_rgb1(out, w[:, 1]) if self.output_skips_from <= 4 else None
        i = 1
        for conv1, conv2, n1, n2, to_rgb, res in zip(self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2],
                                                      self.to_rgbs, rgb_resolutions(self.size)[1:]):
            out = conv1(out, w[:, i], noise=n1)
            out = conv2(out, w[:, i + 1], noise=n2)
            if res >= self.output_skips_from:
                skip = to_rgb(out, w[:, i + 2], skip)
            i += 2
        return skip

    def forward(self, styles, inject_index=None, truncation=1.0, truncation_latent=None, input_is_latent=False,
                noise=None, randomize_noise=True, return_latents=False):
        """rosinality's interface: a list of one or two z (or w) batches, mixed at ``inject_index``;
        with ``return_latents`` also the per-layer w (batch, n_latent, style_dim)."""
        if not input_is_latent:
            styles = [self.style(s) for s in styles]
        if noise is None and not randomize_noise:
            noise = self.const_noise()
        if truncation < 1 and truncation_latent is not None:
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        if len(styles) < 2:
            w = styles[0].unsqueeze(1).repeat(1, self.n_latent, 1) if styles[0].ndim < 3 else styles[0]
        else:
            k = inject_index if inject_index is not None else int(torch.randint(1, self.n_latent, ()).item())
            w = torch.cat([styles[0].unsqueeze(1).repeat(1, k, 1),
                           styles[1].unsqueeze(1).repeat(1, self.n_latent - k, 1)], 1)
        image = self.synthesis(w, noise)
        return (image, w) if return_latents else image
