import math

import pytest
import torch
from torch import nn

from trainer.losses import (feature_matching_loss, gan_loss, gradient_penalty, kl_divergence, l1_loss, layout_distance,
                            thumbnail_distance)


def test_gan_modes_on_known_values():
    zero = torch.zeros(2, 1, 4, 4)
    assert gan_loss("vanilla", zero, True).item() == pytest.approx(math.log(2))
    assert gan_loss("vanilla", zero, False).item() == pytest.approx(math.log(2))
    half = torch.full((3,), 0.5)
    assert gan_loss("lsgan", half, True).item() == pytest.approx(0.25)
    assert gan_loss("lsgan", torch.ones(3), False).item() == pytest.approx(1.0)
    scores = torch.tensor([1.0, 3.0])
    assert gan_loss("wgangp", scores, True).item() == pytest.approx(-2.0)
    assert gan_loss("wgangp", scores, False).item() == pytest.approx(2.0)
    assert gan_loss("hinge", torch.tensor([0.5, 2.0]), True).item() == pytest.approx(0.25)
    assert gan_loss("hinge", torch.tensor([-0.5, -2.0]), False).item() == pytest.approx(0.25)
    assert gan_loss("hinge", torch.tensor([1.0, 3.0]), True, for_discriminator=False).item() == pytest.approx(-2.0)


def test_unknown_gan_mode():
    with pytest.raises(ValueError, match="unknown GAN mode"):
        gan_loss("softplus", torch.zeros(1), True)


def test_gradient_penalty_equals_hand_computed_value():
    """For a linear critic D(x) = w.x + b the gradient is w everywhere: penalty = lambda (|w| - 1)^2."""
    critic = nn.Linear(4, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 0.0, 4.0, 0.0]]))  # |w| = 5
    real, fake = torch.randn(8, 4), torch.randn(8, 4)
    gp = gradient_penalty(critic, real, fake, lambda_gp=10.0)
    assert gp.item() == pytest.approx(10.0 * (5 - 1) ** 2)
    gp.backward()  # differentiable w.r.t. the critic (double backprop)
    assert critic.weight.grad is not None and torch.isfinite(critic.weight.grad).all()


def test_gan_loss_of_several_scales_is_their_sum():
    a, b = torch.randn(2, 1, 6, 6), torch.randn(2, 1, 2, 2)
    for mode in ("vanilla", "lsgan", "hinge"):
        torch.testing.assert_close(gan_loss(mode, [a, b], True), gan_loss(mode, a, True) + gan_loss(mode, b, True))


def test_feature_matching_loss():
    """pix2pixHD weights: each scale's activation L1s times 4 / (activations) / scales; the logits and
    the real side take no part in it."""
    real = [[torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 2, 2), torch.full((1, 1, 1, 1), 9.0)]] * 2
    assert feature_matching_loss(real, real) == 0
    fake = [[torch.ones(1, 2, 4, 4, requires_grad=True), torch.full((1, 3, 2, 2), 2.0, requires_grad=True),
             torch.zeros(1, 1, 1, 1)] for _ in range(2)]
    real_req = [[t.clone().requires_grad_(True) for t in scale] for scale in real]
    loss = feature_matching_loss(fake, real_req)
    assert math.isclose(float(loss.detach()), 2 * (4 / 2 / 2) * (1.0 + 2.0))
    loss.backward()
    assert fake[0][0].grad is not None and real_req[0][0].grad is None


def test_l1():
    assert l1_loss(torch.zeros(2, 3), torch.ones(2, 3)).item() == pytest.approx(1.0)


def test_kl_divergence_is_zero_at_the_prior_and_matches_the_closed_form():
    mu, logvar = torch.zeros(3, 8), torch.zeros(3, 8)
    assert float(kl_divergence(mu, logvar)) == 0.0
    # one dimension off the prior per example: KL(N(1, e^1) || N(0, 1)) = (e + 1 - 1 - 1) / 2
    mu[:, 0], logvar[:, 0] = 1.0, 1.0
    assert abs(float(kl_divergence(mu, logvar)) - (math.e - 1) / 2) < 1e-6


def regions(size=32, shift=0):
    """(1, 3, size, size): a background, a disc and a bar, each one flat colour; ``shift`` moves the
    shapes right (their areas kept)."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    image = torch.tensor([0.2, 0.5, 0.8]).view(3, 1, 1).expand(3, size, size).clone()
    disc = (y - size / 2) ** 2 + (x - size / 2 - shift) ** 2 < (size / 4) ** 2
    bar = (y > size - 6) & (x >= 4 + shift) & (x < size // 2 + 4 + shift)
    image[:, disc] = torch.tensor([0.9, 0.6, 0.4]).view(3, 1)
    image[:, bar] = torch.tensor([-0.7, -0.2, 0.1]).view(3, 1)
    return image[None] * 0.9


def test_thumbnail_distance_sees_colours_where_they_are_not_small_shifts():
    a = regions()
    assert thumbnail_distance(a, a).tolist() == [0.0]
    shifted = thumbnail_distance(a, regions(shift=2)).item()
    assert 0 < shifted < 0.02  # shapes moved by 2 of 32 pixels
    assert thumbnail_distance(a, a.flip(1)).item() > 5 * shifted  # a new palette on the same shapes
    assert thumbnail_distance(a, a.flip(2)).item() > 5 * shifted  # the same palette upside down
    assert thumbnail_distance(a.expand(3, -1, -1, -1), a.expand(3, -1, -1, -1)).shape == (3,)
    with pytest.raises(ValueError, match="two .N, C, H, W. batches of one shape"):
        thumbnail_distance(a, a[..., :16])


def test_layout_distance_compares_layouts_not_palettes():
    a = regions()
    recoloured = torch.stack([a[:, 2] * 0.5 - 0.3, a[:, 0] ** 2, -a[:, 1]], 1)  # a polynomial colour map
    assert layout_distance(a, a).item() < 1e-3
    assert layout_distance(recoloured, a).item() < 1e-3
    assert layout_distance(regions(shift=5), a).item() > 0.3  # the same palette on moved shapes
    x = regions(shift=5).requires_grad_(True)
    y = a.clone().requires_grad_(True)
    layout_distance(x, y).backward()
    assert x.grad.abs().sum() > 0 and y.grad is None  # y is the fixed reference
    with pytest.raises(ValueError, match="two .N, C, H, W. batches of one shape"):
        layout_distance(a, a[0])


def test_hand_mixed_faces_take_the_style_palette_on_the_source_layout():
    """The measures agree with the faces' own truth: a mix drawn with the source's geometry and the
    style's colours (trainer.evaluation.style.ideal_mixes) is near the style in colour and near the
    source in layout, and far from each in the other."""
    import numpy as np

    from trainer.evaluation.style import ideal_mixes
    torch.manual_seed(0)
    source, style, mix = (torch.tensor(np.stack(a)).permute(0, 3, 1, 2).float() / 127.5 - 1
                          for a in ideal_mixes(16, 32, 5))
    assert thumbnail_distance(mix, style).shape == layout_distance(mix, source).shape == (16,)
    assert thumbnail_distance(mix, style).mean() < thumbnail_distance(mix, source).mean() / 3
    assert layout_distance(mix, source).mean() < layout_distance(mix, style).mean() / 3
