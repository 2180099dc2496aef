"""StyleGAN2 training: a 32x32 run of a few dozen steps on procedural faces, lazy R1, style mixing,
the EMA generator exported with its mean latent, and resume."""
import numpy as np
import pytest
import torch

from trainer import config, inference, registry, run
from trainer.data.synth import synthesize
from trainer.losses import logistic_loss, r1_penalty
from trainer.modelfile import load_model
from trainer.nets.stylegan import ModulatedConv2d, StyleGenerator
from trainer.rundir import RunDir

SMALL = ["data.image_size=32", "train.batch_size=4", "train.log_every=1", "train.sample_every=20",
         "train.checkpoint_every=0", "train.precision='off'", "train.device='cpu'", "data.num_workers=0",
         "model.style_dim=32", "model.n_mlp=2", "model.channel_base=256", "model.channel_max=32",
         "model.d_reg_every=4", "model.ema_kimg=0.05", "train.threads=1", "train.decay_steps=0"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return synthesize("faces", tmp_path_factory.mktemp("f") / "faces", n=40, size=32, workers=1)


def test_stylegan_run_learns_and_exports_the_ema_generator(faces, tmp_path):
    cfg = registry.load_config("stylegan-faces", [f"data.root='{faces}'", "train.steps=40", *SMALL])
    out = run.train(cfg, tmp_path / "r", progress=False)
    m = RunDir(tmp_path / "r").read_metrics()
    assert len(m) == 40
    assert sum("D_r1" in r for r in m) == 10  # lazy R1 every d_reg_every = 4 steps
    assert all(np.isfinite(r["G"]) and np.isfinite(r["D_real"]) for r in m)
    # D learns to separate: its loss falls below chance (2 log 2) on average over the last steps
    assert np.mean([r["D_real"] + r["D_fake"] for r in m[-10:]]) < 2 * np.log(2)
    method = out.method
    ema, live = dict(method.G_ema.named_parameters()), dict(method.G.named_parameters())
    assert any(not torch.equal(ema[k], live[k]) for k in ema)  # an average, not a copy
    assert (tmp_path / "r" / "samples" / "step-000040.png").is_file()

    tensors, card = load_model(tmp_path / "r" / "model.safetensors")
    assert card["method"] == "stylegan" and card["n_latent"] == 8 and card["layer_resolutions"] == [4, 8, 8, 16, 16, 16, 32, 32]  # the preset's output_skips_from = 16
    assert tensors["latent_avg"].shape == (1, 32)
    assert torch.equal(tensors["G.style.1.weight"], method.G_ema.state_dict()["style.1.weight"].cpu())
    t = inference.load(tmp_path / "r" / "model.safetensors")
    a = np.asarray(t.run(seed=1, style_seed=2, crossover=3, noise_mode="const"))
    assert a.shape == (32, 32, 3) and a.std() > 0
    assert np.array_equal(a, np.asarray(t.run(seed=1, style_seed=2, crossover=3, noise_mode="const")))


def test_stylegan_resume_continues_to_the_total(faces, tmp_path):
    cfg = registry.load_config("stylegan-faces", [f"data.root='{faces}'", "train.steps=8", "train.checkpoint_every=4",
                                         *[s for s in SMALL if "checkpoint_every" not in s]])
    run.train(cfg, tmp_path / "r", progress=False)
    out = run.resume(tmp_path / "r", ["train.steps=12"], progress=False)
    assert out.step == 12
    assert len(RunDir(tmp_path / "r").read_metrics()) == 12


def test_mixing_consistency_is_logged_lazily_and_pulls_the_mix_to_its_targets(faces, tmp_path):
    cfg = registry.load_config("stylegan-faces", [f"data.root='{faces}'", "train.steps=6", "model.lambda_mix_colour=5",
                                                  "model.lambda_mix_layout=1", "model.mix_every=2", "model.mix_from=2",
                                                  *SMALL])
    out = run.train(cfg, tmp_path / "r", progress=False)
    m = RunDir(tmp_path / "r").read_metrics()
    assert [r["step"] for r in m if "G_mix_colour" in r] == [3, 5]  # steps 2 and 4, logged after them
    assert all(np.isfinite(r["G_mix_colour"]) and 0 < r["G_mix_layout"] < 2 for r in m if "G_mix_layout" in r)
    method, seen = out.method, []
    for _ in range(25):  # the same latents and noise each time: the distances to the targets fall
        torch.manual_seed(3)
        d = method.mixing_consistency(method.G, 4)
        seen.append(5 * d["G_mix_colour"].item() + d["G_mix_layout"].item())
    assert seen[-1] < 0.7 * seen[0], seen
    from trainer.methods.stylegan import StyleGANConfig
    assert StyleGANConfig().lambda_mix_colour == StyleGANConfig().lambda_mix_layout == 0  # off by default (the paper)
    plain = registry.load_config("stylegan-faces", [f"data.root='{faces}'", "train.steps=4", "model.mix_from=0",
                                                    "model.lambda_mix_colour=0", "model.lambda_mix_layout=0", *SMALL])
    run.train(plain, tmp_path / "p", progress=False)
    assert not any("G_mix_colour" in r for r in RunDir(tmp_path / "p").read_metrics())


def test_mixing_consistency_needs_a_coarse_middle_boundary():
    with pytest.raises(config.ConfigError, match="data.image_size = 8, at least 16"):
        registry.load_config("stylegan-faces", ["data.image_size=8", "model.output_skips_from=4",
                                                "model.lambda_mix_layout=1"])
    g = StyleGenerator(64, 32, 2, channel_max=32)
    assert g.coarse_crossover() == 4
    assert StyleGenerator(64, 32, 2, channel_max=32, output_skips_from=16).coarse_crossover() == 3


def test_shared_and_grouped_modulated_convolutions_agree():
    torch.manual_seed(0)
    g = StyleGenerator(16, 32, 2, channel_max=32)
    w = g.mapping(torch.randn(3, 32)).unsqueeze(1).repeat(1, g.n_latent, 1)
    noise = [torch.zeros(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)) for i in range(g.num_layers)]
    with torch.no_grad():
        ModulatedConv2d.grouped = True
        try:
            grouped = g.synthesis(w, noise)
        finally:
            ModulatedConv2d.grouped = None
        shared = g.synthesis(w, noise)
    assert torch.allclose(grouped, shared, atol=1e-5)


def test_r1_and_logistic_losses_on_known_values():
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)
    pred = (x * torch.tensor([2.0, -1.0])).sum(1)  # grad of each prediction wrt its row is (2, -1)
    assert r1_penalty(pred, x).item() == pytest.approx(5.0)
    assert logistic_loss(torch.zeros(4), True).item() == pytest.approx(np.log(2))
    assert logistic_loss(torch.tensor([10.0]), False).item() == pytest.approx(10.0, abs=1e-4)
