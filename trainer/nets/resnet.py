"""ResNet generator of CycleGAN (Zhu et al. 2017, after Johnson et al. 2016), module for module as
junyanz builds it (``resnet_9blocks``, ``resnet_6blocks``): reflection padding, 7x7 stem, two
stride-2 downsamplings, residual blocks, two transposed-conv upsamplings, tanh.

``residual=True`` learns a residual image instead (Shen & Liu 2017, "Learning Residual Images for
Face Attribute Manipulation"): the output is the input plus the network's tanh output, clamped to
[-1, 1], and :meth:`ResnetGenerator.start_at_identity` zeroes the last convolution so that training
starts from output = input. Instance normalisation removes each image's mean colour at every layer,
so a plain generator must rebuild absolute colours from nothing; the residual one keeps them."""
from torch import nn

from trainer.nets.norm import norm_layer, uses_bias
from trainer.nets.padding import ReflectionPad2d, ReplicationPad2d
from trainer.nets.winograd import WinogradConv2d


class ResnetBlock(nn.Module):
    """x + conv-norm-relu-(dropout)-conv-norm(x); dropout shifts the second conv from index 5 to 6."""

    def __init__(self, dim, padding_type="reflect", norm="instance", use_dropout=False):
        super().__init__()
        norm_fn, bias = norm_layer(norm), uses_bias(norm)
        pads = {"reflect": ReflectionPad2d, "replicate": ReplicationPad2d}
        if padding_type not in (*pads, "zero"):
            raise ValueError(f"padding_type {padding_type!r}: choose reflect, replicate or zero")
        p = 1 if padding_type == "zero" else 0
        block = [pads[padding_type](1)] if p == 0 else []
        block += [WinogradConv2d(dim, dim, kernel_size=3, padding=p, bias=bias), norm_fn(dim), nn.ReLU(True)]
        if use_dropout:
            block.append(nn.Dropout(0.5))
        block += [pads[padding_type](1)] if p == 0 else []
        block += [WinogradConv2d(dim, dim, kernel_size=3, padding=p, bias=bias), norm_fn(dim)]
        self.conv_block = nn.Sequential(*block)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    size_multiple = 4  # two stride-2 downsamplings: H and W multiples of 4
    min_size = 8  # the innermost maps at least 2 px a side: the blocks' reflection pads need them

    def __init__(self, input_nc=3, output_nc=3, ngf=64, norm="instance", use_dropout=False, n_blocks=9,
                 padding_type="reflect", residual=False):
        super().__init__()
        if residual and input_nc != output_nc:
            raise ValueError(f"a residual generator adds its output to its input: input_nc {input_nc} "
                             f"must equal output_nc {output_nc}")
        self.residual = residual
        norm_fn, bias = norm_layer(norm), uses_bias(norm)
        model = [ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=bias),
                 norm_fn(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2 ** i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=bias),
                      norm_fn(ngf * mult * 2), nn.ReLU(True)]
        model += [ResnetBlock(ngf * 4, padding_type, norm, use_dropout) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, kernel_size=3, stride=2, padding=1,
                                         output_padding=1, bias=bias),
                      norm_fn(ngf * mult // 2), nn.ReLU(True)]
        model += [ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        if self.residual:
            return (x + self.model(x)).clamp(-1, 1)
        return self.model(x)

    def start_at_identity(self) -> "ResnetGenerator":
        """Zero the last convolution: with ``residual`` the generator then returns its input."""
        last = self.model[-2]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        return self
