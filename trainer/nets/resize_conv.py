"""Resize-convolution (nearest-neighbour doubling, then a 3x3 convolution) computed on the small map.

Odena, Dumoulin & Olah (2016, "Deconvolution and Checkerboard Artifacts") upsample by doubling
each pixel and convolving the doubled map with a 3x3 kernel. Every output pixel at
``(2i + a, 2j + b)`` then reads only two rows and two columns of the small map (rows ``i - 1, i``
for ``a = 0``, ``i, i + 1`` for ``a = 1``; columns alike), with the kernel's taps that fall on the
same small pixel summed. So the same function is four 2x2 convolutions of the small map, one per
output phase ``(a, b)``, computed here as one 2x2 convolution with ``4 x out_channels`` outputs
(zero padding 1) and interleaved. It does 16 multiply-adds per input channel and output pixel
pair where the doubled map's 3x3 convolution does 36, and the doubled map is never made
(sub-pixel convolution: Shi et al. 2016, "Real-Time Single Image and Video Super-Resolution Using
an Efficient Sub-Pixel Convolutional Neural Network", whose equivalence to resize-convolution this
is). The result equals the doubled map's convolution up to float rounding (the taps' sums are
formed in float32), with gradients for the weight through the tap sums.

On maps of fewer than :data:`MIN_POSITIONS` positions, and while tracing or exporting to ONNX, the
plain path runs (``F.interpolate`` and the convolution), so
the exported graph is the textbook one.
"""
import torch
import torch.nn.functional as F
from torch import nn

from trainer.nets.inference_cache import derived, version

# _TAPS[a, p, k]: output phase a's tap p (small-map row i - 1 + a + p) sums the 3x3 kernel's row k
# below this many output positions of the small map (batch x height x width) the doubled map's
# convolution is as fast (measured at 1 thread: a 768 -> 192 layer ties at 8x8, the plain path wins
# at 4x4, the phases take 2x less at 16x16 in bfloat16 and 2-8x less at 16x16 and up in float32)
MIN_POSITIONS = 64
_TAPS = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]],
                      [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])


def phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """The four output phases' 2x2 kernels of a 3x3 kernel applied to a nearest-doubled map:
    ``weight`` (out, in, 3, 3) -> (4 * out, in, 2, 2), phase ``(a, b)`` at rows
    ``(2a + b) * out ...``, summed in float32 (float64 for float64) and returned in ``weight``'s dtype."""
    wide = weight.double() if weight.dtype == torch.float64 else weight.float()
    taps = _TAPS.to(wide)
    k = torch.einsum("api,ocij,bqj->abocpq", taps, wide, taps)
    return k.reshape(4 * weight.shape[0], weight.shape[1], 2, 2).to(weight.dtype)


class NearestResizeConv2d(nn.Conv2d):
    """A 3x3 ``nn.Conv2d`` (stride 1, padding 1, zero padding) applied to its input doubled by
    nearest-neighbour upsampling: (N, C, H, W) -> (N, out, 2H, 2W), any H and W >= 1, in the input's
    dtype and memory format. Parameters and state-dict keys are ``nn.Conv2d``'s. Raises ValueError
    at construction for another kernel size, stride, padding, dilation, groups or padding mode."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__(in_channels, out_channels, 3, 1, 1, bias=bias)

    def _check(self) -> None:
        if (self.kernel_size, self.stride, self.padding, self.dilation, self.groups, self.padding_mode) != (
                (3, 3), (1, 1), (1, 1), (1, 1), 1, "zeros"):
            raise ValueError("NearestResizeConv2d is a 3x3, stride 1, padding 1 convolution without groups")

    def _phases(self, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The phase kernels (in the input's memory format: oneDNN reorders a mismatched kernel at
        every call) and biases; on an inference-only net made once
        (:func:`trainer.nets.inference_cache.derived`)."""
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        bias = self.bias

        def make():
            return (phase_kernels(self.weight).contiguous(memory_format=fmt),
                    None if bias is None else bias.repeat(4))
        return derived(self, "phases", make, fmt, None if bias is None else (bias.data_ptr(), version(bias)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or x.dim() != 4
                or x.shape[0] * x.shape[2] * x.shape[3] < MIN_POSITIONS):
            return super().forward(F.interpolate(x, scale_factor=2, mode="nearest"))
        self._check()
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        kernel, bias = self._phases(channels_last)
        n, _, h, w = x.shape
        c = self.out_channels
        y = F.conv2d(x, kernel, bias, padding=1)  # (n, 4c, h + 1, w + 1): phase (a, b) at offset (a, b)
        y = y.view(n, 2, 2, c, h + 1, w + 1)
        if channels_last:
            out = y.new_empty(n, h, 2, w, 2, c).permute(0, 5, 1, 2, 3, 4)  # channels-last storage
        else:
            out = y.new_empty(n, c, h, 2, w, 2)
        for a in (0, 1):
            for b in (0, 1):
                out[:, :, :, a, :, b] = y[:, a, b, :, a:a + h, b:b + w]
        return out.reshape(n, c, 2 * h, 2 * w)
