"""Ex-post density estimation of BicycleGAN's code (trainer.latent_density): the fitted Gaussian
matches the codes' mean and covariance, draws follow it, and an exported model samples from it."""
import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import tiny_overrides
from trainer import config, inference, registry, run
from trainer.latent_density import draw, fit_gaussian, posterior_means
from trainer.modelfile import ModelFileError, load_model, save_model


def test_the_fitted_gaussian_has_the_codes_mean_and_covariance():
    g = torch.Generator().manual_seed(0)
    mixing = torch.tensor([[2.0, 0.0, 0.0], [1.0, 0.5, 0.0], [0.0, 0.0, 0.01]])
    codes = torch.randn(20_000, 3, generator=g) @ mixing.T + torch.tensor([3.0, -1.0, 0.5])
    mean, tril = fit_gaussian(codes)
    assert torch.allclose(mean, torch.tensor([3.0, -1.0, 0.5]), atol=0.05)
    assert torch.allclose(tril @ tril.T, mixing @ mixing.T + 1e-4 * torch.eye(3), atol=0.06)
    drawn = draw(mean, tril, torch.randn(20_000, 3, generator=g))
    assert torch.allclose(drawn.mean(0), mean, atol=0.05)
    assert drawn[:, 2].std() < 0.05  # a direction the codes barely use stays narrow
    with pytest.raises(ValueError, match="two codes"):
        fit_gaussian(codes[:1])


def test_posterior_means_batch_the_images_and_keep_the_encoders_mode():
    from trainer.nets.latent_encoder import LatentEncoder
    E = LatentEncoder(nz=4, nef=8, norm="batch").train()
    images = [torch.rand(3, 32, 32) * 2 - 1 for _ in range(5)]
    codes = posterior_means(E, iter(images), batch_size=2)  # batches of 2, 2 and 1
    assert E.training  # left in the mode it was in
    with torch.no_grad():
        expected = E.eval()(torch.stack(images))[0].double()  # running statistics: batching changes nothing
    assert codes.shape == (5, 4) and torch.allclose(codes, expected, atol=1e-5)
    with pytest.raises(ValueError, match="no images"):
        posterior_means(E, [])


def test_a_posterior_prior_export_draws_codes_where_the_photos_codes_lie(sketches32, tmp_path):
    with pytest.raises(config.ConfigError, match="latent_prior"):
        registry.load_config("sketch2photo", ["model.latent_prior=fitted"])
    with pytest.raises(config.ConfigError, match="nz > 0"):
        registry.load_config("sketch2photo", ["model.latent_prior=posterior"])
    overrides = tiny_overrides(sketches32, steps=2, **{"model.nz": 4, "model.nef": 8,
                                                          "model.latent_prior": "posterior",
                                                          "model.latent_fit_images": 16})
    cfg = registry.load_config("pix2pix-sketches", overrides)
    method = run.train(cfg, tmp_path / "r", progress=False).method
    method.dataset = lambda *a, **k: [{"B": torch.zeros(3, 32, 32)}]  # one photo: no spread to fit
    with pytest.raises(config.ConfigError, match="this dataset has 1"):
        method.export()
    tensors, card = load_model(tmp_path / "r" / "model.safetensors")
    assert card["latent_prior"] == {"name": "posterior", "images": 16}
    mean, tril = tensors["latent_mean"], tensors["latent_scale_tril"]
    assert mean.shape == (4,) and tril.shape == (4, 4) and torch.equal(tril, tril.tril())
    t = inference.load(tmp_path / "r" / "model.safetensors")
    eps = torch.randn(1, 4, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(t.latent(7), mean + eps @ tril.T, atol=1e-6)
    sketch = Image.new("RGB", (40, 30), "white")
    a = t.run_array(sketch, mode="eval", seed=1)
    assert a.shape == (30, 40, 3) and not np.array_equal(a, t.run_array(sketch, mode="eval", seed=2))
    del tensors["latent_scale_tril"]  # a file with half the fit is refused, not drawn from N(0, 1)
    save_model(tmp_path / "broken.safetensors", tensors, card)
    with pytest.raises(ModelFileError, match="latent_scale_tril None"):
        inference.load(tmp_path / "broken.safetensors")
