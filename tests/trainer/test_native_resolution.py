"""Native resolution (issue 28): fully convolutional translators run on an image at its own size
and aspect (padded to the network's multiple, cropped back, in blended tiles over a pixel budget)
unless ``resolution=training`` asks for the model's training size."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests import tiny_models
from trainer import inference
from trainer.cli import main
from trainer.errors import ControlError
from trainer.translator import run_native

KINDS = ("cyclegan", "stargan", "pix2pix", "pix2pix_photo")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("native")
    makers = {**{k: getattr(tiny_models, k) for k in ("cyclegan", "stargan", "pix2pix", "srresnet")},
              "pix2pix_photo": lambda path: tiny_models.pix2pix(path, task="photo2photo")}
    return {k: make(folder / f"{k}.safetensors") for k, make in makers.items()}


def picture(w, h, seed=0):
    """A smooth picture with edges (random blobs), not noise: what a photo's statistics look like."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((w, h), Image.BICUBIC)
    a = np.asarray(image).copy()
    a[h // 3:h // 2, w // 4:w // 2] = (230, 40, 40)
    return Image.fromarray(a)


def controls(kind, **extra):
    return {**({"mode": "eval"} if kind.startswith("pix2pix") else {}), **extra}


def test_defaults_native_except_sketch2photo_and_a_cards_say(tiny, tmp_path):
    defaults = {k: inference.load(tiny[k]).defaults()["resolution"] for k in KINDS}
    assert defaults == {"cyclegan": "native", "stargan": "native", "pix2pix": "training", "pix2pix_photo": "native"}
    assert "resolution" not in inference.load(tiny["srresnet"]).defaults()  # super-resolution: always native
    from trainer.modelfile import load_model, save_model
    tensors, card = load_model(tiny["cyclegan"])
    card.pop("format", None)
    save_model(tmp_path / "c.safetensors", tensors, {**card, "inference": {"resolution": "training"}})
    assert inference.load(tmp_path / "c.safetensors").defaults()["resolution"] == "training"


@pytest.mark.parametrize("kind", KINDS)
def test_the_output_has_the_inputs_odd_size_in_both_modes(tiny, kind):
    t = inference.load(tiny[kind])
    image = picture(37, 23)
    for resolution in ("native", "training"):
        out = t.run(image, resolution=resolution, **controls(kind))
        assert out.size == (37, 23), resolution
    t.max_pixels = 400  # tiled
    assert t.run(image, resolution="native", **controls(kind)).size == (37, 23)


@pytest.mark.parametrize("kind", KINDS)
def test_native_at_the_training_size_is_training_mode(tiny, kind):
    t = inference.load(tiny[kind])
    image = picture(32, 32, seed=1)
    for extra in ({}, {"mode": "paper", "seed": 3}) if kind.startswith("pix2pix") else ({},):
        native = t.run_array(image, resolution="native", **{**controls(kind), **extra})
        training = t.run_array(image, resolution="training", **{**controls(kind), **extra})
        assert np.abs(native.astype(int) - training.astype(int)).max() == 0, extra
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    fn = t.G["G_A"] if kind == "cyclegan" else t.G if kind != "stargan" else (lambda v: t.G(v, torch.ones(1, 5)))
    with torch.no_grad():
        torch.testing.assert_close(run_native(fn, x, t.multiple), fn(x), atol=1e-5, rtol=0)


def test_padding_and_tiles_are_cropped_back_exactly():
    """An identity net that insists on multiples of 8: the output is the input, untiled and tiled."""
    def net(t):
        assert t.shape[-2] % 8 == 0 and t.shape[-1] % 8 == 0, t.shape
        return t * 1.0
    x = torch.rand(2, 3, 23, 37) * 2 - 1
    torch.testing.assert_close(run_native(net, x, 8), x)
    torch.testing.assert_close(run_native(net, x, 8, max_pixels=200, overlap=8), x)  # many tiles
    one = torch.rand(1, 3, 1, 5)  # a side of one pixel (replicated, not reflected) and pads wider than the image
    torch.testing.assert_close(run_native(net, one, 8), one)


@pytest.mark.parametrize("kind", KINDS)
def test_padding_adds_no_border_of_its_own(tiny, kind):
    """A constant image mirrored to the multiple is the same constant, larger: the native output at
    37x23 is the network's output at the padded size, cropped; the only border is the network's own
    (which it has at its training size too)."""
    t = inference.load(tiny[kind])
    m = t.multiple
    pw, ph = -37 % m, -23 % m
    colour = (120, 150, 90)
    small = t.run_array(Image.new("RGB", (37, 23), colour), resolution="native", **controls(kind))
    large = t.run_array(Image.new("RGB", (37 + pw, 23 + ph), colour), resolution="native", **controls(kind))
    assert np.array_equal(small, large[ph // 2:ph // 2 + 23, pw // 2:pw // 2 + 37])


def tiled_vs_untiled(t, image, **values):
    """|tiled - untiled| (uint8 levels) with the budget one pixel under the padded image's."""
    untiled = t.run_array(image, **values).astype(int)
    m = t.multiple
    t.max_pixels = (-(-image.width // m) * m) * (-(-image.height // m) * m) - 1
    return np.abs(t.run_array(image, **values).astype(int) - untiled)


@pytest.mark.parametrize("kind", ["cyclegan", "stargan", "pix2pix_photo"])
def test_tiled_equals_untiled_just_over_the_budget(tiny, kind):
    """Random-weight nets amplify the small difference between the statistics of the image made
    small (which the tiles share) and the image's own; a trained one hardly does (below)."""
    diff = tiled_vs_untiled(inference.load(tiny[kind]), picture(100, 70, seed=2), **controls(kind))
    assert diff.mean() < 4 and np.percentile(diff, 99) < 16, (diff.mean(), np.percentile(diff, 99))


def test_tiled_equals_untiled_for_the_bundled_cyclegan():
    from trainer.api import sample_input
    t = inference.load(Path(__file__).parents[2] / "assets" / "models" / "shapes-cyclegan.safetensors")
    diff = tiled_vs_untiled(t, sample_input("photo", 3, 300).crop((0, 50, 300, 250)))
    assert diff.mean() < 1 and np.percentile(diff, 99) <= 4, (diff.mean(), np.percentile(diff, 99))


def test_stargan_training_mode_edits_the_centre_square_and_keeps_the_rest(tiny):
    t = inference.load(tiny["stargan"])
    image = picture(48, 32, seed=3)
    out = t.run_array(image, resolution="training", Blond_Hair=True)
    a = np.asarray(image)
    assert out.shape == (32, 48, 3)
    assert np.array_equal(out[:, :8], a[:, :8]) and np.array_equal(out[:, 40:], a[:, 40:])  # kept as it was
    square = t.run_array(image.crop((8, 0, 40, 32)), resolution="training", Blond_Hair=True)
    assert np.array_equal(out[:, 8:40], square)  # the centre crop, as training cropped, at the model's size
    tall = picture(32, 48, seed=4)
    out = t.run_array(tall, resolution="training", Male=True)
    assert np.array_equal(out[:8], np.asarray(tall)[:8]) and not np.array_equal(out[8:40], np.asarray(tall)[8:40])


def test_the_control_is_validated(tiny):
    t = inference.load(tiny["cyclegan"])
    with pytest.raises(ControlError, match="resolution.*native, training"):
        t.run(picture(40, 24), resolution="full")


def test_translate_takes_the_resolution_control(tiny, tmp_path, capsys):
    picture(37, 23).save(tmp_path / "in.png")
    for resolution in ("training", "native"):
        out = tmp_path / resolution
        assert main(["translate", str(tiny["cyclegan"]), str(tmp_path / "in.png"), "-o", str(out),
                     "--control", f"resolution={resolution}"]) == 0
        assert Image.open(out / "in.png").size == (37, 23)
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "training" / "in.png")),
                              np.asarray(Image.open(tmp_path / "native" / "in.png")))
    assert main(["translate", str(tiny["cyclegan"]), str(tmp_path / "in.png"), "-o", str(tmp_path / "x"),
                 "--control", "resolution=full"]) == 2
    assert "native, training" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["shapes-cyclegan", "faces-attributes"])
@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 500), (500, 3), (7, 5)])
def test_tiny_and_thin_images_translate_natively(name, shape):
    """A ResNet or StarGAN generator's inner maps need 2 px a side (reflection pads, instance norm):
    smaller images are mirrored out to the net's min_size, run and cropped back to their size."""
    from trainer import api
    t = api.load_model(Path(__file__).resolve().parents[2] / "assets" / "models" / f"{name}.safetensors", "cpu")
    image = (np.random.default_rng(0).random((*shape, 3)) * 255).astype(np.uint8)
    out = t.run_array(image)
    assert out.shape == (*shape, 3) and out.dtype == np.uint8
