import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
REFERENCE_KEYS = FIXTURES / "reference-keys"  # the reference networks' state-dict keys and shapes
USER_SKETCHES = FIXTURES / "user-sketches"  # sketches drawn with a mouse on the studio's canvas


def pytest_configure(config):
    """The GUI tests need pytest-qt: without it they would be skipped silently, so refuse to run."""
    try:
        import pytestqt  # noqa: F401
    except ImportError:
        raise pytest.UsageError("pytest-qt is not installed: install the test extras, "
                                "pip install -e '.[test]' (or run `make test`)") from None


@pytest.fixture(scope="session", autouse=True)
def _cache(tmp_path_factory):
    """Procedural datasets made by tests go to a temporary cache, never the user's."""
    os.environ["GAN_STUDIO_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


@pytest.fixture(scope="session")
def sketches32(tmp_path_factory):
    """A tiny aligned sketches dataset (32 px, 40 pairs)."""
    from trainer.data.synth import synthesize
    return synthesize("sketches", tmp_path_factory.mktemp("data") / "sketches32", n=40, size=32, workers=1)


@pytest.fixture
def window(qtbot, tmp_path):
    """The studio's main window at its default size, with settings of its own, shown offscreen."""
    from PySide6.QtCore import QSettings

    from studio.app import MainWindow
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat), scan_user=False)
    w.confirm_imports = False
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    yield w
    w.close()


def tiny_overrides(root, steps=12, **extra):
    """--set overrides for a 32 px pix2pix run that takes seconds."""
    base = {"data.root": str(root), "data.image_size": 32, "data.load_size": 36, "train.steps": steps,
            "train.batch_size": 2, "train.decay_steps": 0, "train.log_every": 1, "train.sample_every": 6,
            "train.checkpoint_every": 6, "train.precision": "off", "train.device": "cpu",
            "data.num_workers": 0, "model.ngf": 8, "model.ndf": 8, "train.threads": 1}
    base.update(extra)
    return [f"{k}={v!r}" if isinstance(v, str) else f"{k}={str(v).lower() if isinstance(v, bool) else v}"
            for k, v in base.items()]


def run_cli(*args):
    """Run gan-trainer in a fresh interpreter; returns the CompletedProcess."""
    import subprocess
    return subprocess.run([sys.executable, "-m", "trainer", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=600)


@pytest.fixture(scope="session")
def vgg_file(tmp_path_factory):
    """``vgg_file("vgg16")``: a torchvision-format state dict of random weights, written once."""
    import torch
    import torchvision
    folder = tmp_path_factory.mktemp("vgg")

    def make(arch):
        path = folder / f"{arch}.pth"
        if not path.exists():
            torch.manual_seed(0)
            torch.save(getattr(torchvision.models, arch)().state_dict(), path)
        return path
    return make


def domain_verdict(qtbot, window, page, path):
    """Open ``path`` in ``window`` and wait for ``page``'s out-of-domain verdict on it: the one-line
    warning, or None; the output view shows the same line."""
    channel = page.channel("domain")
    stamp = page.latest.get(channel, 0)
    assert window.open_image(path)
    qtbot.waitUntil(lambda: page.latest.get(channel, 0) > stamp and page.settled(), timeout=120000)
    assert page.output_view.warning == (page.domain_warning or "")
    return page.domain_warning
