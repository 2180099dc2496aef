"""A new method in one file (issue 27): tests/plugins/toy_method.py, loaded as a plugin
(GAN_STUDIO_PLUGINS) with a preset in a folder of its own (GAN_STUDIO_PRESET_PATH), with no other
file of the repository touched, is listed by ``gan-trainer presets``, trains two steps, exports,
shows its declared control in ``gan-trainer inspect``, translates with ``gan-trainer translate`` and
loads through the studio's door (trainer.api) with that control."""
import os
import subprocess
import sys

from PIL import Image

from tests.conftest import ROOT

PLUGINS = ROOT / "tests" / "plugins"
PRESET = """description = "a one-convolution toy that learns to give back its input"
method = "toy_one_conv"

[train]
steps = 2
batch_size = 2
log_every = 1
sample_every = 1
checkpoint_every = 2
precision = "off"
device = "cpu"
threads = 1

[data]
synth = "faces"
synth_n = 8
image_size = 16
num_workers = 0

[model]
kernel = 3
"""


def gan_trainer(env, *args):
    result = subprocess.run([sys.executable, "-m", "trainer.cli", *map(str, args)], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def test_a_method_in_one_file_lists_trains_exports_inspects_and_translates(tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "toy-preset.toml").write_text(PRESET)
    env = {**os.environ, "GAN_STUDIO_PLUGINS": "toy_method", "GAN_STUDIO_PRESET_PATH": str(presets),
           "PYTHONPATH": os.pathsep.join([str(PLUGINS), str(ROOT), os.environ.get("PYTHONPATH", "")])}

    listed = gan_trainer(env, "presets").splitlines()
    header = listed.index("toy_one_conv (photo2photo)")
    assert listed[header + 1].split()[0] == "toy-preset" and "pix2pix-sketches" in "\n".join(listed)

    run_dir = tmp_path / "run"
    gan_trainer(env, "train", "toy-preset", "--run-dir", run_dir, "--no-progress")
    model = tmp_path / "toy.safetensors"
    gan_trainer(env, "export", run_dir, "-o", model)
    assert model.is_file()

    inspected = gan_trainer(env, "inspect", model)
    assert "toy_one_conv" in inspected and "strength" in inspected and "from 0 to 1" in inspected

    Image.new("RGB", (20, 12), (200, 40, 40)).save(tmp_path / "in.png")
    gan_trainer(env, "translate", model, tmp_path / "in.png", "-o", tmp_path / "out", "--control", "strength=0.5")
    with Image.open(tmp_path / "out" / "in.png") as out:
        assert out.size == (20, 12)

    studio = subprocess.run([sys.executable, "-c", STUDIO, str(model), str(tmp_path / "s.ini")], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert studio.returncode == 0, studio.stderr
    page, controls, shown = studio.stdout.strip().splitlines()[-3:]
    assert page == "photo"  # its task (photo2photo) picks the generic page
    assert controls == "['strength']"  # the page's panel is built from the declared control
    assert shown == "(20, 12)"  # and renders the opened photo at its own size


# The studio, offscreen, as a user would: add the model to the library, open a photo, read the page.
STUDIO = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
app = QApplication([])
from studio.app import MainWindow, wait_for_renders
w = MainWindow(QSettings(sys.argv[2], QSettings.IniFormat), scan_user=False)
w.confirm_imports = False
assert w.add_model(sys.argv[1])
page = w.page()
from PIL import Image
photo = os.path.join(os.path.dirname(sys.argv[2]), "in.png")
assert w.open_image(photo)
wait_for_renders(app, w, page)
print(page.name)
print(sorted(page.panel.widgets))
print(page.output_view.array.shape[1::-1])
w.close()
"""


def test_without_the_plugin_the_preset_is_listed_as_unreadable(tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "toy-preset.toml").write_text(PRESET)
    env = {**os.environ, "GAN_STUDIO_PRESET_PATH": str(presets)}
    env.pop("GAN_STUDIO_PLUGINS", None)
    listed = gan_trainer(env, "presets")
    assert "unknown method" in listed and "toy-preset" in listed and "unknown method 'toy_one_conv'" in listed
