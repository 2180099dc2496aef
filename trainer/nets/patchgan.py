"""Discriminators of pix2pix: the PatchGAN (70x70 at n_layers=3), the 1x1 PixelGAN and an ImageGAN.

Keys and shapes equal junyanz's ``basic``/``n_layers`` (``NLayerDiscriminator``) and ``pixel``
(``PixelDiscriminator``). For pix2pix the input is the (input, output) pair concatenated on
channels, so ``input_nc`` is their sum.
"""
from torch import nn

from trainer.nets.norm import norm_layer, uses_bias


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
        seq += [nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=1, padding=1, bias=bias),
                norm_fn(ndf * mult), nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


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
