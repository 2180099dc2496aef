"""Winograd's minimal filtering for 3x3 and 4x4 stride-1 convolutions, training in float32 on the CPU.

Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016): F(4x4, 3x3) computes
each 4x4 tile of a 3x3 convolution's output from a 6x6 tile of its input with 36 products per
channel pair instead of 144, F(3x3, 4x4) each 3x3 tile of a 4x4 convolution's with 36 instead of
144. The input and weight tiles go to the Winograd domain (B^T d B and G g G^T), the 36 positions
are 36 matrix products over the channels, and A^T m A brings the tiles back. It is the same
convolution with its sums regrouped: exact in exact arithmetic, and in float32 within about 1e-5 of
the largest output, where the direct convolution's own rounding is about 3e-7 (TF32, PyTorch's
default for float32 convolutions on Ampere GPUs: about 5e-4). A training step's losses agree to
float rounding (tests/trainer/nets/test_winograd.py).

Used for the residual blocks' 3x3 convolutions (CycleGAN's ResNet generator, StarGAN's generator)
and PatchGAN's stride-1 4x4 convolution. On this project's 2-core CPU with oneDNN such a layer of
256 channels on 32x32 maps runs forward and backward 1.3-1.6x faster this way, with the transforms
fused by ``torch.compile`` (its C++ backend); eagerly they cost what the products save. Below 128
channels or 30x30 positions it does not pay, and in bf16 the oneDNN kernels are faster and the
transforms would lose precision, so :class:`WinogradConv2d` uses it only in float32 on the CPU
outside autocast, on a training net (``train.winograd``, :func:`trainer.device.use_winograd`), and
runs as ``nn.Conv2d`` otherwise: on nets loaded for inference, under autocast, on CUDA (cuDNN
chooses its own Winograd kernels), while tracing or exporting. Each input shape is compiled once
(with and without gradients apart: 5-50 s each on a busy 2-core CPU, announced once on the
log; at most ``MAX_SHAPES`` per process). If ``torch.compile`` cannot build the kernel
(no C++ compiler), it says so once and falls back to the direct convolution. Measured in
docs/performance.md, "Winograd".
"""
import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

MIN_CHANNELS = 128  # in and out channels at least this many ...
MIN_POSITIONS = 30 * 30  # ... and at least this many output positions per image
MAX_SHAPES = 16  # kernels compiled per process (see _uses_winograd); further ones run the direct convolution

# Toom-Cook points 0, +-1, +-2 and infinity: 6x6 tiles, F(4x4, 3x3) and F(3x3, 4x4) (Lavin and Gray,
# section 4.2); B^T depends on the points only
POINTS = (0, 1, -1, 2, -2)
TILE = len(POINTS) + 1
_BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
       (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
KERNELS = (3, 4)  # r; the output tile is m = TILE - r + 1

_transforms: dict = {}
_compiled = None
_shapes: set = set()
_broken: str | None = None  # why torch.compile failed, once it has


def matrices(r: int) -> tuple[list, list, list]:
    """B^T (6, 6), G (6, r) and A^T (m, 6) of F(m x m, r x r), m = 7 - r, for the points 0, +-1,
    +-2 and infinity: G's row j is (a_j^k / prod_{l != j} (a_j - a_l))_k, A^T's column j is
    (a_j^i)_i, and the point at infinity takes the last coefficient (Lavin and Gray, eq. 7-9)."""
    m = TILE - r + 1
    g, at = [], [[a ** i for a in POINTS] + [1 if i == m - 1 else 0] for i in range(m)]
    for j, a in enumerate(POINTS):
        f = 1
        for b in POINTS[:j] + POINTS[j + 1:]:
            f *= a - b
        g.append([a ** k / f for k in range(r)])
    g.append([1 if k == r - 1 else 0 for k in range(r)])
    return [list(row) for row in _BT], g, at


def transforms(device: torch.device, r: int = 3, dtype: torch.dtype = torch.float32
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Kronecker forms of B^T (36, 36), G (36, r * r) and A^T (m * m, 36) in ``dtype`` on
    ``device``: ``kron(X, X) @ vec(t)`` is ``vec(X t X^T)`` for a row-major tile t. (Written instead
    as sums of scaled slices, which torch.compile fuses, the layer ran 1.3-2x slower than as these
    products.)"""
    if (device, r, dtype) not in _transforms:
        bt, g, at = (torch.tensor(x, dtype=torch.float64) for x in matrices(r))
        _transforms[device, r, dtype] = tuple(torch.kron(t, t).to(device, dtype) for t in (bt, g, at))
    return _transforms[device, r, dtype]


def winograd_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int,
                  kb: torch.Tensor, kg: torch.Tensor, ka: torch.Tensor) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=padding)`` for an r x r kernel (r = 3 or 4), stride 1, by
    F(m x m, r x r), m = 7 - r: x (N, C, H, W) float32, weight (O, C, r, r), bias (O,) or None,
    ``kb, kg, ka`` from :func:`transforms` -> (N, O, H + 2 padding - r + 1, W + 2 padding - r + 1).
    Any H, W with a non-empty output (the map is zero-padded to whole tiles and the output cropped)."""
    n, c, h, w = x.shape
    o, r = weight.shape[0], weight.shape[-1]
    m = TILE - r + 1
    ho, wo = h + 2 * padding - (r - 1), w + 2 * padding - (r - 1)
    th, tw = -(-ho // m), -(-wo // m)
    x = F.pad(x, (padding, padding + tw * m - wo, padding, padding + th * m - ho))
    d = x.unfold(2, TILE, m).unfold(3, TILE, m)  # (n, c, th, tw, 6, 6): the tiles, overlapping by 2
    d = d.permute(4, 5, 0, 2, 3, 1).reshape(TILE * TILE, n * th * tw * c)
    v = (kb @ d).view(TILE * TILE, n * th * tw, c)  # B^T d B
    u = (kg @ weight.reshape(o, c, r * r).permute(2, 1, 0).reshape(r * r, c * o)).view(TILE * TILE, c, o)  # G g G^T
    prod = torch.bmm(v, u)  # (36, tiles, o): the 36 products over the channels
    y = (ka @ prod.view(TILE * TILE, -1)).view(m, m, n, th, tw, o)  # A^T m A
    y = y.permute(2, 5, 3, 0, 4, 1).reshape(n, o, th * m, tw * m)[:, :, :ho, :wo]
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def _kernel():
    global _compiled
    if _compiled is None:
        _compiled = torch.compile(winograd_conv, dynamic=False)
    return _compiled


class WinogradConv2d(nn.Conv2d):
    """``nn.Conv2d`` (N, C, H, W) -> (N, out, Ho, Wo) that computes a 3x3 or 4x4, stride-1
    convolution (zero padding 0 or 1) by Winograd's F(4x4, 3x3) or F(3x3, 4x4) while
    :attr:`winograd` is set (:func:`set_winograd`; the training method sets it) and the input is
    float32 on the CPU outside autocast, for layers of at least ``MIN_CHANNELS`` input and output
    channels on at least ``MIN_POSITIONS`` output positions. Same parameters and state-dict keys as
    ``nn.Conv2d``."""

    winograd = False

    def _uses_winograd(self, x: torch.Tensor) -> bool:
        if not (self.winograd and _broken is None):
            return False
        if (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or x.dim() != 4 or x.device.type != "cpu"
                or x.dtype != torch.float32 or self.weight.dtype != torch.float32
                or torch.is_autocast_enabled("cpu")):
            return False
        r = self.kernel_size[0]
        if (self.kernel_size != (r, r) or r not in KERNELS or self.stride != (1, 1) or self.dilation != (1, 1) or self.groups != 1
                or self.padding_mode != "zeros" or isinstance(self.padding, str)
                or self.padding[0] != self.padding[1] or self.padding[0] > 1):
            return False
        if min(self.in_channels, self.out_channels) < MIN_CHANNELS:
            return False
        p = self.padding[0]
        if (x.shape[2] + 2 * p - r + 1) * (x.shape[3] + 2 * p - r + 1) < MIN_POSITIONS:
            return False
        # torch.compile builds a kernel for each shape, grad mode and frozen or trained weight (a
        # discriminator's, frozen during G's step)
        shape = (tuple(x.shape), torch.is_grad_enabled(), self.weight.requires_grad)
        if shape not in _shapes:
            if len(_shapes) >= MAX_SHAPES:
                return False
            if not _shapes:
                log.warning("Winograd convolutions (train.winograd, float32 on the CPU): compiling their kernels, "
                            "once per input shape, 5-50 s each; the first steps are slower (train.winograd=off "
                            "skips this)")
            _shapes.add(shape)
        return True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        global _broken
        if not self._uses_winograd(x):
            return super().forward(x)
        try:
            return _kernel()(x, self.weight, self.bias, self.padding[0], *transforms(x.device, self.kernel_size[0]))
        except Exception as e:  # torch.compile's C++ backend unavailable: fall back for good
            _broken = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            log.warning("Winograd convolutions off (torch.compile could not build them: %s); "
                        "training continues with the direct convolution", _broken)
            return super().forward(x)


def set_winograd(net: nn.Module, on: bool) -> int:
    """Turn Winograd on or off for every :class:`WinogradConv2d` of ``net``; returns how many."""
    layers = [m for m in net.modules() if isinstance(m, WinogradConv2d)]
    for m in layers:
        m.winograd = on
    return len(layers)
