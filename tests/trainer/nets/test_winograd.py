"""Winograd's F(4x4, 3x3) and F(3x3, 4x4) (trainer.nets.winograd): the same convolution as
F.conv2d (exactly in float64, within 1e-4 in float32, with its gradients), used only where it is
asked and pays, falling back when torch.compile cannot build it, and a training step with it gives
the losses and weights of the step without it."""
import logging
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainer import registry
from trainer.device import use_winograd
from trainer.nets import winograd
from trainer.nets.winograd import WinogradConv2d, matrices, set_winograd, transforms, winograd_conv
from trainer.registry import get_method


@pytest.fixture
def fresh_state(monkeypatch):
    """Module state as a new process has it (the compiled kernel and shape count are per process)."""
    monkeypatch.setattr(winograd, "_shapes", set())
    monkeypatch.setattr(winograd, "_broken", None)


def counting_kernel(monkeypatch):
    """Run the eager form instead of the compiled one (fast to test), counting its calls."""
    calls = []

    def kernel():
        def run(*args):
            calls.append(tuple(args[0].shape))
            return winograd_conv(*args)
        return run
    monkeypatch.setattr(winograd, "_kernel", kernel)
    return calls


def test_matrices_are_the_papers_for_f43_and_minimal_filters_for_both():
    bt, g, at = matrices(3)
    assert g[1] == [-1 / 6] * 3 and g[3] == [1 / 24, 1 / 12, 1 / 6] and g[5] == [0, 0, 1]
    assert at[3] == [0, 1, -1, 8, -8, 1]
    for r in (3, 4):  # A^T [(G g) . (B^T d)] is the correlation of d with g, exactly in rationals
        bt, g, at = matrices(r)
        m = 7 - r
        d = [Fraction(v) for v in (3, -1, 4, 1, -5, 9)]
        k = [Fraction(v) for v in (2, -7, 1, 8)[:r]]
        gk = [sum(Fraction(gr[j]).limit_denominator(1000) * k[j] for j in range(r)) for gr in g]
        bd = [sum(b[j] * d[j] for j in range(6)) for b in bt]
        y = [sum(a[j] * gk[j] * bd[j] for j in range(6)) for a in at]
        assert y == [sum(d[i + j] * k[j] for j in range(r)) for i in range(m)]


@pytest.mark.parametrize("r, padding, size", [(3, 0, 13), (3, 1, 9), (4, 1, 12), (4, 0, 7)])
def test_same_function_and_gradients_as_conv2d_in_float64(r, padding, size):
    g = torch.Generator().manual_seed(r * 10 + size)
    x = torch.randn(2, 5, size, size + 3, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(7, 5, r, r, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(7, dtype=torch.float64, generator=g, requires_grad=True)
    kb, kg, ka = transforms(torch.device("cpu"), r, torch.float64)
    ours = winograd_conv(x, w, b, padding, kb, kg, ka)
    plain = F.conv2d(x, w, b, padding=padding)
    assert ours.shape == plain.shape
    torch.testing.assert_close(ours, plain, rtol=0, atol=1e-10)
    grads = torch.autograd.grad((ours * plain.detach()).sum(), (x, w, b))
    expected = torch.autograd.grad((plain * plain.detach()).sum(), (x, w, b))
    for a, e in zip(grads, expected):
        torch.testing.assert_close(a, e, rtol=0, atol=1e-9)


@pytest.mark.parametrize("r", [3, 4])
def test_float32_error_is_that_of_a_float32_convolution(r):
    g = torch.Generator().manual_seed(r)
    x = torch.randn(1, 128, 20, 20, generator=g)
    w = torch.randn(64, 128, r, r, generator=g) * 0.03
    truth = F.conv2d(x.double(), w.double(), padding=1)
    ours = winograd_conv(x, w, None, 1, *transforms(torch.device("cpu"), r))
    err = ((ours.double() - truth).abs().max() / truth.abs().max()).item()
    assert err < 5e-5  # about 1e-5 measured; TF32 gives about 5e-4


def test_conv_module_is_nn_conv2d_off_by_default(fresh_state, monkeypatch):
    calls = counting_kernel(monkeypatch)
    conv = WinogradConv2d(128, 128, 3, padding=1)
    plain = nn.Conv2d(128, 128, 3, padding=1)
    assert list(conv.state_dict()) == list(plain.state_dict())
    plain.load_state_dict(conv.state_dict())
    x = torch.randn(1, 128, 32, 32)
    assert torch.equal(conv(x), plain(x)) and calls == []


def test_used_only_where_asked_and_it_pays(fresh_state, monkeypatch):
    calls = counting_kernel(monkeypatch)
    net = nn.Sequential(WinogradConv2d(128, 128, 3, padding=1), WinogradConv2d(128, 128, 3, stride=2, padding=1),
                        WinogradConv2d(128, 8, 3, padding=1))
    assert set_winograd(net, True) == 3
    x = torch.randn(1, 128, 32, 32)
    net[0](x)
    assert calls == [(1, 128, 32, 32)]
    net[1](x)  # stride 2
    net[2](x)  # 8 output channels
    net[0](torch.randn(1, 128, 16, 16))  # 256 positions
    with torch.autocast("cpu", dtype=torch.bfloat16):
        net[0](x)
    assert len(calls) == 1
    torch.testing.assert_close(net[0](x), F.conv2d(x, net[0].weight, net[0].bias, padding=1), rtol=1e-4, atol=1e-4)
    assert len(calls) == 2


def test_compile_failure_falls_back_to_the_direct_convolution(fresh_state, monkeypatch, caplog):
    def broken():
        def run(*args):
            raise RuntimeError("no C++ compiler found")
        return run
    monkeypatch.setattr(winograd, "_kernel", broken)
    conv = WinogradConv2d(128, 128, 3, padding=1)
    set_winograd(conv, True)
    x = torch.randn(1, 128, 32, 32)
    with caplog.at_level(logging.WARNING, logger="trainer.nets.winograd"):
        y = conv(x)
    assert torch.equal(y, F.conv2d(x, conv.weight, conv.bias, padding=1))
    assert "no C++ compiler" in caplog.text and "direct convolution" in caplog.text
    assert "no C++ compiler" in winograd._broken


def test_compiled_kernel_matches_conv2d_forward_and_backward(fresh_state):
    """The real path: torch.compile's kernel (or, without a C++ compiler, the fallback)."""
    torch.manual_seed(0)
    conv = WinogradConv2d(128, 128, 3, padding=1)
    set_winograd(conv, True)
    x = torch.randn(1, 128, 30, 30, requires_grad=True)
    y = conv(x)
    gx, gw = torch.autograd.grad(y.square().sum(), (x, conv.weight))
    x2 = x.detach().requires_grad_()
    y2 = F.conv2d(x2, conv.weight, conv.bias, padding=1)
    gx2, gw2 = torch.autograd.grad(y2.square().sum(), (x2, conv.weight))
    for a, b in ((y, y2), (gx, gx2), (gw, gw2)):
        assert ((a - b).abs().max() / b.abs().max()).item() < 1e-4


def test_use_winograd_setting():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert use_winograd("auto", cpu, None) and not use_winograd("auto", cpu, torch.bfloat16)
    assert not use_winograd("auto", cuda, None) and not use_winograd("off", cpu, None)
    assert use_winograd("on", cuda, torch.bfloat16)
    assert not use_winograd("auto", cpu, None, steps=50) and use_winograd("on", cpu, None, steps=50)
    with pytest.raises(ValueError, match="winograd must be auto, on or off"):
        use_winograd("yes", cpu, None)


def _losses_and_weights(preset, overrides, setting, batches):
    cfg = registry.load_config(preset, ["data.root=.", "train.precision='off'", "train.device='cpu'",
                                        "train.steps=1000", f"train.winograd={setting}", *overrides])
    torch.manual_seed(0)
    method = get_method(cfg.method)(cfg, torch.device("cpu"))
    losses = []
    for batch in batches:
        torch.manual_seed(len(losses))
        losses.append({k: float(v.detach()) for k, v in method.train_step(batch).items()})
    return losses, {f"{n}.{k}": v.detach().clone() for n, net in method.nets.items()
                    for k, v in net.state_dict().items()}, cfg.train.lr


@pytest.mark.parametrize("preset, overrides, size", [
    ("cyclegan-horse2zebra", ["model.ngf=32", "model.ndf=8", "model.n_blocks=1"], 120),  # 128 channels, 30x30
    ("pix2pix-facades", ["model.ngf=8", "model.ndf=32"], 256),  # D's 128 -> 256, 4x4 on 31x31
])
def test_training_step_is_the_same_with_winograd(fresh_state, monkeypatch, preset, overrides, size):
    """The first step's losses agree to float rounding (measured 5e-7). Later ones drift a little
    more: Adam's first steps move every weight by about lr whatever its gradient's size, so the
    rounding in a gradient that is nearly 0 can flip a step's sign (as in
    tests/trainer/methods/test_step_equivalence.py); measured 5e-4 at step 3, weights within
    2 lr per step."""
    calls = counting_kernel(monkeypatch)
    g = torch.Generator().manual_seed(1)
    batches = [{"A": torch.rand(1, 3, size, size, generator=g) * 2 - 1,
                "B": torch.rand(1, 3, size, size, generator=g) * 2 - 1} for _ in range(3)]
    overrides = [*overrides, f"data.image_size={size}"]
    plain, plain_weights, lr = _losses_and_weights(preset, overrides, "off", batches)
    assert calls == []
    ours, weights, _ = _losses_and_weights(preset, overrides, "auto", batches)
    assert calls, "Winograd was not used"
    for step, (a, b) in enumerate(zip(ours, plain)):
        for k in b:
            assert a[k] == pytest.approx(b[k], rel=1e-5 if step == 0 else 2e-3), f"step {step} {k}"
    for k, v in plain_weights.items():
        torch.testing.assert_close(weights[k], v, rtol=1e-3, atol=2 * lr * len(batches) + 1e-5,
                                   msg=lambda m: f"{k}: {m}")
