"""Every error class of the engine, defined once (the lowest layer: it imports nothing of the project).

Each is raised with a message that names what is wrong and what to do; the CLI prints the message
on one line and exits with code 2, the studio shows it. The modules that raise them re-export them
(``from trainer.config import ConfigError`` keeps working).
"""
from __future__ import annotations

import errno


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the key and what is wrong."""


class ControlError(ValueError):
    """A control value that is unknown, not finite, of the wrong type or out of range; the message
    names the control and gives its allowed values (the CLI prints it and exits with code 2)."""


class ModelFileError(ValueError):
    """A file that is not a usable GAN Studio model file; the message says why and what to do."""


class ImageError(ValueError):
    """A file that cannot be used as an image; the message names the file and the reason."""


class AttributeFileError(ValueError):
    """A malformed attribute file (CelebA's list_attr_celeba.txt layout); the message names the
    file and the line."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (damaged, truncated, or refused as unsafe)."""


class DiskFullError(OSError):
    """A write failed because the disk (or the user's quota) is full; the message says what was
    being written and that the earlier state is kept."""

    def __init__(self, message: str):
        super().__init__(errno.ENOSPC, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class CheckpointImportError(ValueError):
    """A reference checkpoint that cannot be imported (``gan-trainer import``); the message says why."""


class ExportRefused(ValueError):
    """A model that has no equivalent in the requested reference format; the message says why."""


class OnnxExportError(ValueError):
    """An ONNX export that cannot be done here (packages missing, an option the model lacks)."""


class EvaluationError(ValueError):
    """A model or dataset that this evaluation cannot score; the message says why."""


class VGGWeightsError(ValueError):
    """The VGG weights file (for a perceptual loss) is missing or does not fit the architecture."""


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite; training stops at once instead of going on silently."""


class LossBlowUp(NonFiniteLoss):
    """A loss stayed finite but grew by orders of magnitude (a diverging run): it stops as a NaN does."""


#: the errors a command reports as one line (exit code 2) rather than a traceback
USER_ERRORS = (ConfigError, ControlError, ModelFileError, ImageError, CheckpointError, DiskFullError,
               CheckpointImportError, ExportRefused, OnnxExportError, EvaluationError, VGGWeightsError,
               NonFiniteLoss)
