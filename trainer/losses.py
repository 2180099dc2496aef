"""Losses shared by every method: the GAN modes, the gradient penalty, and pixel losses.

Every GAN mode is one branch of :func:`gan_loss`, and any method may use any mode.
"""
import torch
import torch.nn.functional as F

GAN_MODES = ("vanilla", "lsgan", "wgangp", "hinge")


def gan_loss(mode: str, prediction: torch.Tensor, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
    """Adversarial loss of a discriminator's raw output (logits or critic scores).

    - ``vanilla``: binary cross-entropy on logits (Goodfellow et al.; non-saturating for G).
    - ``lsgan``: least squares to 1 (real) or 0 (fake) (Mao et al.).
    - ``wgangp``: the Wasserstein critic, -E[D(real)] + E[D(fake)] (Gulrajani et al.);
      add :func:`gradient_penalty` for the critic.
    - ``hinge``: relu(1 - D(real)) + relu(1 + D(fake)) for D, -E[D(fake)] for G.

    For the generator call with ``target_is_real=True, for_discriminator=False``.
    """
    prediction = prediction.float()
    if mode == "vanilla":
        target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
        return F.binary_cross_entropy_with_logits(prediction, target)
    if mode == "lsgan":
        target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
        return F.mse_loss(prediction, target)
    if mode == "wgangp":
        return -prediction.mean() if target_is_real else prediction.mean()
    if mode == "hinge":
        if not for_discriminator:
            return -prediction.mean()
        return F.relu(1.0 - prediction).mean() if target_is_real else F.relu(1.0 + prediction).mean()
    raise ValueError(f"unknown GAN mode {mode!r}; choose one of {', '.join(GAN_MODES)}")


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, lambda_gp: float = 10.0,
                     constant: float = 1.0) -> torch.Tensor:
    """WGAN-GP penalty ``lambda_gp * E[(||grad D(x_hat)||_2 - constant)^2]`` on random interpolates
    ``x_hat = a * real + (1 - a) * fake`` with one ``a ~ U(0, 1)`` per sample."""
    alpha = torch.rand(real.size(0), *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    interpolates = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(interpolates)
    if isinstance(scores, (tuple, list)):  # critics with extra heads (StarGAN) give the source head first
        scores = scores[0]
    grads = torch.autograd.grad(outputs=scores.float().sum(), inputs=interpolates, create_graph=True)[0]
    norms = grads.reshape(grads.size(0), -1).float().norm(2, dim=1)
    return lambda_gp * ((norms - constant) ** 2).mean()


def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(output.float(), target.float())
