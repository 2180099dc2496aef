"""The engine never imports Qt or the studio (DESIGN.md: two packages, one direction)."""
import subprocess
import sys

from tests.conftest import ROOT

CHECK = """
import importlib, pkgutil, sys
import trainer
for info in pkgutil.walk_packages(trainer.__path__, "trainer."):
    if info.name != "trainer.__main__":
        importlib.import_module(info.name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "studio"))
print(len([m for m in sys.modules if m.startswith("trainer.")]), bad)
"""


def test_trainer_imports_no_qt():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    count, bad = out.stdout.strip().split(" ", 1)
    assert int(count) > 30  # every module was imported
    assert bad == "[]", bad


def test_qt_binding_keeps_none_alive():
    """PySide6 6.12.0 decrefs None on every void method call; on Python < 3.12 a long-running
    studio then dies with 'none_dealloc'. Guard against any binding that does."""
    import sys

    from PySide6.QtWidgets import QApplication, QLabel, QPushButton
    _ = QApplication.instance() or QApplication([])
    b, label = QPushButton(), QLabel()
    before = sys.getrefcount(None)
    for _ in range(1000):
        b.setEnabled(True)
        label.setText("x")
    assert sys.getrefcount(None) - before > -100
