"""The procedural sketches' opt-in per-object masks: the same scene as without them, and each mask
covering its own object's visible part."""
import colorsys

import numpy as np
import pytest

from trainer.data.sketches import render, visible_masks


@pytest.mark.parametrize("kw", [{"size": 64}, {"size": 128, "count": 3}, {"size": 64, "style": "cartoon"},
                                {"size": 32, "count": 2, "kinds": ["house", "mug"]}, {"size": 64, "stroke_width": 2.0},
                                {"size": 32, "count": 0}])
def test_object_masks_leave_the_scene_unchanged(kw):
    for seed in range(6):
        photo, sketch, labels = render(seed, **kw)
        p, s, lab = render(seed, **kw, object_masks=True)
        assert np.array_equal(np.asarray(p), np.asarray(photo)) and np.array_equal(np.asarray(s), np.asarray(sketch))
        assert {k: lab[k] for k in labels} == labels and set(lab) == set(labels) | {"masks", "colours"}
        assert "masks" not in labels  # only when asked


def test_object_masks_cover_each_object_in_its_own_colour():
    seen = 0
    for seed in range(12):
        photo, _, labels = render(seed, 128, count=3, object_masks=True)
        masks, colours = labels["masks"], labels["colours"]
        assert masks.shape == (3, 128, 128) and masks.dtype == np.float32 and colours.shape == (3, 3)
        assert masks.min() >= 0 and masks.max() <= 1
        assert masks.sum(0).max() <= 1 + 1e-5  # visible parts do not overlap
        hsv = np.asarray(photo.convert("HSV")).astype(float) / 255
        for kind, m, c in zip(labels["objects"], masks, colours):
            inside = m > 0.99
            assert inside.sum() > 20  # each object shows
            if kind == "house" or inside.sum() < 60:
                continue  # a house's roof and door have a second colour
            pixels = hsv[inside]
            coloured = pixels[pixels[:, 1] > 0.25]
            true_hue = colorsys.rgb_to_hsv(*c)[0]
            d = np.abs(coloured[:, 0] - true_hue) % 1
            assert np.median(np.minimum(d, 1 - d)) < 0.03, (seed, kind)  # the object's colour, within ~10 degrees
            seen += 1
    assert seen >= 15


def test_empty_scene_has_no_masks():
    _, _, labels = render(3, 32, count=0, object_masks=True)
    assert labels["masks"].shape == (0, 32, 32) and labels["colours"].shape == (0, 3)


def test_visible_masks_remove_what_stands_in_front_and_average_down():
    back = np.zeros((8, 8), np.float32)
    back[0:6, 0:6] = 1
    front = np.zeros((8, 8), np.float32)
    front[2:8, 2:8] = 1
    out = visible_masks([back, front], 4)
    assert out.shape == (2, 4, 4) and out.dtype == np.float32
    assert np.array_equal(out[1], front.reshape(4, 2, 4, 2).mean((1, 3)))  # the front one whole
    expect = (back * (1 - front)).reshape(4, 2, 4, 2).mean((1, 3))
    assert np.array_equal(out[0], expect) and out[0, 2, 2] == 0  # the back one less the overlap
