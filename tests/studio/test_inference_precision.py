"""The inference precision preference: stored in QSettings, handed to the worker's lanes, which load
(and cache) models in it; the status bar names the precision of the page's model."""
import pytest
import torch
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDialog

from studio import app as studio_app
from studio.preferences import Preferences, inference_precision
from studio.workers import DEFAULT_PRECISION, InferenceWorker
from tests import tiny_models
from trainer import device


@pytest.fixture(scope="module")
def stargan(tmp_path_factory):
    return tiny_models.stargan(tmp_path_factory.mktemp("models") / "stargan.safetensors")


@pytest.fixture(autouse=True)
def native_bf16(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)  # auto means bf16, whatever this CPU is


def loaded(qtbot, window, path):
    page = window.pages["attributes"]
    assert window.add_model(path)
    qtbot.waitUntil(lambda: page.info is not None and page.info.path == str(path), timeout=60000)
    qtbot.waitUntil(page.settled, timeout=60000)
    window.tabs.setCurrentWidget(page)
    return page


def test_the_stored_preference_reaches_the_worker_and_unknown_values_read_as_auto(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)
    assert inference_precision(settings) == DEFAULT_PRECISION == "auto"
    settings.setValue("inference_precision", "fp8")
    assert inference_precision(settings) == "auto"
    settings.setValue("inference_precision", "fp32")
    w = studio_app.MainWindow(settings, scan_user=False)
    try:
        assert w.worker.precision == "fp32"
    finally:
        w.close()


def test_the_dialog_offers_and_stores_the_inference_precision(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)
    settings.setValue("device", "cpu")
    dialog = Preferences(settings)
    qtbot.addWidget(dialog)
    choices = [dialog.inference_precision.itemText(i) for i in range(dialog.inference_precision.count())]
    assert choices == ["auto", "fp32", "bf16"] and dialog.inference_precision.currentText() == "auto"
    dialog.inference_precision.setCurrentText("fp32")
    dialog.store(settings)
    assert settings.value("inference_precision") == "fp32"


def test_the_page_model_runs_in_the_chosen_precision_and_the_status_bar_says_so(qtbot, window, stargan,
                                                                                  monkeypatch):
    page = loaded(qtbot, window, stargan)
    assert page.info.precision == "bf16" and "auto" in page.info.precision_note  # the default, auto
    lane = window.worker.lanes["attributes"][0]
    assert lane._translator(str(stargan)).dtype == torch.bfloat16
    window._update_actions()
    assert window.model_label.text().endswith("(bf16)")

    class Choose(Preferences):  # the dialog, answered: fp32
        def exec(self):
            self.inference_precision.setCurrentText("fp32")
            return QDialog.Accepted

    monkeypatch.setattr(studio_app, "Preferences", Choose)
    window.preferences()
    assert window.settings.value("inference_precision") == "fp32" and window.worker.precision == "fp32"
    qtbot.waitUntil(lambda: page.info is not None and page.info.precision == "fp32", timeout=60000)
    assert lane._translator(str(stargan)).dtype is None  # reloaded: the cache key holds the precision
    window._update_actions()
    assert window.model_label.text().endswith("(fp32)") and "fp32 (asked)" in window.model_label.toolTip()


def test_configure_keeps_the_models_unless_device_or_precision_change(qtbot):
    worker = InferenceWorker("cpu", 1, "auto")
    forgotten = []
    lane = worker.lane("x")
    lane.forget_models = lambda: forgotten.append(1)
    try:
        worker.configure("cpu", 2)  # threads only
        assert forgotten == [] and worker.precision == "auto"
        worker.configure("cpu", 2, "fp32")
        assert forgotten == [1] and worker.precision == "fp32"
    finally:
        worker.stop()
