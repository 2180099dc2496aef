"""CycleGAN: a short run, its model file and Translator, the unpaired procedural data, imports."""
import numpy as np
import pytest
import torch
from PIL import Image

from trainer import config, inference, registry, run
from trainer.data.synth import synthesize
from trainer.conversion import import_checkpoint
from trainer.modelfile import read_card
from trainer.nets.resnet import ResnetGenerator
from trainer.rundir import RunDir


@pytest.fixture(scope="module")
def shapes_unpaired(tmp_path_factory):
    return synthesize("shapes-unpaired", tmp_path_factory.mktemp("u") / "d", n=24, size=32, workers=1)


def test_unpaired_layout_keeps_the_hidden_correspondence(shapes_unpaired):
    d = shapes_unpaired
    assert len(list((d / "trainA").glob("*.png"))) == len(list((d / "trainB").glob("*.png"))) > 0
    pairs = [line for line in (d / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == len(list((d / "testA").glob("*.png"))) == len(list((d / "testB").glob("*.png")))
    a = np.asarray(Image.open(d / "testA" / "000000.png")).astype(int)
    b = np.asarray(Image.open(d / "testB" / "000000.png")).astype(int)
    b_other = np.asarray(Image.open(d / "testB" / "000001.png")).astype(int)
    assert np.abs(a - b).mean() < np.abs(a - b_other).mean()  # the same scene is closer than another one


@pytest.fixture(scope="module")
def cyclegan_run(shapes_unpaired, tmp_path_factory):
    rd = tmp_path_factory.mktemp("cg") / "r"
    cfg = registry.load_config("cyclegan-shapes", [f"data.root='{shapes_unpaired}'", "data.image_size=32", "data.load_size=36",
                                          "train.steps=60", "train.decay_steps=0", "train.log_every=1",
                                          "train.sample_every=30", "train.checkpoint_every=30", "train.lr=1e-3",
                                          "train.precision='off'", "train.device='cpu'", "model.ngf=8", "model.ndf=8",
                                          "model.n_blocks=2", "model.pool_size=4", "data.num_workers=0", "train.threads=1",
                                          "model.residual=false"])  # the reference's plain generator
    return rd, run.train(cfg, rd, progress=False)


def _cycle_error(method, dataset):
    a = torch.stack([dataset[(i, None)]["A"] for i in range(len(dataset))])
    b = torch.stack([dataset[(i, None)]["B"] for i in range(len(dataset))])
    G_A, G_B = method.nets["G_A"].eval(), method.nets["G_B"].eval()
    with torch.no_grad():
        return ((G_B(G_A(a)) - a).abs().mean() + (G_A(G_B(b)) - b).abs().mean()).item()


def test_short_run_reduces_the_cycle_error(cyclegan_run):
    rd, out = cyclegan_run
    assert out.state == "finished"
    m = RunDir(rd).read_metrics()
    assert {"D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"} <= set(m[0])
    assert len(out.method.pools["A"].images) == 4  # the pool filled up to its size
    cfg = out.method.cfg
    torch.manual_seed(cfg.train.seed)  # the same initial weights as the run had
    from trainer.methods.cyclegan import CycleGAN
    untrained = CycleGAN(cfg, torch.device("cpu"))
    test = untrained.dataset("test", log=None)
    before, after = _cycle_error(untrained, test), _cycle_error(out.method, test)
    assert after < 0.8 * before, (before, after)


def test_model_file_has_both_generators_and_a_direction_control(cyclegan_run):
    rd, out = cyclegan_run
    t = inference.load(rd / "model.safetensors")
    names = {c.name: c for c in t.controls}
    assert names["direction"].choices == ["AtoB", "BtoA"]
    assert names["output"].choices == ["translation", "reconstruction"]
    im = Image.new("RGB", (45, 30), "orange")
    ab = t.run(im, direction="AtoB")
    ba = t.run(im, direction="BtoA")
    rec = t.run(im, direction="AtoB", output="reconstruction")
    assert ab.size == ba.size == rec.size == (45, 30)
    assert not np.array_equal(np.asarray(ab), np.asarray(ba))
    G_A, G_B = out.method.nets["G_A"].eval(), out.method.nets["G_B"].eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(t.G["G_B"](t.G["G_A"](x)), G_B(G_A(x)))


def test_residual_generator_starts_at_identity_and_stays_in_range():
    G = ResnetGenerator(ngf=8, n_blocks=2, residual=True).start_at_identity()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(G(x), x)
    with torch.no_grad():
        G.model[-2].bias.fill_(3.0)  # a correction that would leave [-1, 1]
    y = G(x)
    torch.testing.assert_close(y, (x + torch.tanh(torch.tensor(3.0))).clamp(-1, 1))
    assert y.max() == 1 and (y == 1).float().mean() > 0.4
    plain = ResnetGenerator(ngf=8, n_blocks=2)
    assert set(plain.state_dict()) == set(G.state_dict())  # same weights: the residual is in forward alone
    with pytest.raises(ValueError, match="input_nc 1 must equal output_nc 3"):
        ResnetGenerator(input_nc=1, output_nc=3, ngf=8, n_blocks=2, residual=True)


def test_residual_cyclegan_trains_exports_and_translates(shapes_unpaired, tmp_path):
    cfg = registry.load_config("cyclegan-shapes", [f"data.root='{shapes_unpaired}'", "data.image_size=32", "data.load_size=36",
                                          "train.steps=6", "train.decay_steps=0", "train.sample_every=0",
                                          "train.checkpoint_every=6", "train.precision='off'", "train.device='cpu'",
                                          "model.ngf=8", "model.ndf=8", "model.n_blocks=2", "model.residual=true",
                                          "data.num_workers=0", "train.threads=1"])
    torch.manual_seed(cfg.train.seed)
    from trainer.methods.cyclegan import CycleGAN
    fresh = CycleGAN(cfg, torch.device("cpu"))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(fresh.nets["G_A"](x), x)  # output = input before any step
    out = run.train(cfg, tmp_path / "r", progress=False)
    card = read_card(tmp_path / "r" / "model.safetensors")
    assert card["nets"]["G_A"]["args"]["residual"] is True
    t = inference.load(tmp_path / "r" / "model.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(t.G["G_A"](x), out.method.nets["G_A"].eval()(x))
        assert not torch.equal(t.G["G_A"](x), x)  # it learnt a correction


def test_import_single_and_paired_reference_generators(tmp_path):
    torch.manual_seed(0)
    g_a = ResnetGenerator(ngf=8, n_blocks=3, use_dropout=True)
    g_b = ResnetGenerator(ngf=8, n_blocks=3, use_dropout=True)
    torch.save(g_a.state_dict(), tmp_path / "latest_net_G_A.pth")
    torch.save({f"module.{k}": v for k, v in g_b.state_dict().items()}, tmp_path / "latest_net_G_B.pth")
    card = read_card(import_checkpoint(tmp_path / "latest_net_G_A.pth", tmp_path / "pair.safetensors"))
    assert card["method"] == "cyclegan" and set(card["nets"]) == {"G_A", "G_B"}
    assert card["nets"]["G_A"]["args"]["n_blocks"] == 3 and card["nets"]["G_A"]["args"]["use_dropout"] is True
    t = inference.load(tmp_path / "pair.safetensors")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(t.G["G_B"](x), g_b.eval()(x))

    single = tmp_path / "one"
    single.mkdir()
    torch.save(ResnetGenerator(ngf=8, n_blocks=6).state_dict(), single / "latest_net_G.pth")
    t = inference.load(import_checkpoint(single / "latest_net_G.pth", tmp_path / "single.safetensors"))
    assert [c.choices for c in t.controls] == [["AtoB"], ["translation"], ["native", "training"]]
    assert t.run(Image.new("RGB", (20, 20))).size == (20, 20)
