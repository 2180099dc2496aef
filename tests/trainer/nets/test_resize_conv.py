"""NearestResizeConv2d computes the nearest-doubling + 3x3 convolution on the small map."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainer.nets.inference_cache import mark_inference_only
from trainer.nets.resize_conv import NearestResizeConv2d, phase_kernels
from trainer.nets.unet import UnetGenerator


def plain(m, x):
    return F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), m.weight, m.bias, padding=1)


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (1, 4, 1, 1), (3, 6, 8, 8), (1, 3, 2, 9), (1, 3, 9, 11)])
@pytest.mark.parametrize("bias", [True, False])
def test_same_function_as_the_doubled_map(shape, bias):
    torch.manual_seed(0)
    n, c, h, w = shape
    m = NearestResizeConv2d(c, 5, bias=bias).double()
    x = torch.randn(n, c, h, w, dtype=torch.float64)
    with torch.no_grad():
        got = m(x)
    assert got.shape == (n, 5, 2 * h, 2 * w)
    torch.testing.assert_close(got, plain(m, x), rtol=0, atol=1e-12)


def test_gradients_match_the_plain_path():
    torch.manual_seed(1)
    m = NearestResizeConv2d(4, 3).double()
    x = torch.randn(2, 4, 7, 6, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 3, 14, 12, dtype=torch.float64)
    grads = torch.autograd.grad((m(x) * g).sum(), [x, m.weight, m.bias])
    want = torch.autograd.grad((plain(m, x) * g).sum(), [x, m.weight, m.bias])
    for a, b in zip(grads, want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_channels_last_in_channels_last_out_and_cache_follows_the_weight():
    torch.manual_seed(2)
    m = NearestResizeConv2d(8, 6).eval()
    mark_inference_only(m)
    x = torch.randn(2, 8, 7, 5).to(memory_format=torch.channels_last)
    with torch.no_grad():
        out = m(x)
        assert out.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(out, plain(m, x), rtol=1e-5, atol=1e-5)
        m.weight.mul_(2)  # an in-place change bumps the version: the phase kernels are remade
        torch.testing.assert_close(m(x), plain(m, x), rtol=1e-5, atol=1e-5)


def test_phase_kernels_sum_the_taps():
    w = torch.arange(9.0).view(1, 1, 3, 3)
    k = phase_kernels(w).view(2, 2, 2, 2)
    # phase (0, 0): rows (i-1, i) weigh (row 0, row 1 + row 2); columns alike
    assert k[0, 0].tolist() == [[0.0, 1 + 2], [3 + 6, 4 + 5 + 7 + 8]]
    assert k[1, 1].tolist() == [[0 + 1 + 3 + 4, 2 + 5], [6 + 7, 8.0]]


def test_unet_keys_unchanged_and_onnx_trace_is_plain():
    g = UnetGenerator(3, 3, num_downs=5, ngf=4, upsample="resize")
    keys = [k for k in g.state_dict() if "model.3" in k and k.endswith("weight")]
    assert any(k.endswith("model.3.1.weight") for k in keys)  # nn.Sequential(nn.Upsample, nn.Conv2d)'s keys
    g.eval()
    x = torch.randn(1, 3, 32, 32)
    traced = torch.jit.trace(g, x)
    assert "upsample_nearest" in str(traced.inlined_graph) or "interpolate" in str(traced.inlined_graph)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), g(x), rtol=1e-4, atol=1e-5)


def test_not_a_3x3_convolution_is_refused():
    m = NearestResizeConv2d(2, 2)
    m.padding = (0, 0)
    with pytest.raises(ValueError, match="3x3"):
        m(torch.randn(1, 2, 8, 8))

