"""The StyleGAN2 generator against rosinality's keys and count; crossover and noise semantics."""
import pytest
import torch

from tests.trainer.nets.test_nets import reference
from trainer.nets.stylegan import StyleGenerator


@pytest.mark.parametrize("name, size", [("rosinality_stylegan2_G_256_cm2", 256),
                                        ("rosinality_stylegan2_G_1024_cm2", 1024)])
def test_generator_matches_reference(name, size):
    _, params, keys = reference(name)
    with torch.device("meta"):
        g = StyleGenerator(size, 512, 8, 2)
    state = {k: tuple(v.shape) for k, v in g.state_dict().items()}
    assert list(state) == list(keys) and state == keys
    assert sum(p.numel() for p in g.parameters()) == params
    if size == 256:
        assert params == 30_034_338


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    g = StyleGenerator(32, style_dim=32, n_mlp=2, channel_max=16)
    with torch.no_grad():  # give the noise inputs a visible strength
        for m in g.modules():
            if type(m).__name__ == "NoiseInjection":
                m.weight.fill_(0.3)
    return g


def test_crossover_extremes_give_the_pure_latents(small):
    z1, z2 = torch.randn(2, 32), torch.randn(2, 32)
    noise = small.const_noise()
    with torch.no_grad():
        w1, w2 = small.mapping(z1), small.mapping(z2)
        only_w2 = small([z1, z2], inject_index=0, noise=noise)
        only_w1 = small([z1, z2], inject_index=small.n_latent, noise=noise)
        torch.testing.assert_close(only_w1, small([w1], input_is_latent=True, noise=noise))
        torch.testing.assert_close(only_w2, small([w2], input_is_latent=True, noise=noise))
    assert small.layer_resolutions() == [4, 4, 8, 8, 16, 16, 32, 32]


def test_noise_modes(small):
    z = torch.randn(1, 32)
    with torch.no_grad():
        a = small([z], randomize_noise=False)
        b = small([z], randomize_noise=False)
        r1, r2 = small([z]), small([z])
        off = small([z], noise=[torch.zeros_like(n) for n in small.const_noise()])
        strength0 = small([z], noise=[0.0 * n for n in small.const_noise()])
    assert torch.equal(a, b) and not torch.equal(r1, r2)
    torch.testing.assert_close(off, strength0)
    assert not torch.allclose(off, a)


def test_truncation_zero_gives_the_mean_latent_image(small):
    with torch.no_grad():
        mean = small.mean_latent(512)
        imgs = [small([torch.randn(1, 32)], truncation=0.0, truncation_latent=mean, randomize_noise=False)
                for _ in range(3)]
        ref = small([mean], input_is_latent=True, randomize_noise=False)
    for im in imgs:
        torch.testing.assert_close(im, ref)
    assert imgs[0].shape == (1, 3, 32, 32)


def test_discriminator_matches_reference_and_runs():
    from trainer.nets.stylegan_d import StyleDiscriminator
    _, params, keys = reference("rosinality_stylegan2_D_256_cm2")
    with torch.device("meta"):
        d = StyleDiscriminator(256, 2)
    state = {k: tuple(v.shape) for k, v in d.state_dict().items()}
    assert list(state) == list(keys) and state == keys
    assert sum(p.numel() for p in d.parameters()) == params
    small = StyleDiscriminator(32, channel_max=16)
    assert small(torch.randn(6, 3, 32, 32)).shape == (6, 1)  # 6 is not a multiple of the stddev group
    assert small(torch.randn(8, 3, 32, 32)).shape == (8, 1)


def test_rosinality_checkpoint_import_and_translator(tmp_path):
    import argparse

    import numpy as np

    from trainer import inference
    from trainer.conversion import import_checkpoint
    from trainer.modelfile import read_card
    torch.manual_seed(0)
    g = StyleGenerator(32, style_dim=32, n_mlp=3, channel_max=16)
    latent_avg = torch.randn(32)
    torch.save({"g": g.state_dict(), "g_ema": g.state_dict(), "d": {}, "latent_avg": latent_avg,
                "args": argparse.Namespace(size=32, n_mlp=3)}, tmp_path / "020000.pt")
    out = import_checkpoint(tmp_path / "020000.pt", tmp_path / "s.safetensors")
    card = read_card(out)
    assert card["method"] == "stylegan" and card["nets"]["G"]["args"]["size"] == 32
    assert card["nets"]["G"]["args"]["n_mlp"] == 3 and card["training"]["generator"] == "g_ema"
    t = inference.load(out)
    assert torch.equal(t.mean_w[0], latent_avg)
    n = t.G.n_latent
    run = lambda **c: np.asarray(t.run(**c))  # noqa: E731
    assert run(seed=1).shape == (32, 32, 3)
    # crossover = all layers is the source alone, 0 is the style seed alone
    assert np.array_equal(run(seed=1, style_seed=2, crossover=n), run(seed=1, style_seed=9, crossover=n))
    assert np.array_equal(run(seed=1, style_seed=2, crossover=0), run(seed=2, style_seed=5, crossover=n))
    # psi 0 gives the mean-latent image whatever the seed; strength 0 equals noise off
    assert np.array_equal(run(seed=1, psi=0.0), run(seed=7, psi=0.0))
    assert np.array_equal(run(seed=3, noise_mode="const", noise_strength=0.0), run(seed=3, noise_mode="off"))
    assert np.array_equal(run(seed=3, noise_mode="off"), run(seed=3, noise_mode="off"))


@pytest.mark.parametrize("skips_from", [16, 32])
def test_output_skips_from_a_resolution(skips_from):
    """Below ``output_skips_from`` the ToRGB outputs are left out (StyleGAN2's output skips from that
    resolution on; the size itself: the original StyleGAN's single output). Their weights stay zero
    and untrained, so the reference synthesis, which adds every ToRGB, draws the same image."""
    torch.manual_seed(0)
    g = StyleGenerator(32, style_dim=32, n_mlp=2, channel_max=16, output_skips_from=skips_from)
    left_out = [g.get_submodule(n) for n in g.left_out_to_rgbs()]
    assert len(left_out) == {16: 2, 32: 3}[skips_from]
    # styles 1 and 3 drive a left-out ToRGB and the next resolution's first convolution: named by it
    assert g.layer_resolutions() == {16: [4, 8, 8, 16, 16, 16, 32, 32], 32: [4, 8, 8, 16, 16, 32, 32, 32]}[skips_from]
    from trainer.methods.base import set_requires_grad
    set_requires_grad(g, True)
    assert not any(p.requires_grad for m in left_out for p in m.parameters())  # never trained
    z = torch.randn(4, 32)
    image = g([z], randomize_noise=False)
    image.square().mean().backward()
    for m in left_out:
        assert all(p.grad is None for p in m.parameters())
        assert not m.conv.weight.any() and not m.bias.any()
    assert g.to_rgbs[-1].conv.weight.grad.abs().sum() > 0
    with torch.no_grad():
        g.output_skips_from = 4  # the same weights, every ToRGB added
        torch.testing.assert_close(g([z], randomize_noise=False), image.detach())


@pytest.mark.parametrize("bad", [2, 12, 64, "16", 16.0, True])
def test_output_skips_from_must_be_a_resolution_of_the_net(bad):
    with pytest.raises(ValueError, match=f"output_skips_from = {bad!r}: a power of two"):
        StyleGenerator(32, style_dim=32, n_mlp=2, channel_max=16, output_skips_from=bad)


def test_a_model_card_whose_generator_cannot_be_built_names_the_file(tmp_path):
    from trainer import inference
    from trainer.errors import ModelFileError
    from trainer.modelfile import save_model
    g = StyleGenerator(16, style_dim=16, n_mlp=2, channel_max=16)
    args = dict(size=16, style_dim=16, n_mlp=2, channel_max=16, output_skips_from="16")  # a hand-edited card
    model = save_model(tmp_path / "m.safetensors", {f"G.{k}": v for k, v in g.state_dict().items()},
                       {"method": "stylegan", "image_size": 16, "nets": {"G": {"name": "stylegan_G", "args": args}}})
    with pytest.raises(ModelFileError, match=r"m\.safetensors: the model card's net G \(stylegan_G\) cannot be "
                                             r"built: output_skips_from = '16': a power of two \(an int\)"):
        inference.load(model)
