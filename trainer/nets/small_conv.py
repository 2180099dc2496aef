"""Convolutions that compute a small map as one matrix product.

oneDNN's convolution is built for feature maps; on a map of a few positions with a large kernel
(StarGAN's discriminator ends with a 1024 -> 2048, 4x4 convolution on 4x4 maps: 33.5M weights for 4
outputs per image; the U-Net's innermost levels at batch 1 are alike) it spends its time rearranging
the weight, above all in the backward pass. Written as im2col (``F.unfold``) and one matrix product,
or for a transposed convolution one product and col2im (``F.fold``), a layer computes the same
function (the same sums in another order: equal up to float rounding) several times faster there,
with first and second derivatives (the gradient penalty's double backward) through ordinary ops. The
product is used on a map with at most half as many positions (batch x height x width) as the layer
has output channels (input channels for a transposed convolution): measured in docs/performance.md,
"Training step: profile and changes". Without gradients (inference) the same holds in float32 (a 256
px U-Net's forward 1.4x faster: its inner levels are weight-bound); in reduced precision only on
maps of at most an eighth (oneDNN's bf16 kernels are faster on more), with the weight's matrix made
once on a net loaded for inference (trainer.nets.inference_cache). Otherwise the ordinary
convolution runs, and always while tracing or exporting to ONNX; the modules' parameters and state-
dict keys are ``nn.Conv2d``'s and ``nn.ConvTranspose2d``'s.
"""
import torch
import torch.nn.functional as F
from torch import nn

from trainer.nets.inference_cache import derived, inference_only


def _plain(m: nn.Module, x: torch.Tensor) -> bool:
    """Whether the ordinary convolution runs whatever the map: when tracing or exporting to ONNX
    (the graph stays the textbook one), when the module's ``direct`` is set (bench/train_step.py's
    re-created reference), and for what the product does not cover."""
    return (m.direct or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str) or x.dim() != 4)


def _product_pays(m: nn.Module, positions: int, channels: int, dtype: torch.dtype) -> bool:
    """Whether a map of ``positions`` (batch x height x width) is small enough for the product, for
    a layer of ``channels`` (see the module docstring): half while training and in float32, an
    eighth for reduced-precision inference. Never without gradients on a net that may train whose
    weight is not contiguous (channels-last): its matrix would be copied at every call."""
    if not torch.is_grad_enabled() and not (inference_only(m) or m.weight.is_contiguous()):
        return False
    reduced = not torch.is_grad_enabled() and dtype in (torch.bfloat16, torch.float16)
    return (8 if reduced else 2) * positions <= channels


def conv_output_size(conv: nn.Conv2d, h: int, w: int) -> tuple[int, int]:
    """The (height, width) of ``conv``'s output for an (h, w) input (numeric padding)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    return (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1


def conv_transpose_product(x: torch.Tensor, matrix: torch.Tensor, kernel_size, stride, padding=(0, 0),
                           output_padding=(0, 0), dilation=(1, 1)) -> torch.Tensor:
    """``F.conv_transpose2d`` (no groups, no bias) as one matrix product and col2im: x (N, C, H, W)
    and ``matrix`` (out * kh * kw, C), the weight (C, out, kh, kw) reshaped to (C, out * kh * kw)
    and transposed -> (N, out, Ho, Wo). The same sums in another order."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oph, opw) = (_pair(kernel_size), _pair(stride), _pair(padding),
                                                          _pair(dilation), _pair(output_padding))
    ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    wo = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    cols = matrix @ x.reshape(n, c, h * w)  # (n, out*kh*kw, h*w)
    return F.fold(cols, (ho, wo), (kh, kw), (dh, dw), (ph, pw), (sh, sw))


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _matrix(m: nn.Module, make) -> torch.Tensor:
    """``make(weight)``, the weight's matrix: a view of a contiguous weight (a copy of a
    channels-last one) made at each call; on an inference-only net made once
    (:func:`trainer.nets.inference_cache.derived`), in reduced precision contiguous (oneDNN's bf16
    product copied the transposed view at every call: 78 ms of a 256 px U-Net's 390 ms forward per
    8192 x 1024 matrix; float32 takes the view as it is, and keeps its sums' order)."""
    if inference_only(m):
        def made():
            matrix = make(m.weight)
            return matrix.contiguous() if matrix.dtype in (torch.bfloat16, torch.float16) else matrix
        return derived(m, "matrix", made)
    return make(m.weight)


class SmallMapConv2d(nn.Conv2d):
    """``nn.Conv2d`` (zero padding, no groups for the product) whose output map of at most
    ``out_channels / 2`` positions is computed as patches x weight: (N, C, H, W) -> (N, out, Ho, Wo),
    in x's memory format (what follows may draw random numbers in memory order: dropout's mask).
    ``direct = True`` runs the ordinary convolution whatever the map."""

    direct = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _plain(self, x):
            return super().forward(x)
        n = x.shape[0]
        ho, wo = conv_output_size(self, x.shape[2], x.shape[3])
        if not _product_pays(self, n * ho * wo, self.out_channels, x.dtype):
            return super().forward(x)
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)  # (n, C*kh*kw, ho*wo)
        weight = _matrix(self, lambda w: w.reshape(self.out_channels, -1).t())  # (C*kh*kw, out)
        out = cols.transpose(1, 2) @ weight  # (n, ho*wo, out)
        if self.bias is not None:
            out = out + self.bias.to(out.dtype)
        out = out.transpose(1, 2).reshape(n, self.out_channels, ho, wo)  # channels-last strides
        return out.contiguous(memory_format=torch.channels_last if _channels_last(x) else torch.contiguous_format)


class SmallMapConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (zero padding, no groups, no output_size argument for the product)
    whose input map of at most ``in_channels / 2`` positions is computed as weight x input and
    col2im: (N, C, H, W) -> (N, out, Ho, Wo). ``direct = True`` runs the ordinary transposed
    convolution whatever the map."""

    direct = False

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if _plain(self, x) or output_size is not None:
            return super().forward(x, output_size)
        n, c, h, w = x.shape
        if not _product_pays(self, n * h * w, self.in_channels, x.dtype):
            return super().forward(x)
        weight = _matrix(self, lambda w: w.reshape(c, -1).t())  # (out*kh*kw, C)
        out = conv_transpose_product(x, weight, self.kernel_size, self.stride, self.padding, self.output_padding,
                                     self.dilation)
        if self.bias is not None:
            out = out + self.bias.to(out.dtype).view(1, -1, 1, 1)
        return out
