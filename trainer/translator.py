"""A loaded model file as a :class:`Translator`, the runtime every method's exported model has:
``card`` (the model file's metadata), declared ``controls`` (:mod:`trainer.controls`) and
``run(image=None, **controls) -> PIL.Image``. The studio builds its panels from ``controls``, so a
new method needs no new widget code. Each method module defines its Translator subclass (its
``Translator`` attribute); :func:`trainer.inference.load` picks it by the card.

Also the helpers the translators share: :func:`build_net` (a net of the card with its weights),
channel matching (:func:`input_channels`, :func:`match_channels`), pix2pix's test-time
normalisation modes (:data:`TEST_MODES`, :func:`set_norm_mode`), the one tiler
(:func:`tiled_tensor`: super-resolution's :func:`upscale_tiled` and the native resolution's
blended tiles) and native resolution (:func:`resolution_control`, :func:`run_native`: a fully
convolutional generator on an image at its own size, padded to the network's multiple).

Images go in as PIL images, paths or arrays (any size and mode: :func:`trainer.data.imageio.open_image`,
:func:`trainer.data.imageio.image_from_array`) and come out as uint8 HWC arrays or PIL images;
tensors are float NCHW in [-1, 1].

A Translator runs in fp32 until :meth:`Translator.set_precision` gives it a reduced precision
(bf16 or fp16: :func:`trainer.device.inference_dtype`); its outputs stay float32 / uint8 either way.
"""
from __future__ import annotations

import copy
import functools
import math
import os
import threading
from contextlib import contextmanager, nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from trainer.controls import SEED_MAX, Control, ControlError
from trainer.data.imageio import image_from_array, open_image
from trainer.data.transforms import to_tensor, to_uint8
from trainer.device import autocast, check_inference_precision, inference_dtype, precision_name
from trainer.errors import ModelFileError, OnnxExportError
from trainer.modelfile import check_state, load_strict, subdict
from trainer.nets import build
from trainer.nets.inference_cache import version
from trainer.nets.resize_conv import NearestResizeConv2d
from trainer.nets.small_conv import conv_output_size

__all__ = ["Translator", "Control", "ControlError", "SEED_MAX", "build_net", "input_channels", "match_channels",
           "LUMA", "TEST_MODES", "set_norm_mode", "upscale_tiled", "upscale_tiled_tensor", "tiled_tensor",
           "RESOLUTIONS", "NATIVE_MAX_PIXELS", "resolution_control", "run_native", "pad_reflect"]

# native resolution (a fully convolutional generator on an image at its own size and aspect)
RESOLUTIONS = ("native", "training")
NATIVE_MAX_PIXELS = 1 << 20  # larger (padded) images run in tiles of at most this many pixels
NATIVE_OVERLAP = 64  # context pixels around each tile (on the multiple's grid, at most a quarter of a side)


def build_net(card: dict, tensors: dict, name: str, device) -> nn.Module:
    """Net ``name`` of the card (``card["nets"][name]``: its network name and constructor
    arguments) with its weights (the tensors under ``name.``) on ``device``; a
    :class:`~trainer.errors.ModelFileError` names a missing, unexpected or misshapen key, or
    constructor arguments the network refuses."""
    spec, state, what = card["nets"][name], subdict(tensors, name), f"model file net {name}"

    def make(on=None):
        try:
            with torch.device(on) if on else nullcontext():
                return build(spec["name"], **spec["args"])
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"the model card's net {name} ({spec['name']}) cannot be built: {e}") from None

    try:  # shapes first, without memory: a card whose sizes disagree with its tensors allocates nothing
        check_state(make("meta"), state, what)
    except (RuntimeError, NotImplementedError):  # a builder that reads values: checked once built
        pass
    net = make()
    load_strict(net, state, what)
    return net.to(device)


class Translator:
    """An exported model at run time. Built as ``Translator(card, tensors, device)`` from a model
    file's card and tensors (:func:`trainer.modelfile.load_model`); a card or tensors that do not
    fit raise :class:`~trainer.errors.ModelFileError`.

    A subclass declares :attr:`controls` (a class list, or an instance list built from the card)
    and implements :meth:`forward_array` (image in, uint8 HWC array out) and, for the tensor API,
    :meth:`forward_tensor` with its :attr:`tensor_args`; a generator from noise sets
    :attr:`needs_image` False. :meth:`run` / :meth:`run_array` / :meth:`run_tensor` check the
    controls (:class:`~trainer.errors.ControlError`) before anything runs, and run one call at a
    time per translator (:attr:`lock`: threads take turns, each getting what it would alone)."""

    controls: list[Control] = []
    multiple = 1  # native resolution: the generator's H and W are padded to multiples of this
    max_pixels = NATIVE_MAX_PIXELS  # native resolution: a larger (padded) image runs in blended tiles
    # whether precision "auto" may run this method's nets in bf16 / fp16: a method sets it True once its
    # bundled model was measured within 2/255 of fp32 and faster (bench/inference_precision.py)
    reduced_precision = False
    # in reduced precision, the weighted layers of each generator (indices in module order, negative from
    # the end) that stay float32: by default the first, which reads the image
    full_precision_layers: tuple[int, ...] = (0,)
    # and those that stay float32 while the net's batch norms normalise by the batch's statistics
    # (pix2pix's paper and deterministic modes), where a near-flat map amplifies bf16's rounding
    batch_statistics_full_precision_layers: tuple[int, ...] = ()
    dtype: torch.dtype | None = None  # what the nets compute in (None: fp32); see set_precision
    precision = "fp32"  # "fp32", "bf16" or "fp16"
    precision_note = "fp32"  # the precision and why it was chosen, for the studio, inspect and translate

    def __init__(self, card: dict, tensors: dict, device="cpu"):
        self.card = card
        self.device = torch.device(device)
        # one render at a time per translator: a render sets its nets' modes (pix2pix's batch statistics
        # and dropout) for its whole pass; another thread's waits (each studio page has its own translator)
        self.lock = threading.RLock()
        self.image_size = int(card.get("image_size", 256))  # the training resolution, pixels per side

    @property
    def needs_image(self) -> bool:
        """True when :meth:`run` translates an image; False for a generator from seeds."""
        return True

    def defaults(self) -> dict:
        return {c.name: c.default for c in self.controls}

    def set_precision(self, precision: str = "auto") -> str:
        """Run the nets in ``precision`` (:data:`trainer.device.INFERENCE_PRECISIONS`; "off" is fp32).
        fp32 leaves them as loaded (the output bit for bit as before). bf16 / fp16 cast the weights of
        every convolution and linear layer of :meth:`generators` once, except the
        :attr:`full_precision_layers` (by default each generator's first: it reads the image, whose
        8-bit levels bf16 cannot hold) and, while batch norms use batch statistics, the
        :attr:`batch_statistics_full_precision_layers`, which run in fp32 (:func:`reduce_precision`);
        :meth:`run_array` and :meth:`run_tensor` run under autocast and the generators hand back
        float32, so outputs keep their types. auto: bf16 (fp16 on a GPU without it) where
        :func:`trainer.device.inference_dtype` finds it native, the method declares
        :attr:`reduced_precision` and the card's ``inference.precision`` is not "fp32"; else fp32.
        Returns the precision in use ("fp32", "bf16" or "fp16", kept in :attr:`precision`, with
        :attr:`precision_note` saying why). Raises ValueError (an unknown precision, naming the
        choices; fp16 on the CPU) or RuntimeError (the nets already run in another reduced precision:
        load the model again)."""
        name = check_inference_precision(precision)
        dtype = inference_dtype(name, self.device)
        why = "asked"
        if name == "auto":
            method = self.card.get("method", "this method")
            if dtype is None:
                why = "auto: no native bf16 on this CPU" if self.device.type == "cpu" else f"auto: {self.device.type}"
            elif not self.reduced_precision:
                dtype, why = None, f"auto: reduced precision is not measured to hold for {method}"
            elif self.card.get("inference", {}).get("precision") in ("fp32", "off"):
                dtype, why = None, "auto: the model card asks for fp32"
            else:
                why = "auto: the nets within 2/255 of fp32, native here"
        if dtype != self.dtype:
            if self.dtype is not None:
                raise RuntimeError(f"the nets already run in {self.precision}: load the model again for {name}")
            for net in self.generators():
                reduce_precision(net, dtype, self.full_precision_layers, self.batch_statistics_full_precision_layers)
            self.dtype = dtype
        self.precision = precision_name(dtype)
        self.precision_note = f"{self.precision} ({why})"
        return self.precision

    def autocast(self):
        """While the nets run: autocast to :attr:`dtype` on the device (nothing in fp32)."""
        return autocast(self.device, self.dtype)

    def check_controls(self, controls: dict) -> dict:
        """The defaults updated with ``controls``, each value checked against its control (kind,
        finiteness, range, choices) and normalised; a :class:`ControlError` otherwise."""
        known = {c.name: c for c in self.controls}
        unknown = sorted(set(controls) - set(known))
        if unknown:
            raise ControlError(f"unknown control{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; this model "
                               f"has {', '.join(known) or 'none'}")
        values = self.defaults()
        values.update(controls)
        return {name: known[name].check(value) for name, value in values.items()}

    def run_array(self, image=None, **controls) -> np.ndarray:
        """The output as a uint8 HWC array (what the studio's worker hands to the UI thread). Raises
        ValueError for a missing image, or an image given to a model that generates from a seed."""
        values = self.check_controls(controls)
        if self.needs_image and image is None:
            raise ValueError("this model translates an image: pass image=")
        if not self.needs_image and image is not None:
            seeded = any(c.name == "seed" for c in self.controls) and "seed" not in controls
            raise ValueError("this model generates from a seed and takes no image: leave image out"
                             + (" (seed= chooses what it makes)" if seeded else ""))
        if not isinstance(image, (str, os.PathLike, Image.Image)) and not hasattr(image, "read") \
                and image is not None:  # arrays: uint8 HW or HWC (the studio's canvas), floats in [0, 1]...
            image = image_from_array(image)
        with self.lock, torch.inference_mode(), self.autocast():
            return self.forward_array(open_image(image) if image is not None else None, **values)

    def run(self, image=None, **controls) -> Image.Image:
        """The output as a PIL image: RGB, or greyscale ("L") for a one-channel model."""
        out = self.run_array(image, **controls)
        if self.card.get("channels") == 1 and out.ndim == 3 and (out == out[..., :1]).all():
            return Image.fromarray(np.ascontiguousarray(out[..., 0]), "L")
        return Image.fromarray(out, "RGB")

    def forward_array(self, image: Image.Image | None, **controls) -> np.ndarray:
        raise NotImplementedError

    tensor_args: tuple[str, ...] = ()  # run_tensor's tensor-valued arguments (not controls)

    def run_tensor(self, x: torch.Tensor | None = None, **controls) -> torch.Tensor:
        """A batch in, a batch out, for scripts and notebooks: ``x`` (N, C, H, W) in [-1, 1] (a CHW
        image is a batch of one) -> a float tensor (N, 3, H', W') in [-1, 1] (a DCGAN's: its own
        channels) on the translator's device. Unlike :meth:`run`, nothing is resized or padded: the
        network runs at x's own size (``resolution`` is :meth:`run`'s and changes nothing here).
        Controls as for :meth:`run`, checked the same way; :attr:`tensor_args`
        take tensors instead (StyleGAN ``z``/``w``, BicycleGAN ``z``, StarGAN ``c``, DCGAN
        ``z``/``labels``); a control of the same name wins over a tensor argument."""
        names = {c.name for c in self.controls}  # a control of the same name wins over a tensor argument
        extra = {k: controls.pop(k) for k in self.tensor_args if k in controls and k not in names}
        values = self.check_controls(controls)
        single = False
        if self.needs_image:
            if x is None:
                raise ValueError("this model translates images: pass x, an (N, C, H, W) tensor in [-1, 1]")
            single = isinstance(x, torch.Tensor) and x.dim() == 3
            x = self.batch(x)
        elif x is not None:
            raise ValueError(f"this model generates from latents and takes no image: pass "
                             f"{' or '.join(a + '=' for a in self.tensor_args)} (or a seed)")
        with self.lock, torch.no_grad(), self.autocast():
            out = self.forward_tensor(x, extra, **values).float().clamp(-1, 1)
        return out[0] if single else out

    def __call__(self, x: torch.Tensor | None = None, **controls) -> torch.Tensor:
        """``translator(x, **controls)``: :meth:`run_tensor`."""
        return self.run_tensor(x, **controls)

    def forward_tensor(self, x: torch.Tensor | None, tensors: dict, **controls) -> torch.Tensor:
        """The batch for checked ``controls``; ``tensors`` holds the given :attr:`tensor_args`."""
        raise NotImplementedError(f"{type(self).__name__} has no tensor API")

    def batch(self, x) -> torch.Tensor:
        """``x`` checked (a finite float NCHW or CHW tensor in [-1, 1]) as NCHW float32 on the device."""
        if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4) or not x.is_floating_point():
            what = f"a {x.dim()}-D {x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected a float tensor (N, C, H, W) or (C, H, W) in [-1, 1], got {what}")
        x = (x if x.dim() == 4 else x[None]).to(self.device, torch.float32)
        if x.numel() == 0:
            raise ValueError(f"x: an empty batch {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("x: holds NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1.001 or hi > 1.001:
            raise ValueError(f"x: values in [-1, 1] expected, got [{lo:g}, {hi:g}] (from [0, 1]: x * 2 - 1; "
                             "from uint8: x / 127.5 - 1)")
        return x

    @staticmethod
    def check_size(x: torch.Tensor, multiple: int, what: str = "this generator") -> None:
        h, w = x.shape[-2:]
        if h % multiple or w % multiple:
            raise ValueError(f"x is {h}x{w}: {what} needs a height and width that are multiples of {multiple}")

    @staticmethod
    def through_tensor(x: torch.Tensor, *nets) -> torch.Tensor:
        """:meth:`through` without the resizing: ``x`` through ``nets`` in turn, as 3 channels."""
        for net in nets:
            x = net(match_channels(x, input_channels(net)))
        return match_channels(x, 3)

    def latent_batch(self, value, width: int, name: str, batch: int | None = None) -> torch.Tensor:
        """A latent argument as an (N, width) float tensor on the device (a vector is a batch of one)."""
        t = torch.as_tensor(value, dtype=torch.float32).to(self.device)
        t = t[None] if t.dim() == 1 else t
        if t.dim() != 2 or t.shape[1] != width or (batch is not None and t.shape[0] not in (1, batch)):
            want = f"({batch if batch is not None else 'N'}, {width})"
            raise ValueError(f"{name}: expected a tensor of shape {want}, got {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}: holds NaN or infinite values")
        return t if batch is None else t.expand(batch, -1)

    def generators(self) -> list[nn.Module]:
        """The nets :meth:`through` runs (``G``, or each of a dict ``G``): the native tiles share
        their per-image normalisation statistics."""
        G = getattr(self, "G", None)
        return list(G.values()) if isinstance(G, dict) else [G] if isinstance(G, nn.Module) else []

    def through(self, image: Image.Image, *nets, native: bool = False) -> np.ndarray:
        """``image`` resized to the model's size, through ``nets`` in turn, back to the image's size;
        ``native``: at the image's own size instead (:func:`run_native` with :attr:`multiple` and
        :attr:`max_pixels`). A one-channel net gets the image's luma; a one-channel result comes
        back as grey RGB."""
        if native:
            x = to_tensor(image)[None].to(self.device)
            return to_uint8(run_native(lambda t: self.through_tensor(t, *nets), x, self.multiple, self.max_pixels,
                                       nets=self.generators())[0])
        size = self.image_size
        x = to_tensor(image.resize((size, size), Image.BICUBIC))[None].to(self.device)
        for net in nets:
            x = net(match_channels(x, input_channels(net)))
        x = match_channels(x, 3)
        out = Image.fromarray(to_uint8(x[0]), "RGB")
        if out.size != image.size:
            out = out.resize(image.size, Image.BICUBIC)
        return np.asarray(out)

    # -- ONNX (gan-trainer export --onnx)
    def onnx_graphs(self, latent: str = "z", mode: str | None = None, noise_mode: str = "stored",
                    noise_seed: int = 0) -> list:
        """The ONNX graphs of this model (:class:`trainer.exporters.onnx_graphs.Graph`, one per file;
        a CycleGAN pair gives two); the nets are copied, the translator is left as it was. The
        options are StyleGAN's (``latent`` z or w, ``noise_mode``, ``noise_seed``) and pix2pix's
        (``mode``); a translator ignores those it has not. Raises
        :class:`~trainer.errors.OnnxExportError` when the method has no ONNX export."""
        raise OnnxExportError(f"method {self.card.get('method')!r} has no ONNX export in this version")


WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)  # the layers reduce_precision casts


def reduce_precision(net: nn.Module, dtype: torch.dtype, full=(0,), full_with_batch_statistics=()) -> None:
    """``net`` prepared to run under autocast to ``dtype``: the weights of its convolutions and
    linear layers (:data:`WEIGHTED`) cast once (autocast would cast them again at every call), except
    those at the indices ``full`` (in module order, negative from the end), which run in float32
    with autocast off, and those at ``full_with_batch_statistics``, which do so while any of the
    net's batch norms is in training mode (normalises by the batch's statistics: on a near-flat
    map, such as a mostly white sketch, they amplify bf16's rounding) and keep float32 weights,
    with a copy in ``dtype`` for running statistics (not cast again at every call; made again after a
    tracked change of the weights, not after one through ``.data``: :mod:`trainer.nets.inference_cache`);
    convolutions channels-last; dropout, where it draws a mask, draws it on float32 NCHW input (the
    mask fp32 draws for the same seed); instance norms on their input's statistics drop
    running ones that never change (momentum 0) and run one image as batch norm; its output handed
    back as float32. Norm layers keep float32 parameters."""
    layers = [m for m in net.modules() if isinstance(m, WEIGHTED)]
    keep = {i % len(layers) for i in full} if layers else set()
    batch_keep = {i % len(layers) for i in full_with_batch_statistics} - keep if layers else set()
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for i, m in enumerate(layers):
        if i in keep:
            m.forward = functools.partial(_full_precision, m.forward)
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.to(memory_format=torch.channels_last)
        elif i in batch_keep:  # float32 weights, and a reduced copy for when the norms use running statistics
            reduced = copy.deepcopy(m)
            _reduce(reduced, dtype)
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.to(memory_format=torch.channels_last)
            m.__dict__.update(_reduced=(_weights_key(m), reduced), _reduced_dtype=dtype, _batch_norms=norms)
            m.forward = functools.partial(_full_precision_with_batch_statistics, m, _fp32_one_column(m))
        else:
            _reduce(m, dtype)
    for m in net.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.register_forward_pre_hook(_float_nchw)
        elif type(m) is nn.InstanceNorm2d and (m.training or not m.track_running_stats):
            if m.momentum == 0:
                m.running_mean = m.running_var = None  # never updated: the same function without their bookkeeping
            if m.running_mean is None:
                m.__class__ = _OwnStatisticsNorm2d
    net.register_forward_hook(_float_output)


def _fp32_one_column(m: nn.Module):
    """``m.forward`` with :func:`_one_column_in_fp32` for a convolution (not a resize-convolution:
    its output is doubled)."""
    if isinstance(m, nn.Conv2d) and not isinstance(m, NearestResizeConv2d):
        return functools.partial(_one_column_in_fp32, m, m.forward)
    return m.forward


def _reduce(m: nn.Module, dtype: torch.dtype) -> None:
    """A layer's weights in ``dtype`` once, channels-last for a convolution."""
    m.to(dtype)
    if "forward" not in m.__dict__:
        m.forward = _fp32_one_column(m)
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        m.to(memory_format=torch.channels_last)


def _weights_key(m: nn.Module) -> tuple:
    return tuple((p.data_ptr(), version(p)) for p in m.parameters(recurse=False))


class _OwnStatisticsNorm2d(nn.InstanceNorm2d):
    """An instance norm on its input's statistics, without running ones: for one image it is batch
    norm in training mode, which normalises a channels-last tensor in place of reshaping it."""

    def forward(self, x):
        if x.dim() == 4 and x.shape[0] == 1:
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return super().forward(x)


def _float_nchw(module, args):
    if not module.training or module.p == 0:  # no mask drawn: the input as it is
        return None
    return tuple(a.float().contiguous() if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                 for a in args)


def _full_precision(forward, *args, **kwargs):
    """A layer's ``forward`` in float32 with autocast off."""
    device = next((a.device.type for a in args if isinstance(a, torch.Tensor)), "cpu")
    with torch.autocast(device, enabled=False):
        return forward(*(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args),
                       **kwargs)


def _full_precision_with_batch_statistics(layer: nn.Module, forward, *args, **kwargs):
    """``layer``'s ``forward`` in float32 with autocast off while any batch norm of its net
    normalises by the batch's statistics (in training mode), else its reduced copy's under
    autocast (made again if the layer's weights changed since)."""
    if any(n.training for n in layer.__dict__["_batch_norms"]):
        return _full_precision(forward, *args, **kwargs)
    key, reduced = layer.__dict__["_reduced"]
    if key != _weights_key(layer):
        with torch.no_grad():
            for name, p in layer.named_parameters(recurse=False):
                getattr(reduced, name).data = p.detach().to(layer.__dict__["_reduced_dtype"])
        _reduce(reduced, layer.__dict__["_reduced_dtype"])
        layer.__dict__["_reduced"] = (_weights_key(layer), reduced)
    return reduced(*args, **kwargs)


def _one_column_in_fp32(conv: nn.Conv2d, forward, x, *args, **kwargs):
    """``conv``'s ``forward``, in float32 where its output is one column wide and taller than one
    row: oneDNN's CPU bf16 convolution gets that shape wrong from about 256 channels (relative
    errors over 1, NaN; PyTorch 2.14.1: a 384-channel 4x4 stride-2 convolution of a 6x2 map), which
    a U-Net meets on images 2**levels times taller than wide. Returns the layer's (reduced) dtype, as
    autocast would."""
    reduced = conv.weight.dtype in (torch.bfloat16, torch.float16) or torch.is_autocast_enabled(x.device.type)
    if x.dim() == 4 and reduced and not isinstance(conv.padding, str):
        ho, wo = conv_output_size(conv, x.shape[2], x.shape[3])
        if wo == 1 and ho > 1:
            with torch.autocast(x.device.type, enabled=False):
                bias = None if conv.bias is None else conv.bias.float()
                return conv._conv_forward(x.float(), conv.weight.float(), bias).to(conv.weight.dtype)
    return forward(x, *args, **kwargs)


def _float_output(module, inputs, output):
    if isinstance(output, torch.Tensor) and output.is_floating_point():
        return output.float()
    return None


def input_channels(net) -> int:
    """The image channels ``net`` reads: its first convolution's input channels (less a latent
    code's ``nz`` and a code map's ``region_nc``); 3 for a wrapper function (StarGAN's label,
    BicycleGAN's code)."""
    if isinstance(net, nn.Module):
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                return m.in_channels - int(getattr(net, "nz", 0) or 0) - int(getattr(net, "region_nc", 0) or 0)
    return 3


LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's convert("L")


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """NCHW ``x`` as ``channels`` channels: RGB to luma, grey to RGB; otherwise unchanged."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 3 and channels == 1:
        w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    if x.shape[1] == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    return x


TEST_MODES = ("paper", "deterministic", "eval")


def set_norm_mode(net: nn.Module, mode: str) -> None:
    """pix2pix test-time behaviour: ``paper`` = batch statistics and dropout on (as in the paper),
    ``deterministic`` = batch statistics, dropout off, ``eval`` = running statistics, no dropout.
    Batch statistics are used without updating the running ones. Layers already in the mode are
    left alone (it runs before every render)."""
    batch, dropout = mode != "eval", mode == "paper"
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.training != batch:
                m.train(batch)
            if m.track_running_stats == batch:
                m.track_running_stats = not batch
        elif isinstance(m, nn.Dropout) and m.training != dropout:
            m.train(dropout)


def upscale_tiled(net: nn.Module, x: torch.Tensor, scale: int, tile: int, overlap: int) -> np.ndarray:
    """``net`` (an x``scale`` upsampler) over ``x`` (1CHW) in tiles of ``tile`` input pixels that
    overlap by ``overlap`` on each side; only each tile's core is kept, so the seams see the same
    context as an untiled pass. Memory stays bounded by the tile; the result is uint8 HWC."""
    return to_uint8(upscale_tiled_tensor(net, x, scale, tile, overlap)[0])


def upscale_tiled_tensor(net: nn.Module, x: torch.Tensor, scale: int, tile: int, overlap: int) -> torch.Tensor:
    """:func:`upscale_tiled` for a batch, as a float NCHW tensor (the same tiles, the same cores)."""
    return tiled_tensor(net, x, scale, max(1, tile - 2 * overlap), overlap)


def tiled_tensor(fn, x: torch.Tensor, scale: int, step, overlap: int, blend: bool = False) -> torch.Tensor:
    """``fn`` (an image function that enlarges ``scale`` times) over ``x`` (NCHW) in tiles: cores of
    ``step`` input pixels (an int, or (height, width)), each run with ``overlap`` pixels of context on
    every side. Without ``blend`` only each core is kept: its seams see the same context as an
    untiled pass, which is exact for a net whose pixels depend on nearby pixels only. With
    ``blend`` neighbouring tiles cross-fade over the middle half of their shared ``2 * overlap``
    pixels and each tile's outer ``overlap / 2`` pixels are dropped: a net that draws something at
    its input's border (zero padding) or normalises per input hides it in the blend, not a seam."""
    n, _, h, w = x.shape
    sh, sw = (step, step) if isinstance(step, int) else step
    out = total = None
    for y0 in range(0, h, sh):
        for x0 in range(0, w, sw):
            y1, x1 = min(y0 + sh, h), min(x0 + sw, w)
            ya, xa, yb, xb = max(0, y0 - overlap), max(0, x0 - overlap), min(h, y1 + overlap), min(w, x1 + overlap)
            o = fn(x[:, :, ya:yb, xa:xb])
            if out is None:
                out = (o.new_zeros if blend else o.new_empty)(n, o.shape[1], h * scale, w * scale)
                total = o.new_zeros(h * scale, w * scale) if blend else None
            if blend:
                weight = (_fade(o.shape[-2], overlap * scale, ya > 0, yb < h, o)[:, None]
                          * _fade(o.shape[-1], overlap * scale, xa > 0, xb < w, o))
                out[:, :, ya * scale:yb * scale, xa * scale:xb * scale] += o * weight
                total[ya * scale:yb * scale, xa * scale:xb * scale] += weight
            else:
                out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                    o[:, :, (y0 - ya) * scale:(y1 - ya) * scale, (x0 - xa) * scale:(x1 - xa) * scale]
    return out / total if blend else out


def _fade(n: int, overlap: int, start: bool, end: bool, like: torch.Tensor) -> torch.Tensor:
    """A tile's (n,) weights along one axis: at a ``start`` or ``end`` shared with a neighbour, 0
    over the outer ``overlap / 2`` pixels, then rising linearly to 1 over ``overlap`` (the
    neighbour's weights fall as these rise: they sum to 1); 1 towards the image's own border."""
    weight = like.new_ones(n)
    if overlap > 0:
        i = torch.arange(n, device=like.device, dtype=like.dtype) + 0.5
        for near, side in ((start, i), (end, n - i)):
            if near:
                weight = torch.minimum(weight, ((side - overlap / 2) / overlap).clamp(0, 1))
    return weight


def resolution_control(card: dict, default: str = "native") -> Control:
    """The ``resolution`` control of a fully convolutional translator: native (the image at its own
    size and aspect) or training (resized to the model's training size and back, as before); a
    card's ``inference.resolution`` sets the default (else ``default``)."""
    return Control("resolution", "choice", card.get("inference", {}).get("resolution", default), "Resolution",
                   "native: the image at its own size and aspect (padded to the network's multiple and cropped "
                   "back; large images in blended tiles); training: resized to the model's training size and back",
                   choices=list(RESOLUTIONS))


def pad_reflect(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """NCHW ``x`` mirrored outwards by the given pixels; a pad wider than the image mirrors the
    mirrored image again, and a side of one pixel is repeated."""
    while top or bottom or left or right:
        h, w = x.shape[-2:]
        if h < 2 or w < 2:
            return F.pad(x, (left, right, top, bottom), mode="replicate")
        t, b, lft, r = min(top, h - 1), min(bottom, h - 1), min(left, w - 1), min(right, w - 1)
        x = F.pad(x, (lft, r, t, b), mode="reflect")
        top, bottom, left, right = top - t, bottom - b, left - lft, right - r
    return x


def run_native(fn, x: torch.Tensor, multiple: int, max_pixels: int = NATIVE_MAX_PIXELS,
               overlap: int = NATIVE_OVERLAP, nets=()) -> torch.Tensor:
    """``fn`` (a same-size image function whose H and W must be multiples of ``multiple``) over
    ``x`` (NCHW) at x's own size: mirrored outwards to the next multiple (as evenly as possible on
    both sides), run, cropped back. When the padded image has more than ``max_pixels`` pixels it
    runs in blended tiles of about that many (:func:`tiled_tensor`) with ``overlap`` pixels of
    context, their corners on the multiple's grid so that each strided layer samples the same
    pixels as an untiled pass; the per-image normalisations in ``nets`` use statistics measured
    once on the whole image made small (:func:`shared_statistics`), not each tile's own. An image
    smaller than a net's ``min_size`` (a side under which its inner maps are too small for its
    reflection pads or instance norms) is mirrored out to it first."""
    h, w = x.shape[-2:]
    least = max([multiple] + [getattr(n, "min_size", 0) for n in nets])  # e.g. a ResNet: 2 px innermost
    ph, pw = max(-h % multiple, least - h), max(-w % multiple, least - w)
    top, left = ph // 2, pw // 2
    x = pad_reflect(x, top, ph - top, left, pw - left)
    H, W = x.shape[-2:]
    if H * W <= max_pixels:
        return fn(x)[:, :, top:top + h, left:left + w]
    step, overlap = native_tiles(H, W, multiple, max_pixels, overlap)
    with shared_statistics(nets, fn, thumbnail(x, max_pixels, multiple)):
        out = tiled_tensor(fn, x, 1, step, overlap, blend=True)
    return out[:, :, top:top + h, left:left + w]


def native_tiles(H: int, W: int, multiple: int, max_pixels: int, overlap: int = NATIVE_OVERLAP):
    """((core height, core width), context) of the fewest equal tiles of an H x W image (multiples
    of ``multiple``) whose windows, context included, have at most ``max_pixels`` pixels (of those,
    the squarest windows); the context is ``overlap``, at most a quarter of a tile's side, on the
    multiple's grid. Cores of one multiple when no tiling fits."""
    overlap = max(multiple, min(overlap, math.isqrt(max_pixels) // 4) // multiple * multiple)

    def axis(n, count):  # the core and the largest window along an axis of n pixels in count tiles
        core = -(-(-(-n // count)) // multiple) * multiple
        return core, min(n, core + overlap * min(2, count - 1))

    best, step = None, (multiple, multiple)
    for ny in range(1, H // multiple + 1):
        if best is not None and ny > best[0]:
            break
        core_h, window_h = axis(H, ny)
        for nx in range(1, W // multiple + 1):
            core_w, window_w = axis(W, nx)
            if window_h * window_w <= max_pixels:
                key = (-(-H // core_h) * -(-W // core_w), max(window_h, window_w) / min(window_h, window_w))
                if best is None or key < best:
                    best, step = key, (core_h, core_w)
                break
    return step, overlap


def thumbnail(x: torch.Tensor, max_pixels: int, multiple: int) -> torch.Tensor:
    """NCHW ``x`` resized (antialiased) to at most ``max_pixels`` pixels, its sides multiples of ``multiple``."""
    k = math.sqrt(max_pixels / (x.shape[-2] * x.shape[-1]))
    size = [max(multiple, int(n * k) // multiple * multiple) for n in x.shape[-2:]]
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(-1, 1)


def _per_image(m: nn.Module) -> bool:
    """Whether ``m`` normalises with its input's own statistics (instance norm, batch norm on batch
    statistics: pix2pix's paper and deterministic modes)."""
    if isinstance(m, nn.modules.instancenorm._InstanceNorm):
        return m.training or not m.track_running_stats
    return isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.training or m.running_mean is None)


@contextmanager
def shared_statistics(nets, fn, small: torch.Tensor):
    """While tiles of one image run: the per-image normalisations of ``nets`` (:func:`_per_image`)
    use the statistics that ``fn(small)`` (the whole image, small enough to run at once) measured
    instead of each tile's own, so that the tiles agree with one another and, closely, with an
    untiled pass (a tile of sky alone would otherwise be normalised as if it were a whole picture)."""
    norms = [m for net in nets for m in net.modules() if _per_image(m)]
    stats = {}

    def measure(m, inputs, output):
        x = inputs[0]
        dims = (2, 3) if isinstance(m, nn.modules.instancenorm._InstanceNorm) else (0, 2, 3)
        stats[m] = (x.mean(dims), x.var(dims, unbiased=False))

    if norms:
        hooks = [m.register_forward_hook(measure) for m in norms]
        try:
            fn(small)
        finally:
            for hook in hooks:
                hook.remove()
        for m, (mean, var) in stats.items():  # the nets fn ran
            m.forward = functools.partial(_normalise, m, mean, var)
    try:
        yield
    finally:
        for m in stats:
            del m.forward


def _normalise(m: nn.Module, mean: torch.Tensor, var: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    shape = (*mean.shape, 1, 1) if mean.dim() == 2 else (1, -1, 1, 1)
    y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + m.eps)
    return y * m.weight.view(1, -1, 1, 1) + m.bias.view(1, -1, 1, 1) if m.affine else y
