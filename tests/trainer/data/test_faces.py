"""Procedural faces: deterministic, and a counterfactual changes only the asked attribute."""
import numpy as np
import pytest

from trainer.data.faces import ATTRIBUTES, draw_attributes, normalise, render


def arr(im):
    return np.asarray(im).astype(int)


def test_same_identity_same_attributes_is_identical():
    attrs = draw_attributes(5)
    assert np.array_equal(arr(render(5, attrs, 64)), arr(render(5, attrs, 64)))
    assert not np.array_equal(arr(render(5, attrs, 64)), arr(render(6, attrs, 64)))


def _diff_box(a, b):
    ys, xs = np.nonzero(np.abs(arr(a) - arr(b)).sum(axis=2) > 30)
    return (ys.min(), ys.max(), xs.min(), xs.max()) if len(ys) else None


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_counterfactuals_change_only_their_region(seed):
    size = 64
    base = {**draw_attributes(seed), "Eyeglasses": False, "Smiling": False}
    ref = render(seed, base, size)
    # glasses: only around the eyes (upper-middle band of the face), nothing at the bottom
    glasses = _diff_box(ref, render(seed, {**base, "Eyeglasses": True}, size))
    assert glasses is not None and glasses[1] < 0.6 * size and glasses[0] > 0.2 * size
    # smiling: only around the mouth and eyes, nothing above the eyes or in the corners
    smile = _diff_box(ref, render(seed, {**base, "Smiling": True}, size))
    assert smile is not None and smile[0] > 0.3 * size
    # hair colour: the background corners never change
    other = "Blond_Hair" if not base["Blond_Hair"] else "Black_Hair"
    hair = {**base, "Black_Hair": False, "Blond_Hair": False, "Brown_Hair": False, other: True}
    a, b = arr(ref), arr(render(seed, hair, size))
    assert np.array_equal(a[:3, :3], b[:3, :3]) and np.array_equal(a[:3, -3:], b[:3, -3:])
    assert np.abs(a - b).sum() > 0


@pytest.mark.parametrize("attribute", ATTRIBUTES)
def test_every_attribute_is_visible(attribute):
    """Flipping any attribute changes a noticeable part of the image at 64 px."""
    changed = []
    for seed in range(6):
        base = draw_attributes(seed)
        flipped = dict(base)
        if attribute in ("Black_Hair", "Blond_Hair", "Brown_Hair"):
            for h in ("Black_Hair", "Blond_Hair", "Brown_Hair"):
                flipped[h] = False
            flipped[attribute] = not base[attribute]
        else:
            flipped[attribute] = not base[attribute]
        diff = np.abs(arr(render(seed, base, 64)) - arr(render(seed, flipped, 64))).sum(axis=2) > 30
        changed.append(diff.mean())
    assert min(changed) > 0.004, changed


def test_exclusive_hair_and_unknown_attributes_are_errors():
    with pytest.raises(ValueError, match="at most one"):
        normalise({"Black_Hair": True, "Blond_Hair": True})
    with pytest.raises(ValueError, match="unknown attribute"):
        normalise({"Bald": True})


def test_detail_has_its_own_stream_and_changes_only_small_things():
    """Another detail seed moves pores, freckles and hair strands: a small change inside the face and
    hair, none in the background, and nothing an attribute describes."""
    import numpy as np

    from trainer.data.faces import draw_attributes, render
    changed = []
    for seed in range(12):
        attrs = draw_attributes(seed)
        a = np.asarray(render(seed, attrs, 64), np.int16)
        assert (a == np.asarray(render(seed, attrs, 64, detail_seed=seed), np.int16)).all()  # default: the identity
        b = np.asarray(render(seed, attrs, 64, detail_seed=seed + 1000), np.int16)
        diff = np.abs(a - b).max(2)
        assert (diff[:4] == 0).all() and (diff[:, :3] == 0).all()  # the background's corners stay
        changed.append((diff > 0).mean())
        assert np.abs(a - b).mean() < 4  # detail, not another face
    assert min(changed) > 0.01  # every face has detail that the seed moves
