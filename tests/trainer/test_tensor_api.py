"""The tensor API (``translator.run_tensor(x, **controls)``, ``translator(x)``): a batch equals the
same images through ``run_array`` one by one; StyleGAN takes z or w and the stored noise maps."""
import argparse

import numpy as np
import pytest
import torch

from tests import tiny_models
from trainer import inference
from trainer.data.transforms import to_uint8
from trainer.conversion import import_checkpoint
from trainer.modelfile import save_model
from trainer.nets import build


def save(path, nets: dict, card: dict, extra: dict | None = None):
    """A tiny model file: ``nets`` {name: (net name, args)}, random weights (seed 0)."""
    tensors = dict(extra or {})
    for name, (net, args) in nets.items():
        torch.manual_seed(0)
        tensors.update({f"{name}.{k}": v for k, v in build(net, **args).state_dict().items()})
    save_model(path, tensors, {"image_size": 32, "channels": 3, "value_range": [-1, 1],
                               "nets": {n: {"name": a, "args": b} for n, (a, b) in nets.items()},
                               "training": {"preset": "test", "steps": 0}, **card})
    return path


def bicycle(path):
    """A BicycleGAN U-Net (latent code nz=4, resize-convolutions) with a fitted latent Gaussian."""
    g = torch.Generator().manual_seed(1)
    tril = torch.tril(torch.rand(4, 4, generator=g)) + torch.eye(4)
    return save(path, {"G": ("unet", dict(input_nc=3, output_nc=3, num_downs=5, ngf=8, norm="batch", use_dropout=True,
                                          upsample="resize", nz=4))},
                {"method": "pix2pix", "task": "sketch2photo", "direction": "AtoB", "inference": {"mode": "eval"}},
                {"latent_mean": torch.randn(4, generator=g), "latent_scale_tril": tril})


def bicycle_objects(path):
    """``bicycle`` with per-object codes: a code-map U-Net, the colours a seed draws from, and a
    segmenter (net S)."""
    g = torch.Generator().manual_seed(2)
    return save(path, {"G": ("unet", dict(input_nc=3, output_nc=3, num_downs=5, ngf=8, norm="batch", use_dropout=True,
                                          upsample="resize", nz=4, region_nc=4)),
                       "S": ("unet", dict(input_nc=3, output_nc=2, num_downs=7, ngf=4, norm="batch"))},
                {"method": "bicyclegan", "task": "sketch2photo", "direction": "AtoB", "inference": {"mode": "eval"}},
                {"region_colours": torch.rand(50, 3, generator=g) * 2 - 1})


def residual_cyclegan(path):
    args = dict(input_nc=3, output_nc=3, ngf=8, norm="instance", use_dropout=False, n_blocks=1, residual=True)
    return save(path, {"G_A": ("resnet", args), "G_B": ("resnet", args)},
                {"method": "cyclegan", "task": "photo2photo", "directions": ["AtoB", "BtoA"]})


def attention_stargan(path):
    return save(path, {"G": ("stargan_G", dict(conv_dim=8, c_dim=3, repeat_num=1, attention=True))},
                {"method": "stargan", "task": "attributes", "domains": ["p", "q", "r"], "exclusive_groups": [],
                 "classes": []})


def dcgan(path):
    return save(path, {"G": ("dcgan_G", dict(nz=8, ngf=8, nc=3, image_size=32, n_classes=3))},
                {"method": "dcgan", "task": "sample", "classes": ["x", "y", "z"]})


def fast_style(path):
    return save(path, {"G": ("transformer_net", dict(ngf=4, n_blocks=1))}, {"method": "fast_style", "task": "style"})


MAKERS = {"pix2pix": tiny_models.pix2pix, "bicycle": bicycle, "bicycle_objects": bicycle_objects, "cyclegan": tiny_models.cyclegan,
          "residual_cyclegan": residual_cyclegan, "stargan": tiny_models.stargan,
          "attention_stargan": attention_stargan, "stylegan": tiny_models.stylegan, "dcgan": dcgan,
          "srgan": tiny_models.srresnet, "fast_style": fast_style}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """``tiny(kind)``: the path of a tiny model file of that kind (written once)."""
    folder = tmp_path_factory.mktemp("tiny")

    def make(kind):
        path = folder / f"{kind}.safetensors"
        if not path.exists():
            MAKERS[kind](path)
        return path
    return make


def images(n=3, size=32, seed=0):
    """n random uint8 images (HWC) and the same as one NCHW batch in [-1, 1]."""
    arrays = np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return arrays, torch.from_numpy(arrays).permute(0, 3, 1, 2).float() / 127.5 - 1


def assert_uint8_close(batch: torch.Tensor, singles: list[np.ndarray]):
    got = to_uint8(batch)
    assert got.shape == np.stack(singles).shape
    diff = np.abs(got.astype(int) - np.stack(singles).astype(int))
    assert diff.max() <= 1, diff.max()


@pytest.mark.parametrize("kind, controls", [
    ("pix2pix", {"mode": "eval"}),
    ("pix2pix", {"mode": "deterministic"}),
    ("pix2pix", {"mode": "paper", "seed": 5}),
    ("bicycle", {"mode": "eval", "seed": 2}),
    ("bicycle", {"mode": "paper", "seed": 3}),
    ("bicycle_objects", {"mode": "eval", "seed": 4}),
    ("cyclegan", {"direction": "BtoA"}),
    ("cyclegan", {"direction": "AtoB", "output": "reconstruction"}),
    ("residual_cyclegan", {}),
    ("stargan", {"Blond_Hair": True, "Male": True}),
    ("attention_stargan", {"q": True}),
    ("srgan", {"tile": 16, "overlap": 4}),
    ("fast_style", {}),
])
def test_image_batch_equals_single_runs(tiny, kind, controls):
    t = inference.load(tiny(kind))
    arrays, x = images(size=8 if kind == "srgan" else 32)
    batch = t.run_tensor(x, **controls)
    assert batch.dtype == torch.float32 and batch.min() >= -1 and batch.max() <= 1
    assert_uint8_close(batch, [t.run_array(a, **controls) for a in arrays])
    torch.testing.assert_close(t(x, **controls), batch, rtol=0, atol=0)  # __call__ is run_tensor


@pytest.mark.parametrize("kind, controls", [("stylegan", {"psi": 0.5, "noise_seed": 3}),
                                            ("stylegan", {"psi": 1.0, "noise_mode": "stored"}),
                                            ("stylegan", {"psi": 0.7, "crossover": 2, "style_seed": 9}),
                                            ("dcgan", {"class_name": "y"})])
def test_latent_batch_equals_single_runs(tiny, kind, controls):
    t = inference.load(tiny(kind))
    seeds = [0, 4, 11]
    width = t.G.style_dim if kind == "stylegan" else t.card["nets"]["G"]["args"]["nz"]
    z = torch.cat([torch.randn(1, width, generator=torch.Generator().manual_seed(s)) for s in seeds])
    batch = t.run_tensor(z=z, **controls)
    assert batch.shape == (3, 3, 32, 32)
    assert_uint8_close(batch, [t.run_array(seed=s, **controls) for s in seeds])


def test_stylegan_takes_w_single_or_per_layer(tiny):
    t = inference.load(tiny("stylegan"))
    z = torch.randn(2, t.G.style_dim, generator=torch.Generator().manual_seed(0))
    w = t.G.mapping(z).detach()
    by_z = t.run_tensor(z=z, psi=0.6)
    torch.testing.assert_close(t.run_tensor(w=w, psi=0.6), by_z)
    per_layer = w.unsqueeze(1).repeat(1, t.G.n_latent, 1)
    torch.testing.assert_close(t.run_tensor(w=per_layer, psi=0.6), by_z)
    # style mixing with a batch of style latents: layers from the crossover on take style_w
    mixed = t.run_tensor(w=w, style_w=w.flip(0), crossover=0, psi=0.6)
    torch.testing.assert_close(mixed, by_z.flip(0))


def test_stored_noise_is_the_checkpoints_own(tiny):
    t = inference.load(tiny("stylegan"))
    with torch.no_grad():
        for m in t.G.modules():  # a visible noise strength
            if type(m).__name__ == "NoiseInjection":
                m.weight.fill_(0.5)
    z = torch.randn(2, t.G.style_dim, generator=torch.Generator().manual_seed(1))
    stored = t.run_tensor(z=z, psi=1.0, noise_mode="stored")
    with torch.no_grad():
        expected = t.G([z], randomize_noise=False).clamp(-1, 1)  # rosinality: noise = the noises.noise_N buffers
    torch.testing.assert_close(stored, expected, rtol=0, atol=1e-5)
    assert not torch.allclose(t.run_tensor(z=z, psi=1.0, noise_mode="const"), stored)  # const ignores them
    half = t.run_tensor(z=z, psi=1.0, noise_mode="stored", noise_strength=0.5)
    with torch.no_grad():
        expected = t.G([z], noise=[0.5 * n for n in t.G.const_noise()]).clamp(-1, 1)
    torch.testing.assert_close(half, expected, rtol=0, atol=1e-5)
    # the studio's path takes the same mode
    assert np.array_equal(t.run_array(seed=1, noise_mode="stored"), t.run_array(seed=1, noise_mode="stored"))
    with torch.no_grad():
        t.G.noises.noise_3.mul_(-1)
    assert not torch.allclose(t.run_tensor(z=z, psi=1.0, noise_mode="stored"), stored)


def test_imported_rosinality_checkpoint_reproduces_the_reference_output(tmp_path):
    """A rosinality checkpoint (g_ema, latent_avg, args) imported and run with noise_mode stored
    gives what rosinality's ``g_ema([z], truncation=psi, truncation_latent=latent_avg,
    randomize_noise=False)`` gives; our StyleGenerator is that module, module for module."""
    torch.manual_seed(3)
    g = build("stylegan_G", size=16, style_dim=16, n_mlp=2, channel_multiplier=1, channel_max=32).eval()
    with torch.no_grad():
        for m in g.modules():
            if type(m).__name__ == "NoiseInjection":
                m.weight.fill_(0.4)
        latent_avg = g.mean_latent(64).reshape(-1)
    torch.save({"g_ema": g.state_dict(), "latent_avg": latent_avg, "args": argparse.Namespace(size=16)},
               tmp_path / "ckpt.pt")
    t = inference.load(import_checkpoint(tmp_path / "ckpt.pt", tmp_path / "m.safetensors"))
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = g([z], truncation=0.5, truncation_latent=latent_avg, randomize_noise=False)
    ours = t.run_tensor(z=z, psi=0.5, noise_mode="stored")
    torch.testing.assert_close(ours, reference.clamp(-1, 1), rtol=0, atol=1e-5)


def test_bicycle_z_is_a_standard_normal_draw_through_the_fitted_gaussian(tiny):
    t = inference.load(tiny("bicycle"))
    arrays, x = images(n=2)
    eps = torch.randn(1, 4, generator=torch.Generator().manual_seed(7))
    by_seed = t.run_tensor(x, seed=7, mode="eval")
    torch.testing.assert_close(t.run_tensor(x, z=eps.expand(2, -1), mode="eval"), by_seed)
    assert not torch.allclose(t.run_tensor(x, z=-eps, mode="eval"), by_seed)


def test_chw_in_chw_out_and_clear_errors(tiny):
    t = inference.load(tiny("pix2pix"))
    _, x = images(n=1)
    assert t.run_tensor(x[0], mode="eval").shape == (3, 32, 32)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        t.run_tensor((x + 1) * 127.5)
    with pytest.raises(ValueError, match="multiples of 32"):
        t.run_tensor(x[:, :, :24])
    with pytest.raises(ValueError, match="unknown control"):
        t.run_tensor(x, strength=2)
    with pytest.raises(ValueError, match="no latent code"):
        t.run_tensor(x, z=torch.zeros(1, 4))
    with pytest.raises(ValueError, match="pass x"):
        t.run_tensor()
    with pytest.raises(ValueError, match="float tensor"):
        t.run_tensor(np.zeros((1, 3, 32, 32), np.uint8))
    s = inference.load(tiny("stylegan"))
    with pytest.raises(ValueError, match="takes no image"):
        s.run_tensor(x)
    with pytest.raises(ValueError, match=r"z: expected a tensor of shape \(N, 32\)"):
        s.run_tensor(z=torch.zeros(2, 5))
    with pytest.raises(ValueError, match="not both"):
        s.run_tensor(z=torch.zeros(1, 32), w=torch.zeros(1, 32))
    star = inference.load(tiny("stargan"))
    with pytest.raises(ValueError, match=r"c: expected a tensor of shape \(1, 5\)"):
        star.run_tensor(x, c=torch.zeros(1, 3))


def test_run_array_takes_float_arrays_in_0_1_and_names_bad_ones(tmp_path):
    from trainer.data.imageio import ImageError
    t = inference.load(tiny_models.pix2pix(tmp_path / "p.safetensors"))
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    assert np.array_equal(t.run_array(u8.astype(np.float32) / 255), t.run_array(u8))
    with pytest.raises(ImageError, match=r"values in \[0, 1\], got 0 to 255"):
        t.run_array(u8.astype(np.float64))
    mask = rng.integers(0, 2, (40, 48))
    with pytest.raises(ImageError, match=r"only 0 and 1.*astype\(bool\)"):
        t.run_array(mask)
    assert np.array_equal(t.run_array(mask.astype(bool)), t.run_array(mask.astype(np.uint8) * 255))
    from trainer.data.imageio import image_from_array
    assert np.asarray(image_from_array((mask > 0).astype(np.uint8))).max() == 1  # uint8 as it is: nearly black
    with pytest.raises(ImageError, match=r"shape \(1, 64, 64\): expected .* \(channels first\? pass a\.transpose"):
        t.run_array(np.zeros((1, 64, 64), np.uint8))
    with pytest.raises(ImageError, match=r"shape \(0, 64, 1\) has no pixels"):  # as given, not as squeezed
        t.run_array(np.zeros((0, 64, 1), np.uint8))
    with pytest.raises(ImageError, match=r"shape \(3, 64, 64, 1\): expected"):
        t.run_array(np.zeros((3, 64, 64, 1), np.uint8))
    # HWC as documented: thin and small images too (tests/trainer/test_native_resolution.py)
    assert t.run_array(np.zeros((3, 64, 4), np.uint8)).shape == (3, 64, 3)
    assert t.run_array(np.zeros((5, 5), np.uint8)).shape[:2] == (5, 5)
    s = inference.load(tiny_models.stylegan(tmp_path / "s.safetensors"))
    with pytest.raises(ValueError, match=r"generates from a seed and takes no image: leave image out \(seed= chooses what it makes\)"):
        s.run_array(u8)
    with pytest.raises(ValueError, match=r"takes no image: leave image out$"):
        s.run_array(u8, seed=1)
    assert s.run_array(seed=1).ndim == 3
