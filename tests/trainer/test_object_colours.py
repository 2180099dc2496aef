"""The colour per object after the generator (trainer.object_colours): what moves, what stays."""
from __future__ import annotations

import pytest
import torch

from trainer.object_colours import YCBCR, merge_fragments, transfer


def ycc(rgb):  # (..., 3) in [-1, 1] -> YCbCr
    return torch.einsum("ij,...j->...i", YCBCR, (rgb + 1) / 2)


def scene():
    """A 32 px image: a grey-blue background, object 1 a shaded red square, object 2 a green disc."""
    torch.manual_seed(0)
    img = torch.tensor([-0.2, -0.1, 0.3]).view(3, 1, 1).repeat(1, 32, 32) + 0.02 * torch.randn(3, 32, 32)
    labels = torch.zeros(32, 32, dtype=torch.long)
    labels[4:14, 4:14] = 1
    img[:, 4:14, 4:14] = torch.tensor([0.6, -0.6, -0.6]).view(3, 1, 1) * torch.linspace(0.6, 1, 10).view(1, 10, 1)
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    disc = (yy - 22) ** 2 + (xx - 22) ** 2 <= 25
    labels[disc] = 2
    img[:, disc] = torch.tensor([-0.5, 0.5, -0.5]).view(3, 1)
    return img[None].clamp(-1, 1), labels[None]


def test_each_object_takes_its_targets_chroma_and_keeps_its_luma_and_the_background_stays():
    img, labels = scene()
    targets = torch.tensor([[[-0.6, -0.4, 0.7], [0.3, -0.5, 0.4]]])  # blue for the square, purple for the disc
    out = transfer(img, labels, targets)
    far = torch.ones(32, 32, dtype=torch.bool)
    far[2:16, 2:16] = False
    far[15:30, 15:30] = False
    assert torch.equal(out[0][:, far], img[0][:, far])  # untouched beyond the one-pixel blend
    for j in (1, 2):
        inner = labels[0] == j
        inner &= torch.nn.functional.avg_pool2d(inner[None, None].float(), 3, 1, 1)[0, 0] == 1  # no edge
        before, after = ycc(img[0][:, inner].T), ycc(out[0][:, inner].T)
        goal = ycc(targets[0, j - 1])
        # mean chroma on the target's (within the gamut's clipping), luma pixel by pixel the same
        assert torch.allclose(after[:, 1:].mean(0), goal[1:], atol=0.03)
        assert (after[:, 0] - before[:, 0]).abs().max() < 0.03
    # the square's shading (its luma gradient) survives
    col, was = ycc(out[0][:, 5:13, 8].T)[:, 0], ycc(img[0][:, 5:13, 8].T)[:, 0]
    assert ((col[1:] - col[:-1]) * (was[1:] - was[:-1]) > 0).all() and (was[1:] != was[:-1]).all()


def test_luminance_one_moves_the_mean_luma_too_and_shapes_are_checked():
    img, labels = scene()
    targets = torch.tensor([[[0.9, 0.9, 0.2], [-0.9, -0.9, -0.5]]])  # a light yellow, a dark blue
    out = transfer(img, labels, targets, luminance=1.0)
    for j in (1, 2):
        inner = labels[0] == j
        inner &= torch.nn.functional.avg_pool2d(inner[None, None].float(), 3, 1, 1)[0, 0] == 1
        assert abs(ycc(out[0][:, inner].T)[:, 0].mean() - ycc(targets[0, j - 1])[0]) < 0.06
    with pytest.raises(ValueError, match="luminance"):
        transfer(img, labels, targets, luminance=1.5)
    with pytest.raises(ValueError, match="targets"):
        transfer(img, labels, targets[:, :, :2])
    with pytest.raises(ValueError, match="labels"):
        transfer(img, labels[:, :16], targets)
    # no objects: the image itself
    assert transfer(img, torch.zeros_like(labels), targets) is img
    # a NaN pixel inside an object stays NaN and nowhere else: the other object moves as without it
    bad = img.clone()
    bad[0, :, 8, 8] = float("nan")
    out = transfer(bad, labels, targets)
    assert torch.isnan(out).sum() == 3 and torch.equal(out[0, :, 22, 22], transfer(img, labels, targets)[0, :, 22, 22])


def test_a_grey_object_is_shifted_not_rotated_and_an_object_without_pixels_is_ignored():
    img = torch.zeros(1, 3, 16, 16)
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    labels[0, 4:12, 4:12] = 1
    targets = torch.tensor([[[0.8, -0.6, -0.6], [0.0, 0.9, 0.0]]])  # object 2 has no pixels
    out = transfer(img, labels, targets)
    assert torch.isfinite(out).all()
    centre = ycc(out[0, :, 8, 8])
    assert torch.allclose(centre[1:], ycc(targets[0, 0])[1:], atol=0.02)  # the grey took the red's chroma
    assert torch.equal(out[0, :, 0, 0], img[0, :, 0, 0])


def test_merge_fragments_joins_a_split_off_handle_and_keeps_a_small_object_on_its_own():
    labels = torch.zeros(1, 64, 64, dtype=torch.long)
    labels[0, 10:40, 10:30] = 1  # a mug's body
    labels[0, 18:24, 30:34] = 2  # its handle, split off: 24 px, touching the body
    labels[0, 50:55, 50:55] = 3  # a small star on its own: 25 px
    labels[0, 10:40, 40:60] = 4  # another object beside
    out = merge_fragments(labels, fraction=0.01)  # 41 px at 64
    assert (out[0][labels[0] == 2] == 1).all()
    assert torch.equal(out[0][labels[0] != 2], labels[0][labels[0] != 2])
    assert torch.equal(merge_fragments(labels, fraction=0.001), labels)  # nothing that small


def test_the_edge_blend_is_each_objects_3x3_mask_mean_whatever_the_number_of_objects():
    """The change at a pixel is the sum over objects of (3 x 3 mean of the object's mask, within the
    image) x (the object's change): computed here object by object, as the docstring defines it,
    for batches of up to 40 objects, odd sizes and a target row with no pixels."""
    import torch.nn.functional as F
    from trainer.object_colours import MIN_CHROMA, RGB
    g = torch.Generator().manual_seed(1)
    for n, h, w, k in ((1, 17, 23, 3), (2, 32, 32, 40), (3, 9, 40, 6)):
        img = torch.rand(n, 3, h, w, generator=g) * 2 - 1
        labels = torch.randint(0, k, (n, h // 3 + 1, w // 3 + 1), generator=g).repeat_interleave(3, 1)
        labels = labels.repeat_interleave(3, 2)[:, :h, :w]  # objects 1..k-1 in 3x3 blocks; row k has none
        targets = torch.rand(n, k, 3, generator=g) * 2 - 1
        out = transfer(img, labels, targets)
        y = ycc(img.permute(0, 2, 3, 1))  # (n, h, w, 3)
        want = img.clone()
        for i in range(n):
            for j in range(1, k + 1):
                mask = labels[i] == j
                if not mask.any():
                    continue
                mean, goal = y[i][mask].mean(0), ycc(targets[i, j - 1])
                turn = torch.atan2(goal[2], goal[1]) - torch.atan2(mean[2], mean[1])
                turn = turn if mean[1:].norm() > MIN_CHROMA else torch.zeros(())
                rot = torch.tensor([[turn.cos(), -turn.sin()], [turn.sin(), turn.cos()]])
                moved = goal[1:] + (y[i][..., 1:] - mean[1:]) @ rot.T  # every pixel as if it were object j's
                change = torch.cat([torch.zeros(h, w, 1), moved - y[i][..., 1:]], -1) @ RGB.T * 2
                share = F.avg_pool2d(mask[None, None].float(), 3, 1, 1, count_include_pad=False)[0, 0]
                want[i] += share * change.permute(2, 0, 1)
        assert torch.allclose(out, want.clamp(-1, 1), atol=2e-5), (n, h, w, k)


@pytest.mark.parametrize("h,w", [(1, 1), (1, 6), (6, 1), (2, 2), (3, 7)])
def test_the_edge_blend_at_any_size_is_the_3x3_mean_within_the_map(h, w):
    import torch.nn.functional as F
    from trainer.object_colours import _mean3x3
    x = torch.rand(2, 7, h, w, generator=torch.Generator().manual_seed(h * 10 + w))
    assert torch.allclose(_mean3x3(x), F.avg_pool2d(x, 3, 1, 1, count_include_pad=False), atol=1e-6)
