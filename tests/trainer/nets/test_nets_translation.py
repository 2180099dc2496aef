"""CycleGAN's ResNet generator and StarGAN's networks against the reference keys and counts."""
import pytest
import torch

from tests.trainer.nets.test_nets import reference
from trainer.nets.resnet import ResnetGenerator
from trainer.nets.stargan import StarDiscriminator, StarGenerator


@pytest.mark.parametrize("name", ["junyanz_cyclegan_resnet9_instance", "junyanz_resnet6_instance",
                                  "junyanz_resnet9_batch"])
def test_resnet_generator_matches_reference(name):
    args, params, keys = reference(name)
    with torch.device("meta"):
        net = ResnetGenerator(args["input_nc"], args["output_nc"], args["ngf"], args["norm"], args["use_dropout"],
                              n_blocks=int(args["netG"].split("_")[1][0]))
    state = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert list(state) == list(keys) and state == keys
    assert sum(p.numel() for p in net.parameters()) == params


def test_resnet_dropout_shifts_the_second_conv():
    with torch.device("meta"):
        keys = ResnetGenerator(n_blocks=1, use_dropout=True).state_dict().keys()
    assert "model.10.conv_block.6.weight" in keys and "model.10.conv_block.5.weight" not in keys


def test_resnet_shapes():
    y = ResnetGenerator(ngf=8, n_blocks=2)(torch.randn(2, 3, 64, 64))
    assert y.shape == (2, 3, 64, 64) and y.abs().max() <= 1


def test_stargan_networks_match_reference():
    _, g_params, g_keys = reference("stargan_G_celeba_c5")
    _, d_params, d_keys = reference("stargan_D_celeba_128_c5")
    with torch.device("meta"):
        g, d = StarGenerator(64, 5, 6), StarDiscriminator(128, 64, 5, 6)
    assert {k: tuple(v.shape) for k, v in g.state_dict().items()} == g_keys
    assert {k: tuple(v.shape) for k, v in d.state_dict().items()} == d_keys
    assert list(g.state_dict()) == list(g_keys) and list(d.state_dict()) == list(d_keys)
    assert sum(p.numel() for p in g.parameters()) == g_params == 8_430_528
    assert sum(p.numel() for p in d.parameters()) == d_params == 44_762_048


def test_stargan_forward_shapes():
    g, d = StarGenerator(8, 5, 2), StarDiscriminator(32, 8, 5, 4)
    x, c = torch.randn(3, 3, 32, 32), torch.tensor([[1, 0, 0, 1, 0]] * 3, dtype=torch.float32)
    y = g(x, c)
    src, cls = d(y)
    assert y.shape == x.shape and src.shape == (3, 1, 2, 2) and cls.shape == (3, 5)
