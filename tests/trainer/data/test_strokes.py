"""Stroke width is not the user's problem (GitHub issue 31): the engine measures the width of a
sketch's lines at the input's own resolution and brings them to the training width before the
bundled sketch2photo sees them, so a drawing made with any brush, or a scan of thin pen lines,
gives the same object. docs/sketch-strokes.md has the measurements."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

from tests.drawings import DRAWINGS
from trainer import inference
from trainer.data.sketches import render
from trainer.data.shapes import KINDS
from trainer.data.stroke_width import THIN_TO, TRAINING_WIDTH, estimate, normalise
from trainer.evaluators import Evaluator
from trainer.modelfile import load_model
from tests.conftest import ROOT

MODEL = ROOT / "assets" / "models" / "sketch2photo.safetensors"
SEEDS = 4  # colourings per drawing (the bundled model is BicycleGAN)




def drawing(kind, width, size=512, ink=0, paper=255, supersample=4):
    """``kind`` drawn with a round pen ``width`` px wide at ``size``, antialiased (drawn 4x larger)."""
    s = size * supersample
    image = Image.new("L", (s, s), paper)
    draw = ImageDraw.Draw(image)
    for stroke in DRAWINGS[kind]:
        points = [(x * s, y * s) for x, y in stroke]
        draw.line(points, fill=ink, width=max(1, round(width * supersample)), joint="curve")
        r = width * supersample / 2
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=ink)
    return image.resize((size, size), Image.LANCZOS).convert("RGB")


def lines_at_angles(width, size=512):
    """A ring and strokes at 0 to 90 degrees, ``width`` px wide, antialiased."""
    s = size * 4
    image = Image.new("L", (s, s), 255)
    draw = ImageDraw.Draw(image)
    w = max(1, round(width * 4))
    draw.ellipse((0.2 * s, 0.1 * s, 0.6 * s, 0.5 * s), outline=0, width=w)
    for k, angle in enumerate((0, 22.5, 45, 67.5, 90)):
        a = math.radians(angle)
        cx, cy = (0.15 + 0.175 * k) * s, 0.75 * s
        draw.line([(cx - 0.07 * s * math.cos(a), cy - 0.07 * s * math.sin(a)),
                   (cx + 0.07 * s * math.cos(a), cy + 0.07 * s * math.sin(a))], fill=0, width=w)
    return image.resize((size, size), Image.LANCZOS).convert("RGB")


@pytest.fixture(scope="module")
def translator():
    return inference.load(MODEL)


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator.load("sketches")


def found(evaluator, outputs, kind) -> int:
    """How many outputs the evaluator reads as exactly one ``kind`` and nothing else."""
    c = evaluator.predict(outputs)
    return sum(int(c[f"count_{kind}"][i]) == 1 and sum(int(c[f"count_{k}"][i]) for k in KINDS) == 1
               for i in range(len(outputs)))


# -- the procedural sketches' stroke-width override

def test_render_stroke_width_override_keeps_the_scene_and_sets_the_width():
    photo, sketch, labels = render(11, 256)
    for width in (1, 4, 12):
        p, s, l = render(11, 256, stroke_width=width)
        assert l == labels and np.array_equal(np.asarray(p), np.asarray(photo))  # the same scene
        assert abs(estimate(s) - width) <= 0.2 * width + 0.3, (width, estimate(s))
    assert not np.array_equal(np.asarray(render(11, 256, stroke_width=1)[1]), np.asarray(sketch))
    with pytest.raises(ValueError, match="stroke_width"):
        render(11, 256, stroke_width=0)


# -- the estimate and the normalisation

@pytest.mark.parametrize("width", [1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32])
def test_estimate_measures_the_line_width(width):
    # measured: 1.17 at 1 px (a hairline's antialiasing), 4 to 12 % low from 1.5 to 16 px and 19 % at 32: the
    # round ends of these short strokes (72 px) count as length; long strokes measure closer (docs/sketch-strokes.md)
    assert abs(estimate(lines_at_angles(width)) - width) <= 0.2 * width + 0.3


@pytest.mark.parametrize("width", [1, 2, 4, 8, 16, 24, 32, 40])
def test_normalise_brings_any_brush_to_a_training_width(width):
    for kind in DRAWINGS:
        image = drawing(kind, width)
        out = normalise(image, TRAINING_WIDTH, 128)
        if 0.01 * 512 <= estimate(image) <= 0.04 * 512:  # 8 and 16 px: drawn as the training sketches are
            assert out is None, (kind, width)  # left as drawn
            continue
        assert out.size == (128, 128) and out.mode == "RGB"
        got = estimate(out) / 128
        if width < 8:  # thinner: redrawn at the training sketches' median width
            assert abs(got - TRAINING_WIDTH) <= 0.15 * TRAINING_WIDTH, (kind, width, got)
        else:  # wider: thinned to 2.5 %, less where thick lines run into each other (measured: the 40 px box 1.9 %)
            assert 0.01 <= got <= 1.15 * THIN_TO * TRAINING_WIDTH, (kind, width, got)
        assert np.asarray(out).min() < 40  # solid lines, not grey


def test_normalise_leaves_what_is_not_a_line_drawing():
    assert normalise(Image.new("RGB", (512, 512), "white")) is None
    assert normalise(Image.new("RGB", (512, 512), (230, 228, 225))) is None
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8))
    assert normalise(noise) is None
    half = np.full((128, 128, 3), 255, np.uint8)
    half[:, :64] = 20  # a filled picture, not lines
    assert normalise(Image.fromarray(half)) is None


def scan(kind, side=1600):
    """A scanned pen drawing: 2 px grey ink (the scan's 512 px equivalent: 0.6 px) on off-white,
    grainy paper, a little blurred."""
    image = drawing(kind, 2, side, ink=95, paper=232, supersample=2).convert("L")
    grain = np.random.default_rng(1).normal(0, 4, (side, side))
    image = Image.fromarray(np.clip(np.asarray(image, np.float32) + grain, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(0.7)).convert("RGB")


# -- through the model

@pytest.mark.parametrize("width", [1, 2, 4, 8, 16])
def test_any_brush_width_gives_the_drawn_object(translator, evaluator, width):
    """Without normalisation the 1 px drawings are read as nothing or the wrong object (measured:
    0 of 4 seeds for all three, and the 2 px ball 0 of 4); with it every one is found."""
    for kind in DRAWINGS:
        image = drawing(kind, width)
        outs = [translator.run_array(image, seed=s) for s in range(SEEDS)]
        assert outs[0].shape == (512, 512, 3)  # the input's size by default
        assert found(evaluator, outs, kind) >= SEEDS - 1, (kind, width)


def test_normalisation_can_be_turned_off(translator):
    image = drawing("ball", 1)
    on = translator.run_array(image, output_size="model")
    off = translator.run_array(image, strokes=False, output_size="model")
    plain = translator.run_array(image.resize((128, 128), Image.BICUBIC), strokes=False)  # what it did before
    assert on.shape == off.shape == (128, 128, 3)
    assert np.array_equal(off, plain) and not np.array_equal(on, off)
    tensors, card = load_model(MODEL)
    # the model's own translator (BicycleGAN's, which takes the latent code), its card changed
    unset = type(translator)({**card, "inference": {**card["inference"], "strokes": False}}, tensors)
    assert {c.name: c.default for c in unset.controls}["strokes"] is False  # a card may turn it off
    assert np.array_equal(unset.run_array(image, output_size="model"), off)


def test_only_sketch2photo_models_normalise(translator):
    tensors, card = load_model(MODEL)
    other = type(translator)({**card, "task": "photo2photo"}, tensors)
    assert {c.name for c in other.controls} == {"mode", "seed", "resolution"}


def test_not_a_drawing_is_translated_as_before(translator):
    noise = np.random.default_rng(2).integers(0, 256, (100, 70, 3), dtype=np.uint8)
    assert np.array_equal(translator.run_array(noise), translator.run_array(noise, strokes=False))


def test_a_scan_with_thin_pen_lines_gives_the_drawn_object(translator, evaluator, tmp_path):
    """Through the CLI's translate, as a user with a scanner would (1600 px, grey 2 px ink)."""
    from trainer.cli import main
    for kind in DRAWINGS:
        image = scan(kind)
        image.save(tmp_path / f"{kind}.png")
        outs = [translator.run_array(image, seed=s, output_size="model") for s in range(SEEDS)]
        assert found(evaluator, outs, kind) >= SEEDS - 1, kind
        off = [translator.run_array(image, seed=s, strokes=False, output_size="model") for s in range(SEEDS)]
        assert found(evaluator, off, kind) < found(evaluator, outs, kind), kind  # the scan needed it
    assert main(["translate", str(MODEL), str(tmp_path / "ball.png"), "-o", str(tmp_path / "out"),
                 "--control", "output_size=model"]) == 0
    photo = Image.open(tmp_path / "out" / "ball.png")
    assert photo.size == (128, 128)
    assert found(evaluator, [np.asarray(photo.convert("RGB"))], "ball") == 1


def test_tensor_api_normalises_each_image_as_run_does(translator):
    images = [drawing(kind, 1).resize((128, 128), Image.LANCZOS) for kind in ("ball", "box")]
    x = torch.stack([torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 127.5 - 1 for im in images])
    batch = translator.run_tensor(x, seed=3)
    singles = np.stack([translator.run_array(im, seed=3) for im in images])
    from trainer.data.transforms import to_uint8
    assert np.abs(to_uint8(batch).astype(int) - singles.astype(int)).max() <= 1
