"""Networks against the reference implementation's state-dict keys and shapes."""
import ast
import re

import pytest
import torch

from tests.conftest import REFERENCE_KEYS
from trainer.nets import build
from trainer.nets.init import init_weights
from trainer.nets.patchgan import (ImageDiscriminator, MultiscaleDiscriminator, NLayerDiscriminator, PixelDiscriminator,
                                   patch_grid, receptive_field)
from trainer.nets.unet import UnetGenerator, unet_depth


def reference(name):
    """(constructor args, parameter count, {key: shape}) of one reference-keys file."""
    lines = (REFERENCE_KEYS / f"{name}.txt").read_text().splitlines()
    found = re.search(r"\((\{.*\})\)", lines[0])
    args = ast.literal_eval(found.group(1)) if found else lines[0]
    params = int(re.search(r"params=(\d+)", lines[1]).group(1))
    keys = {}
    for line in lines[2:]:
        key, shape = line.split(" ", 1)
        keys[key] = tuple(ast.literal_eval(shape)) if shape != "()" else ()
    return args, params, keys


def ours(args):
    norm, net = args["norm"], args.get("netG") or args.get("netD")
    with torch.device("meta"):
        if net and net.startswith("unet"):
            return UnetGenerator(args["input_nc"], args["output_nc"], int(net.split("_")[1]).bit_length() - 1,
                                 args["ngf"], norm, args["use_dropout"])
        if net == "basic":
            return NLayerDiscriminator(args["input_nc"], args["ndf"], 3, norm)
        if net == "pixel":
            return PixelDiscriminator(args["input_nc"], args["ndf"], norm)
    raise AssertionError(net)


@pytest.mark.parametrize("name", ["junyanz_pix2pix_unet256_batch_dropout", "junyanz_unet128_batch",
                                  "junyanz_unet256_instance", "junyanz_D_basic_pix2pix_in6_batch",
                                  "junyanz_D_pixel_in6_batch", "junyanz_D_basic_cyclegan_in3_instance"])
def test_state_dict_matches_reference(name):
    args, params, keys = reference(name)
    net = ours(args)
    state = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert list(state) == list(keys)  # same keys in the same order
    assert state == keys
    assert sum(p.numel() for p in net.parameters()) == params


def test_unet256_parameter_count():
    with torch.device("meta"):
        net = UnetGenerator(3, 3, 8, 64, "batch", True)
    assert sum(p.numel() for p in net.parameters()) == 54_413_955


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_unet_shapes(size):
    net = UnetGenerator(3, 3, unet_depth(size), ngf=4, norm="batch", use_dropout=True)
    y = net(torch.randn(2, 3, size, size))
    assert y.shape == (2, 3, size, size)
    assert y.abs().max() <= 1.0  # tanh


def test_unet_depth_rejects_bad_sizes():
    for bad in (16, 100, 129):
        with pytest.raises(ValueError, match="power-of-two"):
            unet_depth(bad)


def test_patchgan_receptive_field_and_shapes():
    assert [receptive_field(n) for n in (1, 2, 3, 4, 5)] == [16, 34, 70, 142, 286]
    d = NLayerDiscriminator(6, ndf=8, n_layers=3)
    assert d(torch.randn(1, 6, 256, 256)).shape == (1, 1, 30, 30)  # 30x30 patches of 70x70
    assert PixelDiscriminator(6, ndf=8)(torch.randn(1, 6, 32, 32)).shape == (1, 1, 32, 32)
    img = ImageDiscriminator(6, image_size=64, ndf=8)
    assert img(torch.randn(3, 6, 64, 64)).shape == (3, 1, 1, 1)


def test_multiscale_discriminator_scales_and_features():
    """pix2pixHD's D: one PatchGAN per scale, each on the input halved once more; features end in the
    same logits the plain call returns, and a one-scale PatchGAN's features end in its own output."""
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(6, ndf=4, n_layers=3, norm="none", num_D=3)
    x = torch.randn(2, 6, 128, 128)
    logits = d(x)
    assert [t.shape[-1] for t in logits] == [patch_grid(128, 3), patch_grid(64, 3), patch_grid(32, 3)] == [14, 6, 2]
    feats = d(x, features=True)
    assert len(feats) == 3 and all(len(f) == 3 + 2 for f in feats)  # n_layers + 1 activations, then logits
    for f, t in zip(feats, logits):
        torch.testing.assert_close(f[-1], t)
    one = NLayerDiscriminator(6, ndf=4, n_layers=2, norm="none")
    torch.testing.assert_close(one(x, features=True)[0][-1], one(x))
    # the second scale sees the 3x3-average-pooled input: its PatchGAN alone on that input agrees
    pooled = torch.nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    torch.testing.assert_close(d.scales[1](pooled), logits[1])
    assert patch_grid(16, 3) == 0
    with pytest.raises(ValueError, match="num_D"):
        MultiscaleDiscriminator(6, num_D=0)


def test_patchgan_receptive_field_empirically():
    """Perturbing one input pixel changes a 70x70 region's worth of patch outputs, no more."""
    d = NLayerDiscriminator(3, ndf=4, n_layers=3, norm="none").double()
    init_weights(d, "normal", 0.5)
    x = torch.zeros(1, 3, 140, 140, dtype=torch.double, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = (x.grad.abs().sum(dim=(0, 1, 3)) > 0).nonzero()
    assert rows.max() - rows.min() + 1 <= 70


@pytest.mark.parametrize("kind", ["normal", "xavier", "kaiming", "orthogonal"])
def test_init_weights(kind):
    net = init_weights(UnetGenerator(3, 3, 5, ngf=8), kind, 0.02)
    w = net.model.model[0].weight
    assert torch.isfinite(w).all() and w.std() > 0
    if kind == "normal":
        assert abs(w.std().item() - 0.02) < 0.005


def test_init_and_build_errors():
    with pytest.raises(ValueError, match="init_type"):
        init_weights(UnetGenerator(3, 3, 5, ngf=4), "uniformish")
    with pytest.raises(ValueError, match="unknown network"):
        build("nope")


def _checkerboard(y: torch.Tensor) -> float:
    """The share of an image's variation (away from the border) that repeats with period 2."""
    y = y[..., 8:-8, 8:-8]
    blocks = y.unfold(-2, 2, 2).unfold(-2, 2, 2)  # (..., H/2, W/2, 2, 2)
    pattern = blocks.mean((-4, -3))  # the average 2x2 tile
    return float((pattern - pattern.mean((-2, -1), keepdim=True)).abs().mean() / (y - y.mean()).abs().mean().clamp_min(1e-12))


def test_resize_convolution_unet_paints_no_checkerboard():
    """Odena et al. 2016: on a flat input the transposed convolutions' uneven overlap paints a grid of
    period 2; nearest doubling + 3x3 convolution leaves a flat image flat."""
    torch.manual_seed(0)
    x = torch.full((1, 3, 64, 64), 0.3) + 0.05 * torch.linspace(-1, 1, 64)  # a gentle horizontal ramp
    grids = {}
    for up in ("transpose", "resize"):
        net = UnetGenerator(3, 3, 6, ngf=8, norm="batch", upsample=up)
        init_weights(net, "normal", 0.02)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.05)  # a trained-looking net: more than init's scale
            grids[up] = _checkerboard(net.eval()(x))
    assert grids["resize"] < 0.02 < grids["transpose"], grids
    with pytest.raises(ValueError, match="upsample"):
        UnetGenerator(3, 3, 5, ngf=4, upsample="bilinear-ish")
    resize = UnetGenerator(3, 3, 7, ngf=4, upsample="resize")
    assert resize(torch.randn(1, 3, 128, 128)).shape == (1, 3, 128, 128)
    assert set(resize.state_dict()) != set(UnetGenerator(3, 3, 7, ngf=4).state_dict())  # our format only


def test_latent_unet_and_encoder():
    """BicycleGAN's nets: z stacked onto the input (None = zeros), and E's mean and log-variance of
    any image size."""
    from trainer.nets.latent_encoder import LatentEncoder
    torch.manual_seed(0)
    G = UnetGenerator(3, 3, num_downs=5, ngf=8, nz=4).eval()
    x = torch.randn(2, 3, 32, 32)
    assert G.model.model[0].in_channels == 7
    z = torch.randn(2, 4)
    assert G(x, z).shape == (2, 3, 32, 32)
    assert torch.equal(G(x), G(x, torch.zeros(2, 4)))
    assert not torch.allclose(G(x, z), G(x))  # the code reaches the output
    E = LatentEncoder(3, nz=4, nef=8, n_blocks=4)
    for size in (64, 128, 96):
        mu, logvar = E(torch.randn(3, 3, size, size))
        assert mu.shape == logvar.shape == (3, 4)
    assert isinstance(build("latent_encoder", nz=2, nef=4), LatentEncoder)  # by name, from a card


def test_a_grid_encoder_takes_a_global_encoders_weights_as_the_same_function():
    """``grid`` > 1: E's linear layers read a grid x grid map (where each colour is); a global
    encoder's state loads into it and gives the same codes, which then can learn position."""
    from trainer.modelfile import load_strict
    from trainer.nets.latent_encoder import LatentEncoder
    torch.manual_seed(0)
    flat, grid = LatentEncoder(3, nz=4, nef=8, n_blocks=4), LatentEncoder(3, nz=4, nef=8, n_blocks=4, grid=2)
    assert grid.mu.in_features == 4 * flat.mu.in_features
    x = torch.randn(2, 3, 64, 64)
    with pytest.raises(Exception, match="wrong shapes"):
        load_strict(grid, flat.state_dict(), "E")
    load_strict(grid, grid.adapt_state(flat.state_dict()), "E")
    for a, b in zip(flat(x), grid(x)):
        assert torch.allclose(a, b, atol=1e-5)
    own = grid.state_dict()
    assert all(torch.equal(own[k], v) for k, v in grid.adapt_state(own).items())  # its own: unchanged
