"""The distinct-hue measure of sketch2photo's objects (trainer.evaluation.object_hues) on constructed
images and on the procedural photos, whose colours are known."""
import colorsys

import numpy as np
import pytest

from trainer.data.sketches import render
from trainer.evaluation.object_hues import (HUE_THRESHOLD, distinct_hue_rates, distinct_hues, dominant_hue,
                                            expected_distinct, hue_distance, scene_hues)

RED, BLUE, GREY, ORANGE = (200, 30, 30), (30, 40, 210), (128, 128, 128), (210, 110, 20)


def scene(*colours, size=64):
    """A beige wall with one square object per colour, left to right, shaded top to bottom, and their
    masks (n, size, size)."""
    image = np.zeros((size, size, 3), np.float64) + (200, 190, 160)
    masks = np.zeros((len(colours), size, size), np.float32)
    w = size // (len(colours) + 1)
    for i, c in enumerate(colours):
        x0 = w // 2 + i * (w + w // max(1, len(colours)))
        masks[i, 20:44, x0:x0 + w] = 1
        shade = np.linspace(1.0, 0.6, 24)[:, None, None]
        image[20:44, x0:x0 + w] = np.asarray(c, np.float64) * shade
    return image.round().astype(np.uint8), masks


def test_red_and_blue_are_distinct_two_reds_are_not():
    image, masks = scene(RED, BLUE)
    hues = scene_hues(image, masks)
    assert hue_distance(hues[0], 0.0) < 0.01 and abs(hues[1] - colorsys.rgb_to_hsv(30, 40, 210)[0]) < 0.01
    assert distinct_hues(hues) is True
    image, masks = scene(RED, RED)
    assert distinct_hues(scene_hues(image, masks)) is False
    image, masks = scene(RED, ORANGE)  # about 28 degrees apart: under the threshold
    assert distinct_hues(scene_hues(image, masks)) is False
    assert distinct_hues(scene_hues(image, masks), threshold=20 / 360) is True


def test_a_grey_object_is_ignored():
    image, masks = scene(RED, GREY, BLUE)
    hues = scene_hues(image, masks)
    assert hues[1] is None and None not in (hues[0], hues[2])
    assert distinct_hues(hues) is True  # red and blue; the grey one has no hue
    image, masks = scene(RED, GREY, RED)
    assert distinct_hues(scene_hues(image, masks)) is False
    image, masks = scene(RED, GREY)
    assert distinct_hues(scene_hues(image, masks)) is None  # one hue only: undecided


def test_dominant_hue_ignores_a_highlight_and_the_edges():
    image, masks = scene(BLUE)
    image[24:30, 16:22] = 255  # a white highlight
    image[20:44, 12] = RED  # a stray edge column of another colour inside the mask's border
    assert hue_distance(dominant_hue(image, masks[0]), colorsys.rgb_to_hsv(*BLUE)[0]) < 0.01
    tiny = np.zeros(masks[0].shape, np.float32)
    tiny[30:33, 30:33] = 1  # nothing left after erosion
    assert dominant_hue(image, tiny) is None
    with pytest.raises(ValueError, match="mask shape"):
        dominant_hue(image, masks[0][:10])


def test_hue_distance_is_circular_and_threshold_checked():
    assert hue_distance(0.95, 0.05) == pytest.approx(0.1)
    assert np.allclose(hue_distance(np.array([0.0, 0.25, 0.5]), 0.75), [0.25, 0.5, 0.25])
    with pytest.raises(ValueError, match="threshold"):
        distinct_hues([0.1, 0.5], threshold=0.6)
    assert expected_distinct(2) == pytest.approx(1 - 2 * HUE_THRESHOLD)
    assert expected_distinct(3) == pytest.approx((1 - 3 * HUE_THRESHOLD) ** 2)


def test_hues_of_the_procedural_photos_are_their_objects_colours():
    for seed in range(10):
        photo, _, labels = render(1_800_000_000 + seed, 128, count=2, object_masks=True)
        hues = scene_hues(np.asarray(photo), labels["masks"])
        for kind, h, c in zip(labels["objects"], hues, labels["colours"]):
            if kind != "house" and h is not None:  # a house's roof has a second colour
                assert hue_distance(h, colorsys.rgb_to_hsv(*c)[0]) < 3 / 360


def test_distinct_hue_rates_of_real_photos_and_of_one_coloured_objects():
    def as_real(sketch, seed):  # a "model" that paints the real photo back
        return photos[sketch.tobytes()]

    def one_colour(sketch, seed):  # every object in the first one's hue
        photo = photos[sketch.tobytes()].copy()
        hsv_first = None
        for m in masks_of[sketch.tobytes()]:
            inside = m > 0.5
            if hsv_first is None:
                hsv_first = np.median(photo[inside], 0)
            photo[inside] = hsv_first
        return photo

    photos, masks_of = {}, {}
    from trainer.evaluation.object_hues import held_out_scenes
    for count in (2, 3):
        for sketch, photo, masks in held_out_scenes(count, 12, 64):
            photos[sketch.tobytes()] = np.asarray(photo)
            masks_of[sketch.tobytes()] = masks
    real = distinct_hue_rates(paint=as_real, n=12, seeds=2, size=64)
    for count in (2, 3):
        assert real[count]["model"] == real[count]["real"] and real[count]["n_real"] >= 10
        assert real[count]["model_per_seed"] == [real[count]["real"]] * 2
    assert real[2]["real"] > 0.5
    same = distinct_hue_rates(paint=one_colour, n=12, seeds=1, size=64)
    assert same[2]["model"] == 0 and same[3]["model"] == 0
    with pytest.raises(ValueError, match="translator or a paint"):
        distinct_hue_rates(n=1)
