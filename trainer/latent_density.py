"""Ex-post density estimation of a latent code (Ghosh et al., "From Variational to Deterministic
Autoencoders", ICLR 2020, section 4): after training, fit a Gaussian to the codes the encoder gives
the training images and draw test-time codes from it instead of the prior N(0, 1).

BicycleGAN's KL term pulls each photo's code towards N(0, 1) only as hard as ``lambda_kl`` says. A
smaller weight lets the code carry more (five colours and where they are), but then the codes of
real photos fill a narrower, shifted region than N(0, 1): most directions nearly unused, the mean
off zero. A code drawn from the prior then lands where the generator never saw one, and it paints
the objects of a scene in one colour or off-key ones. Drawn from the fitted Gaussian instead, a
code lies where real photos' codes lie.
"""
from __future__ import annotations

import torch


def posterior_means(E, images, batch_size: int = 32) -> torch.Tensor:
    """``E``'s mean code of each image (an iterable of (C, H, W) tensors in [-1, 1]) as an (N, nz)
    float64 tensor; E runs in eval mode under no_grad and is left in the mode it was in."""
    was_training = E.training
    device = next(E.parameters()).device
    codes, chunk = [], []
    E.eval()
    try:
        with torch.no_grad():
            for image in images:
                chunk.append(image)
                if len(chunk) == batch_size:
                    codes.append(E(torch.stack(chunk).to(device))[0].double().cpu())
                    chunk = []
            if chunk:
                codes.append(E(torch.stack(chunk).to(device))[0].double().cpu())
    finally:
        E.train(was_training)
    if not codes:
        raise ValueError("no images to fit the latent code's distribution to")
    return torch.cat(codes)


def fit_gaussian(codes: torch.Tensor, jitter: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and the lower Cholesky factor L of the codes' covariance (plus ``jitter`` on the
    diagonal, so that a direction no image uses still factors): draw ``mean + L @ eps``, eps ~ N(0, 1).
    Needs two codes or more."""
    codes = codes.double()
    if codes.dim() != 2 or codes.shape[0] < 2:
        raise ValueError(f"need two codes or more as an (N, nz) tensor, got shape {tuple(codes.shape)}")
    mean = codes.mean(0)
    cov = torch.cov(codes.T).reshape(codes.shape[1], codes.shape[1])
    scale_tril = torch.linalg.cholesky(cov + jitter * torch.eye(codes.shape[1], dtype=cov.dtype))
    return mean.float(), scale_tril.float()


def draw(mean: torch.Tensor, scale_tril: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Codes ``mean + L @ eps`` (B, nz), float32, for a batch of standard-normal ``eps`` (B, nz);
    float32 under autocast too (a reduced-precision product moved sketch2photo's codes by up to
    1 %, its outputs by up to 10/255)."""
    with torch.autocast(eps.device.type, enabled=False):
        return mean.float() + eps.float() @ scale_tril.float().T
