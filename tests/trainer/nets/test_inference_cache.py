"""Weight-derived tensors (the small-map matrix, the resize-convolution's phase kernels) are cached
only on nets marked inference-only: fused Adam updates weights in place without bumping their
versions (not always), so a training net must make them at every call."""
import pytest
import torch
import torch.nn.functional as F

from trainer.nets.inference_cache import derived, mark_inference_only
from trainer.nets.resize_conv import NearestResizeConv2d
from trainer.nets.small_conv import SmallMapConv2d


def small_map():
    return SmallMapConv2d(16, 64, 4, 2, 1), torch.randn(1, 16, 4, 4), \
        lambda m, x: F.conv2d(x, m.weight, m.bias, stride=2, padding=1)


def resize():
    return NearestResizeConv2d(4, 4), torch.randn(1, 4, 8, 8), \
        lambda m, x: F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), m.weight, m.bias, padding=1)


@pytest.mark.parametrize("make", [small_map, resize])
@pytest.mark.parametrize("frozen", [False, True])  # a sample under no_grad / a frozen D in G's step
def test_a_training_net_follows_fused_adam_updates(make, frozen):
    torch.manual_seed(0)
    m, x, plain = make()
    opt = torch.optim.Adam(m.parameters(), lr=0.1, fused=True)
    for _ in range(2):
        m(x).square().mean().backward()
        opt.step()
        opt.zero_grad()
        if frozen:
            m.requires_grad_(False)
            xg = x.clone().requires_grad_(True)
            torch.testing.assert_close(m(xg), plain(m, xg), rtol=1e-5, atol=1e-5)
            m.requires_grad_(True)
        else:
            with torch.no_grad():
                torch.testing.assert_close(m(x), plain(m, x), rtol=1e-5, atol=1e-5)


def test_made_once_on_an_inference_only_net_and_again_when_the_weight_changes():
    m = torch.nn.Linear(3, 2)
    made = []

    def make():
        made.append(1)
        return m.weight.t().contiguous()
    with torch.no_grad():
        derived(m, "t", make)
        derived(m, "t", make)
        assert len(made) == 2  # not marked: made at every call
        mark_inference_only(m)
        derived(m, "t", make)
        derived(m, "t", make)
        assert len(made) == 3
        m.weight.mul_(2)  # a tracked in-place change
        torch.testing.assert_close(derived(m, "t", make), m.weight.t())
        m.to(torch.float64)  # a new tensor
        assert derived(m, "t", make).dtype == torch.float64 and len(made) == 5
    assert "_derived_t" not in m.state_dict()


def test_a_stylegan_generator_marked_inference_only_computes_what_it_did_and_follows_weight_changes():
    """StyleGAN2's equalised weights and demodulation sums are made once on an inference-only
    generator (batch 1: per-sample weights; batch 2: the shared weight): its images equal an
    unmarked copy's, also after an in-place weight change."""
    import copy

    from trainer.nets.stylegan import StyleGenerator
    torch.manual_seed(0)
    G = StyleGenerator(size=16, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32).eval()
    marked = copy.deepcopy(G)
    mark_inference_only(marked)
    for batch in (1, 2):
        z = torch.randn(batch, 32, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            for _ in range(2):
                want = G([z], randomize_noise=False)
                got = marked([z], randomize_noise=False)
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
                for net in (G, marked):
                    for p in net.parameters():
                        p.mul_(1.05)  # a tracked in-place change on both


@pytest.mark.parametrize("make", [small_map, resize])
def test_a_frozen_inference_net_can_be_backpropagated_through_after_inference_mode(make):
    """The cache is made outside inference mode: a latent projection (gradients to the input
    through the frozen, loaded net) works after the net ran under torch.inference_mode."""
    torch.manual_seed(0)
    m, x, plain = make()
    mark_inference_only(m)
    with torch.inference_mode():
        m(x)
    m.requires_grad_(False)
    xg = x.clone().requires_grad_(True)
    m(xg).square().sum().backward()
    xp = x.clone().requires_grad_(True)
    plain(m, xp).square().sum().backward()
    torch.testing.assert_close(xg.grad, xp.grad, rtol=1e-4, atol=1e-5)
