"""Perceptual losses: VGG feature extractors from a local weights file, Gram matrices, total
variation, and fast style transfer."""
import numpy as np
import pytest
import torch
from PIL import Image

from trainer import config, inference, registry, run
from trainer.data.synth import synthesize
from trainer.losses import gram_matrix, style_reconstruction_loss, total_variation_loss
from trainer.nets.vgg import VGGFeatures, VGGWeightsError
from trainer.rundir import RunDir


def test_gram_matrix_on_a_hand_made_tensor():
    f = torch.tensor([[[[1.0, 2.0], [0.0, 1.0]], [[0.0, 1.0], [3.0, 0.0]]]])  # 1 x 2 channels x 2 x 2
    # rows (1, 2, 0, 1) and (0, 1, 3, 0): dot products 6, 2, 2, 10; divided by C H W = 8
    assert torch.allclose(gram_matrix(f), torch.tensor([[[6.0, 2.0], [2.0, 10.0]]]) / 8)
    grams = {"a": gram_matrix(f)}
    assert style_reconstruction_loss({"a": f.repeat(3, 1, 1, 1)}, grams).item() == 0


def test_total_variation():
    x = torch.zeros(1, 1, 3, 3)
    x[..., 1, 1] = 1.0  # 2 unit steps among 6 vertical and 2 among 6 horizontal pairs
    assert total_variation_loss(x).item() == pytest.approx(2 / 6 + 2 / 6)
    assert total_variation_loss(torch.ones(1, 3, 5, 5)).item() == 0


def test_vgg_loads_a_local_file_and_gives_named_layers(vgg_file):
    import torchvision
    vgg = VGGFeatures("vgg16", vgg_file("vgg16"), ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    out = vgg(x)
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == {
        "relu1_2": (64, 32, 32), "relu2_2": (128, 16, 16), "relu3_3": (256, 8, 8), "relu4_3": (512, 4, 4)}
    # the same numbers as torchvision's net on ImageNet-normalised input
    ref = torchvision.models.vgg16()
    ref.load_state_dict(torch.load(vgg_file("vgg16"), weights_only=True))
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = ref.features[:9](((x + 1) / 2 - mean) / std)
    assert torch.allclose(out["relu2_2"], expected, atol=1e-5)
    assert not any(p.requires_grad for p in vgg.parameters())


def test_vgg_errors_say_what_to_set(tmp_path, vgg_file):
    with pytest.raises(VGGWeightsError, match="model.vgg_weights"):
        VGGFeatures("vgg19", "", ["relu5_4"])
    with pytest.raises(VGGWeightsError, match="no such file"):
        VGGFeatures("vgg19", tmp_path / "missing.pth", ["relu5_4"])
    with pytest.raises(VGGWeightsError, match="not vgg19 weights"):
        VGGFeatures("vgg19", vgg_file("vgg16"), ["relu5_4"])
    with pytest.raises(VGGWeightsError, match="no layer relu5_4"):
        VGGFeatures("vgg16", vgg_file("vgg16"), ["relu5_4"])
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))
    evil = tmp_path / "evil.pth"
    torch.save({"features.0.weight": Evil()}, evil)
    with pytest.raises(Exception, match="refused"):
        VGGFeatures("vgg16", evil, ["relu1_2"])
    assert not marker.exists()


def test_fast_style_transfer_moves_towards_the_style(tmp_path, vgg_file):
    photos = synthesize("photos", tmp_path / "photos", n=12, size=32, workers=1)
    style = tmp_path / "style.png"
    rng = np.random.default_rng(0)
    Image.fromarray(np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((4, 4, 1))).astype(np.uint8)).save(style)
    cfg = registry.load_config("fast-style", [f"data.root='{photos}'", "data.image_size=32", f"model.style_image='{style}'",
                                     f"model.vgg_weights='{vgg_file('vgg16')}'", "model.ngf=8", "model.n_blocks=1",
                                     "train.steps=30", "train.batch_size=2", "train.log_every=1",
                                     "train.sample_every=0", "train.checkpoint_every=0", "train.precision='off'",
                                     "train.device='cpu'", "data.num_workers=0", "train.threads=1",
                                     "model.lambda_content=0.0", "model.lambda_style=1e12", "train.lr=1e-2"])
    run.train(cfg, tmp_path / "r", progress=False)
    m = RunDir(tmp_path / "r").read_metrics()
    assert np.mean([r["G_style"] for r in m[-5:]]) < 0.7 * np.mean([r["G_style"] for r in m[:3]])
    t = inference.load(tmp_path / "r" / "model.safetensors")
    out = t.run(Image.new("RGB", (50, 37), "white"))
    assert out.size == (50, 37)
    assert t.run(Image.new("RGB", (300, 90), "white"), max_side=64).size == (300, 90)


def test_fast_style_needs_a_style_image(tmp_path, vgg_file):
    with pytest.raises(config.ConfigError, match="model.style_image"):
        registry.load_config("fast-style", [f"model.vgg_weights='{vgg_file('vgg16')}'"])
    with pytest.raises(config.ConfigError, match="model.vgg_weights"):
        style = tmp_path / "s.png"
        Image.new("RGB", (8, 8)).save(style)
        registry.load_config("fast-style", [f"model.style_image='{style}'"])
