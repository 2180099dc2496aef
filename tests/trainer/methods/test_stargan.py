"""StarGAN: short run, mask-vector joint batches, the Translator's checkboxes, reference import."""
import numpy as np
import pytest
import torch
from PIL import Image

from trainer import config, inference, registry, run
from trainer.data.synth import synthesize
from trainer.conversion import import_checkpoint
from trainer.methods.stargan import single_domain_targets
from trainer.modelfile import read_card
from trainer.nets.stargan import StarGenerator
from trainer.rundir import RunDir

SMALL = ["data.image_size=32", "train.batch_size=8", "train.decay_steps=0", "train.log_every=1",
         "train.precision='off'", "train.device='cpu'", "data.num_workers=0", "model.g_conv_dim=8",
         "model.d_conv_dim=8", "model.g_repeat_num=2", "model.d_repeat_num=4", "model.n_critic=2",
         "train.threads=1"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return synthesize("faces", tmp_path_factory.mktemp("f") / "faces", n=60, size=32, workers=1)


@pytest.fixture(scope="module")
def star_run(faces, tmp_path_factory):
    rd = tmp_path_factory.mktemp("sg") / "r"
    cfg = registry.load_config("stargan-faces", [f"data.root='{faces}'", "train.steps=100", "train.lr=1e-3",
                                        "train.sample_every=50", "train.checkpoint_every=50", *SMALL])
    return rd, run.train(cfg, rd, progress=False)


def test_short_run_learns_to_classify_and_reconstruct(star_run):
    rd, out = star_run
    m = RunDir(rd).read_metrics()
    assert {"D_real", "D_fake", "D_cls", "D_gp"} <= set(m[0])
    g_steps = [r for r in m if "G_rec" in r]
    assert len(g_steps) == 50  # G every n_critic = 2 steps
    first = np.mean([r["D_cls"] for r in m[:10]])
    last = np.mean([r["D_cls"] for r in m[-10:]])
    assert last < 0.8 * first, (first, last)
    grid = Image.open(RunDir(rd).samples()[-1][1])
    assert grid.width == 6 * 32 + 5 * 2  # input and the five single-domain changes


def test_single_domain_targets_keep_hair_exclusive():
    attrs = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    c = torch.tensor([[1.0, 0, 0, 1, 0]])
    targets = [t[0].tolist() for t in single_domain_targets(c, attrs)]
    assert targets == [[1, 0, 0, 1, 0], [0, 1, 0, 1, 0], [0, 0, 1, 1, 0], [1, 0, 0, 0, 0], [1, 0, 0, 1, 1]]


def test_translator_checkboxes_and_exclusive_groups(star_run):
    rd, _ = star_run
    t = inference.load(rd / "model.safetensors")
    controls = {c.name: c for c in t.controls}
    assert list(controls) == ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young", "resolution"]
    assert controls["Black_Hair"].group and controls["Black_Hair"].group == controls["Blond_Hair"].group
    assert not controls["Male"].group
    im = Image.new("RGB", (50, 40), "tan")
    a = np.asarray(t.run(im, Blond_Hair=True))
    b = np.asarray(t.run(im, Black_Hair=True, Male=True))
    assert a.shape == (40, 50, 3) and not np.array_equal(a, b)
    with pytest.raises(ValueError, match="mutually exclusive"):
        t.run(im, Black_Hair=True, Blond_Hair=True)
    before = {k: v.clone() for k, v in t.G.state_dict().items()}
    t.run(im, Young=True)
    assert all(torch.equal(before[k], v) for k, v in t.G.state_dict().items())  # running stats untouched


def test_mask_vector_joint_training(faces, tmp_path):
    second = tmp_path / "expr"
    for i, cls in enumerate(("angry", "happy", "neutral")):
        (second / cls).mkdir(parents=True)
        for k in range(3):
            Image.new("RGB", (32, 32), (80 * i, 40 * k, 0)).save(second / cls / f"{k}.png")
    cfg = registry.load_config("stargan-faces", [f"data.root='{faces}'", "train.steps=4", f"model.second_root='{second}'",
                                        "train.sample_every=0", "train.checkpoint_every=0", *SMALL])
    out = run.train(cfg, tmp_path / "r", progress=False)
    method = out.method
    assert method.label_dim == 5 + 3 + 2
    batch = next(iter(torch.utils.data.DataLoader(method.dataset(), batch_size=4)))
    assert batch["image2"].shape == (4, 3, 32, 32) and batch["class2"].max() < 3
    label_a = method.full_label(batch["label"])
    label_b = method.full_label(classes=batch["class2"], batch=4)
    assert label_a[:, -2:].tolist() == [[1, 0]] * 4 and label_a[:, 5:8].abs().sum() == 0
    assert label_b[:, -2:].tolist() == [[0, 1]] * 4 and label_b[:, :5].abs().sum() == 0
    assert label_b[:, 5:8].sum(1).tolist() == [1.0] * 4
    keys = set(RunDir(tmp_path / "r").read_metrics()[-1])
    assert {"D_cls", "D_cls_2", "G_cls_2"} <= keys
    t = inference.load(tmp_path / "r" / "model.safetensors")
    assert t.run(Image.new("RGB", (32, 32)), target_class="happy").size == (32, 32)


def test_import_reference_generator(tmp_path):
    torch.manual_seed(0)
    g = StarGenerator(16, 5, 3)
    torch.save(g.state_dict(), tmp_path / "200000-G.ckpt")
    card = read_card(import_checkpoint(tmp_path / "200000-G.ckpt", tmp_path / "m.safetensors"))
    assert card["method"] == "stargan" and card["nets"]["G"]["args"] == {"conv_dim": 16, "c_dim": 5, "repeat_num": 3}
    assert card["domains"] == ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    assert card["exclusive_groups"] == [["Black_Hair", "Blond_Hair", "Brown_Hair"]]
    t = inference.load(tmp_path / "m.safetensors")
    x, c = torch.rand(1, 3, 128, 128) * 2 - 1, torch.tensor([[0.0, 1, 0, 0, 1]])
    with torch.no_grad():
        torch.testing.assert_close(t.G(x, c), g.train()(x, c))
    torch.save(StarGenerator(8, 3, 1).state_dict(), tmp_path / "g3.ckpt")
    card = read_card(import_checkpoint(tmp_path / "g3.ckpt", tmp_path / "m3.safetensors",
                                       domains=["Smiling", "Male", "Eyeglasses"]))
    assert card["domains"] == ["Smiling", "Male", "Eyeglasses"] and card["exclusive_groups"] == []


def test_attention_generator_composes_input_and_colour_by_its_mask():
    """GANimation's mask: A = 1 keeps the input pixel, A = 0 takes the colour head; the reference's
    keys are all still there, plus the attention head."""
    torch.manual_seed(0)
    g = StarGenerator(conv_dim=8, c_dim=5, repeat_num=1, attention=True)
    plain = StarGenerator(conv_dim=8, c_dim=5, repeat_num=1)
    assert set(plain.state_dict()) < set(g.state_dict())
    assert set(g.state_dict()) - set(plain.state_dict()) == {"attention.weight", "attention.bias"}
    x, c = torch.rand(2, 3, 16, 16) * 2 - 1, torch.zeros(2, 5)
    with torch.no_grad():
        g.attention.weight.zero_()
        g.attention.bias.fill_(30.0)
        assert torch.allclose(g(x, c), x, atol=1e-6)
        assert g.last_attention.shape == (2, 1, 16, 16)
        g.attention.bias.fill_(-30.0)
        colour = torch.tanh(g.main[-2](g.main[:-2](torch.cat([x, c.view(2, 5, 1, 1).expand(-1, -1, 16, 16)], 1))))
        assert torch.allclose(g(x, c), colour, atol=1e-6)


def test_attention_losses_need_the_attention_mask(faces):
    with pytest.raises(config.ConfigError, match="model.attention"):
        registry.load_config("stargan-faces", [f"data.root='{faces}'", "model.attention=false", *SMALL])


def test_the_preset_trains_an_attention_model_with_an_identity_term(star_run):
    rd, _ = star_run
    m = RunDir(rd).read_metrics()
    assert {"G_mask", "G_tv", "G_id"} <= set(next(r for r in m if "G_rec" in r))
    card = read_card(rd / "model.safetensors")
    assert card["nets"]["G"]["args"]["attention"] is True
    assert card["training"]["model"]["lambda_id"] > 0
