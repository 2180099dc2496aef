"""Convolutions that compute a small map as one matrix product.

oneDNN's convolution is built for feature maps; on a map of a few positions with a large kernel
(StarGAN's discriminator ends with a 1024 -> 2048, 4x4 convolution on 4x4 maps: 33.5M weights for
4 outputs per image; the U-Net's innermost levels at batch 1 are alike) it spends its time
rearranging the weight, above all in the backward pass. Written as im2col (``F.unfold``) and one
matrix product, or for a transposed convolution one product and col2im (``F.fold``), a layer
computes the same function (the same sums in another order: equal up to float rounding) several
times faster there, with first and second derivatives (the gradient penalty's double backward)
through ordinary ops. The product is used while gradients are recorded (training) on a map with at
most half as many positions (batch x height x width) as the layer has output channels (input
channels for a transposed convolution): measured in docs/performance.md, "Training step: profile
and changes". Otherwise the ordinary convolution runs; the modules' parameters and state-dict keys
are ``nn.Conv2d``'s and ``nn.ConvTranspose2d``'s.
"""
import torch
import torch.nn.functional as F
from torch import nn


def _plain(m: nn.Module, x: torch.Tensor) -> bool:
    """Whether the ordinary convolution runs: always without gradients (inference, ONNX export,
    previews: the slow part the product saves is the backward pass) and when tracing."""
    return (not torch.is_grad_enabled() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str) or x.dim() != 4)


class SmallMapConv2d(nn.Conv2d):
    """``nn.Conv2d`` (zero padding, no groups for the product) whose output map of at most
    ``out_channels / 2`` positions is computed as patches x weight: (N, C, H, W) -> (N, out, Ho, Wo)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _plain(self, x):
            return super().forward(x)
        n, _, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        ho, wo = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if 2 * n * ho * wo > self.out_channels:
            return super().forward(x)
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)  # (n, C*kh*kw, ho*wo)
        out = cols.transpose(1, 2) @ self.weight.reshape(self.out_channels, -1).t()  # (n, ho*wo, out)
        if self.bias is not None:
            out = out + self.bias.to(out.dtype)
        return out.transpose(1, 2).reshape(n, self.out_channels, ho, wo)


class SmallMapConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (zero padding, no groups, no output_size argument for the product)
    whose input map of at most ``in_channels / 2`` positions is computed as weight x input and
    col2im: (N, C, H, W) -> (N, out, Ho, Wo)."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if _plain(self, x) or output_size is not None:
            return super().forward(x, output_size)
        n, c, h, w = x.shape
        if 2 * n * h * w > self.in_channels:
            return super().forward(x)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        (oph, opw) = self.output_padding
        ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
        wo = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
        cols = self.weight.reshape(c, -1).t() @ x.reshape(n, c, h * w)  # (n, out*kh*kw, h*w)
        out = F.fold(cols, (ho, wo), self.kernel_size, self.dilation, self.padding, self.stride)
        if self.bias is not None:
            out = out + self.bias.to(out.dtype).view(1, -1, 1, 1)
        return out
