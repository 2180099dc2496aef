"""The sketch2photo input judge (trainer.domain_check.sketch_warning): line drawings pass, photos
and filled pictures are named, whatever the array's size or channel count."""
import numpy as np
import pytest

from trainer import api
from trainer.domain_check import LIGHT_SHARE, input_warning, sketch_warning

CARD = {"task": "sketch2photo"}


@pytest.mark.parametrize("size", [128, 512, 1000])
def test_a_procedural_sketch_is_a_line_drawing_and_its_photo_is_not(size):
    sketch = np.asarray(api.sample_input("sketch", 11, 128).convert("RGB").resize((size, size)))
    photo = np.asarray(api.sample_input("photo", 11, 128).convert("RGB").resize((size, size)))
    assert sketch_warning(sketch) is None
    warning = sketch_warning(photo)
    assert warning and "Not a line drawing" in warning and "Edges from photo" in warning
    assert input_warning(CARD, sketch) is None and input_warning(CARD, photo) == warning


def test_the_share_of_light_grey_pixels_decides():
    """Light grey paper with a dark block over 1 - LIGHT_SHARE of it, just under and just over; a
    light but coloured ground (spread 60 levels) is not paper; grey input in two and one channel."""
    def page(dark_rows, colour=(230, 230, 230)):
        a = np.empty((200, 200, 3), np.uint8)
        a[:] = colour
        a[:dark_rows] = 20
        return a
    just_under = int(200 * (1 - LIGHT_SHARE)) - 2
    assert sketch_warning(page(just_under)) is None
    assert sketch_warning(page(just_under + 6)) is not None
    assert sketch_warning(page(0, (250, 210, 190))) is not None  # light, but not grey
    assert sketch_warning(page(0)[..., 0]) is None  # HW grey
    assert sketch_warning(page(0)[..., :1]) is None  # HW1
    assert sketch_warning(page(120)[..., :1]) is not None
    assert sketch_warning(np.full((64, 64, 3), 255, np.uint8)) is None  # a blank canvas draws nothing


def test_a_model_without_a_judge_gets_no_warning():
    photo = np.asarray(api.sample_input("photo", 11, 128).convert("RGB"))
    assert input_warning({"task": "photo2photo", "training": {"dataset": "shapes"}}, photo) is None
