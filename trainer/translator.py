"""A loaded model file as a :class:`Translator`, the runtime every method's exported model has:
``card`` (the model file's metadata), declared ``controls`` (:mod:`trainer.controls`) and
``run(image=None, **controls) -> PIL.Image``. The studio builds its panels from ``controls``, so a
new method needs no new widget code. Each method module defines its Translator subclass (its
``Translator`` attribute); :func:`trainer.inference.load` picks it by the card.

Also the helpers the translators share: :func:`build_net` (a net of the card with its weights),
channel matching (:func:`input_channels`, :func:`match_channels`), pix2pix's test-time
normalisation modes (:data:`TEST_MODES`, :func:`set_norm_mode`) and tiled upscaling
(:func:`upscale_tiled`, :func:`upscale_tiled_tensor`).

Images go in as PIL images, paths or uint8 arrays (any size and mode: :func:`trainer.data.imageio.open_image`)
and come out as uint8 HWC arrays or PIL images; tensors are float NCHW in [-1, 1].
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from trainer.controls import SEED_MAX, Control, ControlError
from trainer.data.imageio import open_image
from trainer.data.transforms import to_tensor, to_uint8
from trainer.errors import OnnxExportError
from trainer.modelfile import load_strict, subdict
from trainer.nets import build

__all__ = ["Translator", "Control", "ControlError", "SEED_MAX", "build_net", "input_channels", "match_channels",
           "LUMA", "TEST_MODES", "set_norm_mode", "upscale_tiled", "upscale_tiled_tensor"]


def build_net(card: dict, tensors: dict, name: str, device) -> nn.Module:
    """Net ``name`` of the card (``card["nets"][name]``: its network name and constructor
    arguments) with its weights (the tensors under ``name.``) on ``device``; a
    :class:`~trainer.errors.ModelFileError` names a missing, unexpected or misshapen key."""
    spec = card["nets"][name]
    net = build(spec["name"], **spec["args"])
    load_strict(net, subdict(tensors, name), f"model file net {name}")
    return net.to(device)


class Translator:
    """An exported model at run time. Built as ``Translator(card, tensors, device)`` from a model
    file's card and tensors (:func:`trainer.modelfile.load_model`); a card or tensors that do not
    fit raise :class:`~trainer.errors.ModelFileError`.

    A subclass declares :attr:`controls` (a class list, or an instance list built from the card)
    and implements :meth:`forward_array` (image in, uint8 HWC array out) and, for the tensor API,
    :meth:`forward_tensor` with its :attr:`tensor_args`; a generator from noise sets
    :attr:`needs_image` False. :meth:`run` / :meth:`run_array` / :meth:`run_tensor` check the
    controls (:class:`~trainer.errors.ControlError`) before anything runs."""

    controls: list[Control] = []

    def __init__(self, card: dict, tensors: dict, device="cpu"):
        self.card = card
        self.device = torch.device(device)
        self.image_size = int(card.get("image_size", 256))  # the training resolution, pixels per side

    @property
    def needs_image(self) -> bool:
        """True when :meth:`run` translates an image; False for a generator from seeds."""
        return True

    def defaults(self) -> dict:
        return {c.name: c.default for c in self.controls}

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
        """The output as a uint8 HWC array (what the studio's worker hands to the UI thread)."""
        values = self.check_controls(controls)
        if self.needs_image and image is None:
            raise ValueError("this model translates an image: pass image=")
        if isinstance(image, np.ndarray):  # uint8 HW or HWC (the studio's canvas)
            image = Image.fromarray(np.ascontiguousarray(image))
        with torch.inference_mode():
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
        channels) on the translator's device. Unlike :meth:`run`, nothing is resized: the network
        runs at x's own size. Controls as for :meth:`run`, checked the same way; :attr:`tensor_args`
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
        with torch.no_grad():
            out = self.forward_tensor(x, extra, **values).clamp(-1, 1)
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

    def through(self, image: Image.Image, *nets) -> np.ndarray:
        """``image`` resized to the model's size, through ``nets`` in turn, back to the image's size.
        A one-channel net gets the image's luma; a one-channel result comes back as grey RGB."""
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


def input_channels(net) -> int:
    """The image channels ``net`` reads: its first convolution's input channels (less a latent
    code's ``nz``); 3 for a wrapper function (StarGAN's label, BicycleGAN's code)."""
    if isinstance(net, nn.Module):
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                return m.in_channels - int(getattr(net, "nz", 0) or 0)
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
    Batch statistics are used without updating the running ones."""
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train(mode != "eval")
            m.track_running_stats = mode == "eval"
        elif isinstance(m, nn.Dropout):
            m.train(mode == "paper")


def upscale_tiled(net: nn.Module, x: torch.Tensor, scale: int, tile: int, overlap: int) -> np.ndarray:
    """``net`` (an x``scale`` upsampler) over ``x`` (1CHW) in tiles of ``tile`` input pixels that
    overlap by ``overlap`` on each side; only each tile's core is kept, so the seams see the same
    context as an untiled pass. Memory stays bounded by the tile; the result is uint8 HWC."""
    return to_uint8(upscale_tiled_tensor(net, x, scale, tile, overlap)[0])


def upscale_tiled_tensor(net: nn.Module, x: torch.Tensor, scale: int, tile: int, overlap: int) -> torch.Tensor:
    """:func:`upscale_tiled` for a batch, as a float NCHW tensor (the same tiles, the same cores)."""
    n, _, h, w = x.shape
    out = None
    step = max(1, tile - 2 * overlap)
    for y0 in range(0, h, step):
        for x0 in range(0, w, step):
            y1, x1 = min(y0 + step, h), min(x0 + step, w)
            ya, xa, yb, xb = max(0, y0 - overlap), max(0, x0 - overlap), min(h, y1 + overlap), min(w, x1 + overlap)
            o = net(x[:, :, ya:yb, xa:xb])
            if out is None:
                out = o.new_empty(n, o.shape[1], h * scale, w * scale)
            out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                o[:, :, (y0 - ya) * scale:(y1 - ya) * scale, (x0 - xa) * scale:(x1 - xa) * scale]
    return out
