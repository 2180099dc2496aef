"""StarGAN's networks (Choi et al. 2018), module for module as yunjey/stargan builds them.

The generator takes the target domain vector tiled over the image as extra input channels;
with ``attention`` it also predicts a one-channel attention mask A in [0, 1] and composes
``A * x + (1 - A) * C`` from the input x and its colour output C (GANimation, Pumarola et al.
2018), so pixels an edit does not concern can be kept exactly. Its instance norm has affine parameters and tracks running statistics (which are not meant
for inference: the generator is never put in eval mode). The discriminator has a PatchGAN
source head and a domain-classification head whose kernel covers the whole feature map.
"""
import torch
from torch import nn

from trainer.nets.small_conv import SmallMapConv2d
from trainer.nets.winograd import WinogradConv2d


def _inorm(dim):
    return nn.InstanceNorm2d(dim, affine=True, track_running_stats=True)


class ResidualBlock(nn.Module):
    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.main = nn.Sequential(
            WinogradConv2d(dim_in, dim_out, kernel_size=3, stride=1, padding=1, bias=False), _inorm(dim_out),
            nn.ReLU(inplace=True),
            WinogradConv2d(dim_out, dim_out, kernel_size=3, stride=1, padding=1, bias=False), _inorm(dim_out))

    def forward(self, x):
        return x + self.main(x)


class StarGenerator(nn.Module):
    """G(x, c): x (N, 3, H, W) in [-1, 1] with H, W multiples of 4, c (N, c_dim) domain labels in
    [0, 1] -> (N, 3, H, W) in [-1, 1]. With ``attention`` (GANimation's attention mask) the
    output is ``A * x + (1 - A) * C``; :attr:`last_attention` keeps A (N, 1, H, W) of the last
    call for the attention loss. Without it the modules and keys are yunjey/stargan's."""

    size_multiple = 4  # two stride-2 downsamplings
    min_size = 8  # the innermost maps at least 2 px a side: instance norm needs two values

    def __init__(self, conv_dim=64, c_dim=5, repeat_num=6, attention=False):
        super().__init__()
        layers = [nn.Conv2d(3 + c_dim, conv_dim, kernel_size=7, stride=1, padding=3, bias=False), _inorm(conv_dim),
                  nn.ReLU(inplace=True)]
        dim = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(dim, dim * 2, kernel_size=4, stride=2, padding=1, bias=False), _inorm(dim * 2),
                       nn.ReLU(inplace=True)]
            dim *= 2
        layers += [ResidualBlock(dim, dim) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(dim, dim // 2, kernel_size=4, stride=2, padding=1, bias=False),
                       _inorm(dim // 2), nn.ReLU(inplace=True)]
            dim //= 2
        layers += [nn.Conv2d(dim, 3, kernel_size=7, stride=1, padding=3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.attention = nn.Conv2d(dim, 1, kernel_size=7, stride=1, padding=3, bias=True) if attention else None
        if attention:  # start near "keep the input": the mask opens where the losses ask for an edit
            nn.init.constant_(self.attention.bias, 2.0)
        self.last_attention = None

    def forward(self, x, c):
        c = c.to(x.dtype).view(c.size(0), c.size(1), 1, 1).expand(-1, -1, x.size(2), x.size(3))
        h = torch.cat([x, c], dim=1)
        if self.attention is None:
            return self.main(h)
        h = self.main[:-2](h)
        colour = torch.tanh(self.main[-2](h))
        a = torch.sigmoid(self.attention(h))
        self.last_attention = a
        return a * x + (1 - a) * colour


class StarDiscriminator(nn.Module):
    def __init__(self, image_size=128, conv_dim=64, c_dim=5, repeat_num=6):
        super().__init__()
        layers = [nn.Conv2d(3, conv_dim, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
        dim = conv_dim
        for _ in range(1, repeat_num):  # the last ones see maps of 8x8 and 4x4 at 128 px: trainer.nets.small_conv
            layers += [SmallMapConv2d(dim, dim * 2, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.01)]
            dim *= 2
        kernel = image_size // 2 ** repeat_num
        if kernel < 1:
            raise ValueError(f"image_size {image_size} is too small for repeat_num {repeat_num}")
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(dim, 1, kernel_size=3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(dim, c_dim, kernel_size=kernel, bias=False)

    def forward(self, x):
        h = self.main(x)
        return self.conv1(h), self.conv2(h).view(h.size(0), -1)
