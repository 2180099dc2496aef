import math

import pytest
import torch
from torch import nn

from trainer.losses import gan_loss, gradient_penalty, l1_loss


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


def test_l1():
    assert l1_loss(torch.zeros(2, 3), torch.ones(2, 3)).item() == pytest.approx(1.0)
