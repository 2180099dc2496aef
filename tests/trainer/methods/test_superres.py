"""SRResNet / SRGAN: output size, bicubic pairs, the tiled Translator, a short run that beats its
start, SRGAN with the VGG loss."""
import numpy as np
import pytest
import torch
from PIL import Image

from trainer import config, inference, registry, run
from trainer.data.superres import SuperResDataset
from trainer.data.synth import synthesize
from trainer.modelfile import save_model
from trainer.nets.srresnet import SRDiscriminator, SRResNet
from trainer.rundir import RunDir

SMALL = ["train.batch_size=4", "train.log_every=1", "train.sample_every=0", "train.checkpoint_every=0",
         "train.precision='off'", "train.device='cpu'", "data.num_workers=0", "train.threads=1"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return synthesize("photos", tmp_path_factory.mktemp("p") / "photos", n=24, size=48, workers=1)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_srresnet_output_size(scale):
    g = SRResNet(scale, n_blocks=2, ngf=8)
    assert g(torch.randn(2, 3, 7, 11)).shape == (2, 3, 7 * scale, 11 * scale)
    assert SRDiscriminator(ndf=4)(torch.randn(2, 3, 24, 40)).shape == (2, 1)


def test_paper_srresnet_parameter_count():
    # 16 blocks of 64 channels, x4: the 1.55M parameters of Ledig et al.'s SRResNet
    assert sum(p.numel() for p in SRResNet(4).parameters()) == pytest.approx(1.55e6, rel=0.01)


def test_pairs_are_bicubic_downscales(photos):
    ds = SuperResDataset(photos, "train", crop_size=32, factor=4, log=None)
    item = ds[(0, 7)]
    assert item["HR"].shape == (3, 32, 32) and item["LR"].shape == (3, 8, 8)
    hr = Image.fromarray(((item["HR"].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8))
    lr = np.asarray(hr.resize((8, 8), Image.BICUBIC), dtype=np.float32) / 127.5 - 1
    assert np.abs(lr - item["LR"].permute(1, 2, 0).numpy()).max() < 1e-5
    with pytest.raises(ValueError, match="multiple"):
        SuperResDataset(photos, "train", crop_size=30, factor=4, log=None)


def sr_model(tmp_path, scale=2):
    torch.manual_seed(0)
    g = SRResNet(scale, n_blocks=1, ngf=8).eval()
    for m in g.modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "sr.safetensors"
    save_model(path, {f"G.{k}": v for k, v in g.state_dict().items()},
               {"method": "srgan", "task": "superres", "image_size": 32, "scale": scale,
                "nets": {"G": {"name": "srresnet", "args": {"scale": scale, "n_blocks": 1, "ngf": 8}}}})
    return path


def test_tiled_upscaling_equals_untiled(tmp_path):
    t = inference.load(sr_model(tmp_path))
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    whole = np.asarray(t.run(image, tile=256))  # fits in one tile
    assert whole.shape == (74, 106, 3)
    # receptive field of this net: 4 + 1 + 1 + 1 + (1 + 4) / 2 px of input -> an overlap of 12 covers it
    tiled = np.asarray(t.run(image, tile=40, overlap=12))
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1
    seams = np.asarray(t.run(image, tile=20, overlap=0))  # no context at the seams: they differ
    assert np.abs(whole.astype(int) - seams.astype(int)).max() > 1


def test_superres_translator_any_mode_and_refuses_huge_outputs(tmp_path):
    t = inference.load(sr_model(tmp_path, scale=2))
    assert t.run(Image.new("LA", (9, 5), (128, 200))).size == (18, 10)
    assert t.run(Image.new("P", (6, 6))).size == (12, 12)
    from trainer.data.imageio import ImageError
    with pytest.raises(ImageError, match="megapixels"):
        t.run_array(Image.new("RGB", (6000, 5000)))


def test_srresnet_run_beats_its_start(photos, tmp_path):
    cfg = registry.load_config("srresnet-photos", [f"data.root='{photos}'", "data.image_size=32", "model.n_blocks=2",
                                          "model.ngf=16", "train.steps=40", "train.lr=1e-3", *SMALL])
    run.train(cfg, tmp_path / "r", progress=False)
    m = RunDir(tmp_path / "r").read_metrics()
    assert np.mean([r["G_MSE"] for r in m[-5:]]) < 0.5 * np.mean([r["G_MSE"] for r in m[:3]])
    t = inference.load(tmp_path / "r" / "model.safetensors")
    assert t.run(Image.new("RGB", (10, 12), "red")).size == (40, 48)


def test_srgan_trains_with_vgg_and_adversarial_losses(photos, tmp_path, vgg_file):
    cfg = registry.load_config("srgan-div2k", [f"data.root='{photos}'", "data.image_size=32", "model.n_blocks=1",
                                      "model.ngf=8", "model.ndf=4", "model.vgg_layer='relu2_2'",
                                      f"model.vgg_weights='{vgg_file('vgg19')}'", "train.steps=4", *SMALL])
    run.train(cfg, tmp_path / "r", progress=False)
    last = RunDir(tmp_path / "r").read_metrics()[-1]
    assert {"D_real", "D_fake", "G_VGG", "G_GAN", "PSNR"} <= set(last)


def test_srgan_without_vgg_weights_names_the_option(photos):
    with pytest.raises(config.ConfigError, match="model.vgg_weights"):
        registry.load_config("srgan-div2k", [f"data.root='{photos}'"])
