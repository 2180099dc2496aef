"""DCGAN, conditional GAN and WGAN-GP: short runs, class conditioning, the sampling Translator."""
import math

import numpy as np
import pytest
import torch

from trainer import config, inference, registry, run
from trainer.data.synth import synthesize
from trainer.rundir import RunDir

SMALL = ["train.batch_size=16", "train.log_every=1", "train.sample_every=0", "train.checkpoint_every=0",
         "train.precision='off'", "train.device='cpu'", "data.num_workers=0", "model.ngf=8", "model.ndf=8",
         "model.nz=16", "train.threads=1"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return synthesize("shapes", tmp_path_factory.mktemp("s") / "shapes", n=60, size=16, workers=1)


def test_conditional_dcgan_discriminator_learns(shapes, tmp_path):
    cfg = registry.load_config("cgan-shapes", [f"data.root='{shapes}'", "data.image_size=16", "train.steps=30", *SMALL])
    out = run.train(cfg, tmp_path / "r", progress=False)
    assert out.method.classes == ["ball", "box", "house", "mug", "pyramid", "star"]
    m = RunDir(tmp_path / "r").read_metrics()
    d_last = np.mean([r["D_real"] + r["D_fake"] for r in m[-10:]])
    assert d_last < 2 * math.log(2) * 0.9  # D tells real from fake better than chance
    t = inference.load(tmp_path / "r" / "model.safetensors")
    assert [c.name for c in t.controls] == ["seed", "class_name"] and not t.needs_image
    a = np.asarray(t.run(seed=3, class_name="ball"))
    assert a.shape == (16, 16, 3)
    assert np.array_equal(a, np.asarray(t.run(seed=3, class_name="ball")))
    assert not np.array_equal(a, np.asarray(t.run(seed=3, class_name="star")))
    assert not np.array_equal(a, np.asarray(t.run(seed=4, class_name="ball")))


def test_wgan_gp_critic_separates_and_penalty_is_logged(tmp_path):
    faces = synthesize("faces", tmp_path / "faces", n=40, size=16, workers=1)
    cfg = registry.load_config("wgan-gp-faces", [f"data.root='{faces}'", "data.image_size=16", "train.steps=30",
                                        "train.lr=5e-4", *SMALL])
    run.train(cfg, tmp_path / "r", progress=False)
    m = RunDir(tmp_path / "r").read_metrics()
    assert all("D_gp" in r for r in m)
    assert sum("G" in r for r in m) == 6  # n_critic = 5
    gp = [r["D_gp"] for r in m]
    # from normal(0, 0.02) weights the critic's gradients start near 0 (penalty ~ lambda); learning moves
    # them towards norm 1, so the penalty falls steadily
    assert np.mean(gp[-5:]) < 0.95 * np.mean(gp[:3]), (gp[:3], gp[-5:])


def test_wgan_gp_refuses_batch_norm(tmp_path):
    with pytest.raises(config.ConfigError, match="per sample"):
        registry.load_config("wgan-gp-faces", [f"data.root='{tmp_path}'", "model.d_norm='batch'"])


def test_dcgan_shapes():
    from trainer.nets.dcgan import DCGANDiscriminator, DCGANGenerator
    for size in (8, 32, 64):
        g, d = DCGANGenerator(nz=4, ngf=4, image_size=size), DCGANDiscriminator(ndf=4, image_size=size, norm="none")
        x = g(torch.randn(2, 4))
        assert x.shape == (2, 3, size, size) and d(x).shape == (2,)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in DCGANDiscriminator(norm="none").modules())
