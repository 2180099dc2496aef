"""Discriminators of pix2pix: the PatchGAN (70x70 at n_layers=3), the 1x1 PixelGAN, an ImageGAN,
and pix2pixHD's multi-scale PatchGAN.

Keys and shapes equal junyanz's ``basic``/``n_layers`` (``NLayerDiscriminator``) and ``pixel``
(``PixelDiscriminator``). For pix2pix the input is the (input, output) pair concatenated on
channels, so ``input_nc`` is their sum.
"""
import torch
from torch import nn

from trainer.nets.norm import norm_layer, uses_bias
from trainer.nets.winograd import WinogradConv2d


class NLayerDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` stride-2 4x4 convolutions, then two stride-1 ones; one logit per patch."""

    def __init__(self, input_nc, ndf=64, n_layers=3, norm="batch"):
        super().__init__()
        norm_fn, bias = norm_layer(norm), uses_bias(norm)
        seq = [nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=2, padding=1, bias=bias),
                    norm_fn(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        seq += [WinogradConv2d(ndf * prev, ndf * mult, kernel_size=4, stride=1, padding=1, bias=bias),
                norm_fn(ndf * mult), nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x, features: bool = False):
        """Logits per patch; with ``features``, ``[[activation after each LeakyReLU, ..., logits]]``
        (one scale), what feature matching compares."""
        if not features:
            return self.model(x)
        out = []
        for layer in self.model:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                out.append(x)
        return [out + [x]]


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD (Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with
    Conditional GANs", 2018): ``num_D`` PatchGANs of one architecture on the image at full, half,
    quarter... resolution (3x3 average pooling, stride 2). The coarser ones judge a large image's
    global structure, which one 70x70 patch sees only in part. (On sketch2photo at 128 px they did
    not help, and three scales collapsed: README.)

    Returns the logits of every scale, finest first; with ``features`` each scale's activations
    followed by its logits."""

    def __init__(self, input_nc, ndf=64, n_layers=3, norm="batch", num_D=2):
        super().__init__()
        if num_D < 1:
            raise ValueError(f"num_D must be 1 or more, got {num_D}")
        self.scales = nn.ModuleList(NLayerDiscriminator(input_nc, ndf, n_layers, norm) for _ in range(num_D))
        self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor, features: bool = False) -> list:
        out = []
        for k, d in enumerate(self.scales):
            if k:
                x = self.down(x)
            out += d(x, features=True) if features else [d(x)]
        return out


class PixelDiscriminator(nn.Module):
    """PixelGAN: 1x1 convolutions, a real/fake decision per pixel (colour statistics only)."""

    def __init__(self, input_nc, ndf=64, norm="batch"):
        super().__init__()
        norm_fn, bias = norm_layer(norm), uses_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, kernel_size=1, stride=1, padding=0), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, stride=1, padding=0, bias=bias),
            norm_fn(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, kernel_size=1, stride=1, padding=0, bias=bias))

    def forward(self, x):
        return self.net(x)


def receptive_field(n_layers: int) -> int:
    """Receptive field of an ``n_layers`` PatchGAN: 16, 34, 70, 142, 286, ..."""
    rf = 1
    for stride in [1, 1] + [2] * n_layers:  # walking back from the output
        rf = (rf - 1) * stride + 4
    return rf


def patch_grid(image_size: int, n_layers: int) -> int:
    """Side of the logit map an ``n_layers`` PatchGAN gives for an ``image_size`` input (0: none)."""
    for _ in range(n_layers):
        image_size //= 2
    return max(image_size - 2, 0)  # the two 4x4 stride-1 convolutions, padding 1


class ImageDiscriminator(nn.Module):
    """ImageGAN: a PatchGAN deep enough that one patch covers the whole image, averaged to one logit."""

    def __init__(self, input_nc, image_size, ndf=64, norm="batch"):
        super().__init__()
        n_layers = 1
        while receptive_field(n_layers) < image_size:
            n_layers += 1
        self.patch = NLayerDiscriminator(input_nc, ndf=ndf, n_layers=n_layers, norm=norm)

    def forward(self, x):
        return self.patch(x).mean(dim=(2, 3), keepdim=True)
