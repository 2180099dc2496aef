"""Devices and mixed precision: ``auto`` picks CUDA, then MPS, then the CPU; bf16 autocast where the
hardware computes it natively, fp16 with a gradient scaler on CUDA when asked. Inference has its
own choices (:data:`INFERENCE_PRECISIONS`, :func:`inference_dtype`), which a Translator applies."""
from __future__ import annotations

import contextlib
import functools
import os

import torch

from trainer.precisions import INFERENCE_PRECISIONS, PRECISIONS


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", 0))
            return torch.device("cuda", local % max(1, torch.cuda.device_count()))
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but this torch sees no CUDA GPU (use device=auto or cpu)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device mps was asked for, but MPS is not available here")
    return device


@functools.lru_cache(maxsize=None)
def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX-512 BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``, or None for full fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "off":
        return None
    if precision == "fp16":
        if device.type not in ("cuda", "mps"):
            raise ValueError("fp16 autocast needs a GPU; use bf16 or off on the CPU")
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    # auto
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def check_inference_precision(precision) -> str:
    """``precision`` as one of :data:`INFERENCE_PRECISIONS` ("off" is "fp32"); a ValueError naming
    the choices for anything else."""
    name = "fp32" if precision == "off" else precision
    if not isinstance(name, str) or name not in INFERENCE_PRECISIONS:
        raise ValueError(f"unknown inference precision {precision!r}; choose one of "
                         f"{', '.join(INFERENCE_PRECISIONS)} (off: fp32)")
    return name


def inference_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype a Translator runs its nets in for ``precision`` on ``device``, None for fp32:
    :func:`resolve_precision`'s choice (auto: bf16 on a CPU that computes it natively and on CUDA,
    fp16 on a GPU without bf16, fp32 elsewhere; bf16 as asked; fp16 on a GPU only). ValueError for
    an unknown precision (naming the choices) or fp16 on the CPU."""
    name = check_inference_precision(precision)
    return resolve_precision("off" if name == "fp32" else name, torch.device(device))


def precision_name(dtype: torch.dtype | None) -> str:
    """"fp32", "bf16" or "fp16" for an :func:`inference_dtype`."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def use_channels_last(setting: str, device: torch.device) -> bool:
    if setting == "on":
        return True
    if setting == "off":
        return False
    if setting != "auto":
        raise ValueError(f"channels_last must be auto, on or off, got {setting!r}")
    # On CUDA (tensor cores) channels_last is a clear win; on the CPU oneDNN's reorders of
    # channels_last weights cost more than they save (bench/train_step.py: 0.68 vs 0.58 s/step).
    return device.type == "cuda"


WINOGRAD_MIN_STEPS = 200  # auto: a shorter run spends more compiling the kernels (5-50 s each) than they save


def use_winograd(setting: str, device: torch.device, amp_dtype, steps: int = WINOGRAD_MIN_STEPS) -> bool:
    """Whether residual blocks' 3x3 and PatchGAN's stride-1 4x4 convolutions run by Winograd's
    minimal filtering (trainer.nets.winograd): ``on``, ``off``, or ``auto`` = on the CPU in float32
    (``amp_dtype`` None) for a run of at least ``WINOGRAD_MIN_STEPS`` steps (``steps``, the run's
    total), where it makes those layers 1.2-1.45x faster; CUDA's cuDNN picks its own algorithms, and
    in bf16 oneDNN's kernels are faster. The layers check the rest at each call (float32, outside
    autocast, large enough; with or without gradients, as StarGAN's D step makes its fakes without).
    Raises ValueError for another value."""
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"winograd must be auto, on or off, got {setting!r}")
    return setting == "on" or (setting == "auto" and device.type == "cpu" and amp_dtype is None
                               and steps >= WINOGRAD_MIN_STEPS)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({device})"
    return str(device)
