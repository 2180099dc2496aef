"""The Preferences dialog: where models run (device), CPU threads per page for inference, the
precision models run in (inference) and that of training jobs started here; the choices live in
QSettings ("device", "threads", "inference_precision", "precision")."""
from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QSpinBox

from studio.workers import DEFAULT_PRECISION, DEFAULT_THREADS
from trainer import api


class Preferences(QDialog):
    def __init__(self, settings: QSettings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        form = QFormLayout(self)
        self.device = QComboBox(toolTip="Where models run: auto picks CUDA, then MPS, then the CPU")
        self.device.addItems(["auto", "cpu", "cuda", "mps"])
        self.device.setCurrentText(settings.value("device", "auto"))
        self.threads = QSpinBox(minimum=0, maximum=256,
                                toolTip=f"CPU threads per page for inference (0: PyTorch's default; {DEFAULT_THREADS} "
                                        "keeps drawing fast while other work shares the cores)")
        self.threads.setValue(int(settings.value("threads", DEFAULT_THREADS)))
        self.inference_precision = QComboBox(
            toolTip="The precision models run in: auto uses bf16 where this machine computes it natively and the "
                    "model's output stays within 2/255 of fp32 (faster drawing); fp32 keeps full precision")
        self.inference_precision.addItems(api.inference_precisions(settings.value("device", "auto")))
        self.inference_precision.setCurrentText(inference_precision(settings))
        self.precision = QComboBox(toolTip="Training precision for jobs started here (auto: bf16 where supported)")
        self.precision.addItems(["auto", "off", "bf16", "fp16"])
        self.precision.setCurrentText(settings.value("precision", "auto"))
        form.addRow("Device", self.device)
        form.addRow("Threads", self.threads)
        form.addRow("Inference precision", self.inference_precision)
        form.addRow("Training precision", self.precision)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def store(self, settings: QSettings) -> None:
        """Keep the dialog's choices in ``settings``."""
        settings.setValue("device", self.device.currentText())
        settings.setValue("threads", self.threads.value())
        settings.setValue("inference_precision", self.inference_precision.currentText())
        settings.setValue("precision", self.precision.currentText())


def device_text(settings: QSettings) -> str:
    """The status bar's "Device: ..." for the chosen device: what it resolves to here, or why it is
    not available."""
    try:
        device = api.resolve_device(settings.value("device", "auto"))
    except (ValueError, RuntimeError) as e:
        device = f"unavailable ({e})"
    return f"Device: {device}"


def inference_precision(settings: QSettings) -> str:
    """The stored inference precision (auto when none is, or an unknown one)."""
    value = settings.value("inference_precision", DEFAULT_PRECISION)
    return value if value in api.INFERENCE_PRECISIONS else DEFAULT_PRECISION
