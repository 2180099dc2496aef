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

    For the generator call with ``target_is_real=True, for_discriminator=False``. A list of
    predictions (a multi-scale discriminator's) gives the sum of their losses, as pix2pixHD.
    """
    if isinstance(prediction, (list, tuple)):
        return sum(gan_loss(mode, p, target_is_real, for_discriminator) for p in prediction)
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


def feature_matching_loss(fake: list, real: list) -> torch.Tensor:
    """pix2pixHD's discriminator feature matching: L1 between D's activations on the fake and on the
    real pair, every layer but the logits, weighted 4 / (layers) / scales. ``fake`` and ``real`` are a
    discriminator's ``features=True`` outputs (per scale, activations then logits); ``real`` is
    compared detached."""
    loss = 0.0
    for f_scale, r_scale in zip(fake, real):
        weight = 4.0 / (len(f_scale) - 1) / len(fake)  # n_layers + 1 activations, then the logits
        for f, r in zip(f_scale[:-1], r_scale[:-1]):
            loss = loss + weight * F.l1_loss(f.float(), r.detach().float())
    return loss


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)), summed over the latent and averaged over the batch, as
    BicycleGAN's cVAE-GAN weighs it (times lambda_kl)."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()


def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(output.float(), target.float())


def logistic_loss(prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """StyleGAN's logistic loss: softplus(-D(x)) for reals (and for G's non-saturating loss on
    fakes), softplus(D(x)) for fakes."""
    prediction = prediction.float()
    return F.softplus(-prediction).mean() if target_is_real else F.softplus(prediction).mean()


def r1_penalty(prediction: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E[||grad_x D(x)||^2] on real images; ``real`` must require grad
    and ``prediction`` be D(real). Weight it by gamma / 2."""
    grad, = torch.autograd.grad(prediction.float().sum(), real, create_graph=True)
    return grad.float().pow(2).reshape(grad.size(0), -1).sum(1).mean()


def path_length_penalty(images: torch.Tensor, latents: torch.Tensor, mean_path_length: torch.Tensor,
                        decay: float = 0.01):
    """StyleGAN2's path length regulariser: the Jacobian norm ||J_w^T y|| for random image-space
    y should stay near its running mean. Returns (penalty, new running mean, mean path length)."""
    y = torch.randn_like(images) / (images.shape[2] * images.shape[3]) ** 0.5
    grad, = torch.autograd.grad((images.float() * y).sum(), latents, create_graph=True)
    lengths = grad.float().pow(2).sum(2).mean(1).sqrt()
    new_mean = mean_path_length + decay * (lengths.mean().detach() - mean_path_length)
    return (lengths - new_mean).pow(2).mean(), new_mean, lengths.mean().detach()


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """G[c, c'] = sum_hw f[c] f[c'] / (C H W), per sample (Johnson et al. eq. 3)."""
    b, c, h, w = features.shape
    f = features.float().reshape(b, c, h * w)
    return f.bmm(f.transpose(1, 2)) / (c * h * w)


def feature_reconstruction_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of feature maps (Johnson et al.'s l_feat; SRGAN's VGG loss)."""
    return F.mse_loss(features.float(), target.float())


def style_reconstruction_loss(features: dict, target_grams: dict) -> torch.Tensor:
    """Sum over layers of the squared Frobenius distance of Gram matrices, averaged over the
    entries (Johnson et al.'s l_style); ``target_grams`` broadcast over the batch."""
    return sum(F.mse_loss(gram_matrix(f), target_grams[k].expand(f.size(0), -1, -1)) for k, f in features.items())


def total_variation_loss(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of horizontally and vertically neighbouring pixels."""
    x = x.float()
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def thumbnail_distance(x: torch.Tensor, y: torch.Tensor, size: int = 4) -> torch.Tensor:
    """Mean squared difference of ``x`` and ``y`` (each (N, C, H, W), the same shape, any range)
    averaged down to ``size`` x ``size`` thumbnails: which colours sit roughly where (hair on top,
    skin in the middle, clothes below), blind to shifts of a few pixels. A colour layout
    descriptor as MPEG-7's (Kasutani, Yamada: "The MPEG-7 color layout descriptor", ICIP 2001,
    which compares 8x8 thumbnails). Returns (N,): one distance per pair, in squared units of the
    pixel values. Raises ValueError for batches of different shapes."""
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"thumbnail_distance: two (N, C, H, W) batches of one shape, got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    thumbnails = (F.adaptive_avg_pool2d(t.float(), size) for t in (x, y))
    return (next(thumbnails) - next(thumbnails)).pow(2).mean((1, 2, 3))


def layout_distance(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """How much of ``x``'s colour variation ``y``'s layout cannot explain: the residual of the
    least-squares second-order polynomial colour map (polynomial colour correction: Hong, Luo, Rhodes:
    "A study of digital camera colorimetric characterisation based on polynomial modelling", Color
    Research & Application 2001; one map per image) from ``y``'s pixels to ``x``'s, over ``x``'s colour
    variance. ``x``, ``y``: (N, C, H, W), the same size, any range. Near 0 when ``x`` is ``y`` with a
    new palette on the same regions, near 1 when the regions differ. Returns (N,): one distance per
    pair. Gradients flow through ``x`` only; ``y`` is the fixed reference. Raises ValueError for
    batches of different shapes."""
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"layout_distance: two (N, C, H, W) batches of one shape, got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    target = x.float().flatten(2).transpose(1, 2)  # (N, HW, C)
    source = y.detach().float().flatten(2).transpose(1, 2)
    c = source.shape[2]
    products = [source[..., i:i + 1] * source[..., j:j + 1] for i in range(c) for j in range(i, c)]
    design = torch.cat([torch.ones_like(source[..., :1]), source, *products], 2)  # (N, HW, 1 + C + C(C+1)/2)
    gram = design.transpose(1, 2) @ design + eps * design.shape[1] * torch.eye(design.shape[2], device=x.device)
    colour_map = torch.linalg.solve(gram, design.transpose(1, 2) @ target)
    residual = target - design @ colour_map
    variance = (target - target.mean(1, keepdim=True)).pow(2).mean((1, 2))
    return residual.pow(2).mean((1, 2)) / (variance + eps)
