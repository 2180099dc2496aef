"""The small-map convolutions compute what nn.Conv2d / nn.ConvTranspose2d compute, with the same
gradients and second derivatives, on the maps where they take the matrix product and elsewhere."""
import pytest
import torch
from torch import nn

from trainer.nets.inference_cache import mark_inference_only
from trainer.nets.small_conv import SmallMapConv2d, SmallMapConvTranspose2d


def twins(plain_cls, small_cls, *args, **kwargs):
    torch.manual_seed(0)
    plain = plain_cls(*args, **kwargs).double()
    small = small_cls(*args, **kwargs).double()
    small.load_state_dict(plain.state_dict())
    assert list(small.state_dict()) == list(plain.state_dict())
    return plain, small


def derivatives(net, x):
    """Output, weight gradient and a gradient-penalty-like second derivative."""
    x = x.clone().requires_grad_(True)
    y = net(x)
    gx, = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    gw, = torch.autograd.grad(gx.square().sum() + y.sum(), net.weight)
    return y, gw


@pytest.mark.parametrize("cin, cout, k, stride, pad, size, batch", [
    (16, 64, 4, 2, 1, 4, 2),  # 2 x 2x2 = 8 output positions <= 64 / 2: the product
    (16, 64, 4, 2, 1, 8, 8),  # 8 x 4x4 = 128 positions: the ordinary convolution
    (8, 32, 3, 1, 1, 2, 1),
    (8, 32, 4, 2, 0, 6, 3),
])
def test_conv_matches_nn_conv2d(cin, cout, k, stride, pad, size, batch):
    plain, small = twins(nn.Conv2d, SmallMapConv2d, cin, cout, k, stride, pad)
    x = torch.randn(batch, cin, size, size, dtype=torch.float64)
    for a, b in zip(derivatives(plain, x), derivatives(small, x)):
        torch.testing.assert_close(b, a)


@pytest.mark.parametrize("cin, cout, k, stride, pad, out_pad, size, batch", [
    (64, 16, 4, 2, 1, 0, 1, 1), (64, 16, 4, 2, 1, 0, 4, 2), (32, 8, 3, 2, 1, 1, 2, 2), (16, 8, 4, 2, 1, 0, 8, 2),
])
def test_transposed_conv_matches_nn_convtranspose2d(cin, cout, k, stride, pad, out_pad, size, batch):
    plain, small = twins(nn.ConvTranspose2d, SmallMapConvTranspose2d, cin, cout, k, stride, pad, out_pad)
    x = torch.randn(batch, cin, size, size, dtype=torch.float64)
    for a, b in zip(derivatives(plain, x), derivatives(small, x)):
        torch.testing.assert_close(b, a)


def test_product_rule_by_map_size_precision_and_gradients(monkeypatch):
    calls = []
    unfold = torch.nn.functional.unfold
    monkeypatch.setattr(torch.nn.functional, "unfold", lambda *a, **k: calls.append(1) or unfold(*a, **k))
    small = SmallMapConv2d(8, 64, 4, 2, 1)
    small(torch.randn(8, 8, 16, 16))  # 8 x 8x8 positions > 64 / 2: the ordinary convolution
    assert not calls
    small(torch.randn(1, 8, 8, 8))  # 4x4 positions while training: the product
    assert calls == [1]
    with torch.no_grad():
        small(torch.randn(1, 8, 8, 8))  # float32 inference: the product as well
        assert calls == [1, 1]
        small.bfloat16()
        small(torch.randn(1, 8, 8, 8, dtype=torch.bfloat16))  # 16 positions > 64 / 8 in bf16: ordinary
        assert calls == [1, 1]
        small(torch.randn(1, 8, 4, 4, dtype=torch.bfloat16))  # 4 positions: the product
        assert calls == [1, 1, 1]
        calls.clear()
        traced = torch.jit.trace(small.float(), torch.randn(1, 8, 8, 8), check_trace=False)  # tracing: the textbook graph
        assert not calls and "_convolution" in str(traced.inlined_graph)


@pytest.mark.parametrize("cls, plain_cls, args", [
    (SmallMapConv2d, nn.Conv2d, (16, 64, 4, 2, 1)),
    (SmallMapConvTranspose2d, nn.ConvTranspose2d, (64, 16, 4, 2, 1)),
])
def test_inference_product_matches_and_follows_weight_changes(cls, plain_cls, args):
    plain, small = twins(plain_cls, cls, *args)
    mark_inference_only(small)
    x = torch.randn(2, args[0], 4, 4, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(small(x), plain(x))
        for m in (plain, small):  # in place: a new version of the same storage
            m.weight.mul_(-0.5)
        torch.testing.assert_close(small(x), plain(x))
        small.to(memory_format=torch.channels_last)
        plain.to(memory_format=torch.channels_last)
        xc = x.to(memory_format=torch.channels_last)
        torch.testing.assert_close(small(xc), plain(xc))



@pytest.mark.parametrize("channels_last", [False, True])
def test_the_product_keeps_the_inputs_memory_format_so_dropout_draws_the_same_mask(channels_last):
    """What follows may draw random numbers in memory order: pix2pix's dropout after a product layer
    drew a different mask than after nn.Conv2d for the same seed (paper-mode photos changed)."""
    plain, small = twins(nn.Conv2d, SmallMapConv2d, 16, 64, 4, 2, 1)
    x = torch.randn(1, 16, 8, 8, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    outs = []
    for net in (plain, small):
        with torch.no_grad():
            y = net(x)
        torch.manual_seed(3)
        outs.append((y, nn.functional.dropout(y, 0.5, training=True)))
    (y_plain, d_plain), (y_small, d_small) = outs
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert y_small.is_contiguous(memory_format=fmt)
    torch.testing.assert_close(d_small, d_plain)
