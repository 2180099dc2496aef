"""Test-time dropout from each render's own seeded generator (trainer.seeded_dropout): the masks
of torch.manual_seed + F.dropout, without the global generator, so threads rendering at once get
what each would get alone."""
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests import tiny_models
from trainer import api
from trainer.seeded_dropout import attach, seeded


@pytest.fixture(scope="module")
def pix2pix(tmp_path_factory):
    """A 64 px U-Net of 6 levels: junyanz's U-Net has dropout in the levels past the fifth."""
    g = tiny_models._net("unet", input_nc=3, output_nc=3, num_downs=6, ngf=4, norm="batch", use_dropout=True)
    return tiny_models._save(tmp_path_factory.mktemp("models") / "pix2pix.safetensors", {"G": g},
                             {"method": "pix2pix", "task": "photo2photo", "direction": "AtoB", "image_size": 64})


def test_the_masks_are_those_of_the_global_generator_seeded_alike():
    net = nn.Sequential(nn.Linear(8, 64), nn.Dropout(0.5), nn.ReLU(), nn.Dropout(0.3))
    attach(net)
    attach(net)  # twice: no second wrapper
    x = torch.randn(5, 8)
    with torch.no_grad():
        torch.manual_seed(7)
        want = F.dropout(F.relu(F.dropout(net[0](x), 0.5, True)), 0.3, True)
        state = torch.get_rng_state()
        with seeded(7):
            got = net(x)
        assert torch.equal(torch.get_rng_state(), state)  # the global generator untouched
        assert torch.equal(got, want)
        with seeded(8):
            assert not torch.equal(net(x), want)
        net.eval()
        with seeded(7):
            assert torch.equal(net(x), F.relu(net[0](x)))  # off in eval
        net.train()
        torch.manual_seed(7)
        assert torch.equal(net(x), want)  # outside a seeded block: the layer's own forward


def test_renders_in_mode_paper_on_two_threads_at_once_match_their_renders_alone(pix2pix):
    """Two translators of one model (two studio pages) and one translator shared by two threads."""
    sketches = [np.asarray(api.sample_input("sketch", s, 64)) for s in (1, 2)]
    alone = api.load_model(pix2pix, "cpu", "fp32")
    want = [[alone.run_array(s, mode="paper", seed=k) for k in range(6)] for s in sketches]
    assert not np.array_equal(want[0][0], want[0][1])  # the seed changes the dropout noise
    shared = api.load_model(pix2pix, "cpu", "fp32")
    for translators in ([api.load_model(pix2pix, "cpu", "fp32") for _ in sketches], [shared, shared]):
        got, errors = [[None] * 6, [None] * 6], []

        def render(i, t):
            try:
                for _ in range(3):
                    for k in range(6):
                        got[i][k] = t.run_array(sketches[i], mode="paper", seed=k)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=render, args=(i, t)) for i, t in enumerate(translators)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors
        for i in range(2):
            for k in range(6):
                assert np.array_equal(got[i][k], want[i][k]), (i, k)


def test_a_generator_on_another_device_than_the_layer_still_draws_the_masks():
    """An MPS render holds a CPU generator: its masks come from that generator, moved to the
    layer's device, never from the unseeded global one (here the layer runs on the meta device)."""
    net = nn.Sequential(nn.Dropout(0.5))
    attach(net)
    x = torch.ones(4, 16)
    with torch.no_grad():
        with seeded(3) as generator:
            before = generator.get_state()
            got = net(x.to("meta"))
            assert got.device.type == "meta" and got.shape == x.shape
            assert not torch.equal(generator.get_state(), before)  # the mask was drawn from it
        with seeded(3) as generator:
            on_cpu = net(x)
            assert torch.equal(generator.get_state(), seeded_state_after(3, x))
        assert set(on_cpu.unique().tolist()) <= {0.0, 2.0}


def seeded_state_after(seed, x):
    """The state of a CPU generator seeded ``seed`` after one Bernoulli draw of x's shape."""
    g = torch.Generator().manual_seed(seed)
    torch.empty_like(x).bernoulli_(0.5, generator=g)
    return g.get_state()
