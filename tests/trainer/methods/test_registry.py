"""The method registry (issue 27): one table of methods, the old spellings of BicycleGAN still
read, the method contract's declarations are complete, and preset folders add presets."""
import pytest

from trainer import registry
from trainer.config import ConfigError
from trainer.methods.base import LOSS_GROUPS, Method
from trainer.modelfile import read_card

from tests.conftest import ROOT

BUNDLED_SKETCH2PHOTO = ROOT / "assets" / "models" / "sketch2photo.safetensors"


def test_every_method_declares_the_contract():
    for name, cls in registry.METHODS.items():
        assert cls.name == name and cls.task and cls.paper and cls.ModelConfig and cls.Translator, name
        assert cls.layouts and set(cls.loss_groups.values()) <= set(LOSS_GROUPS), name
        assert set(cls.discriminator_optimizers) <= {"D"}, name


def test_an_old_pix2pix_card_with_a_latent_code_is_bicyclegan():
    card = read_card(BUNDLED_SKETCH2PHOTO)
    assert card["method"] == "pix2pix" and card["nets"]["G"]["args"]["nz"] > 0  # the bundled file, unchanged
    assert registry.method_of_card(card).name == "bicyclegan"
    plain = {**card, "nets": {"G": {**card["nets"]["G"], "args": {**card["nets"]["G"]["args"], "nz": 0}}}}
    assert registry.method_of_card(plain).name == "pix2pix"
    assert registry.method_of_card({**card, "method": "bicyclegan"}).name == "bicyclegan"
    with pytest.raises(ValueError, match="no translator"):
        registry.method_of_card({"method": "nothing"})


def test_an_old_pix2pix_preset_with_a_latent_code_trains_as_bicyclegan():
    raw = registry.read_preset("bicyclegan-sketches")
    assert raw["method"] == "bicyclegan"
    old = {**raw, "method": "pix2pix"}
    cfg = registry.config_from_dict(old)
    assert cfg.method == "bicyclegan" and cfg.model.nz == 16
    plain = registry.load_config("sketch2photo")
    assert plain.method == "pix2pix" and not hasattr(plain.model, "nz")
    # a run written before BicycleGAN was a method: a pix2pix config.toml with the unused latent settings
    written = registry.read_preset("sketch2photo")
    written["model"].update(nz=0, nef=64, encoder_grid=1, lambda_kl=0.01, lambda_z=0.5, latent_prior="normal",
                            latent_fit_images=2000)
    assert registry.config_from_dict(written).method == "pix2pix"
    with pytest.raises(ConfigError, match="nz > 0"):
        registry.load_config("sketch2photo", ["model.latent_prior=posterior"])


def test_unknown_methods_and_name_clashes_are_refused():
    with pytest.raises(ConfigError, match="unknown method 'nothing'; known: .*bicyclegan"):
        registry.get_method("nothing")

    class Clash(registry.get_method("pix2pix")):
        pass
    with pytest.raises(ConfigError, match="taken"):
        registry.register(Clash)

    class Nameless(Method):
        pass
    with pytest.raises(ConfigError):
        registry.register(Nameless)
    assert "Clash" not in {c.__name__ for c in registry.METHODS.values()}


def test_aliases_read(monkeypatch):
    cls = registry.get_method("fast_style")
    monkeypatch.setattr(cls, "aliases", ("johnson",))
    assert registry.get_method("johnson") is cls and cls.reads_card({"method": "johnson"})


def test_size_rules_are_the_methods_own():
    rules = {"pix2pix": (64, 100), "cyclegan": (32, 30), "stargan": (64, 62), "dcgan": (16, 24),
             "stylegan": (32, 48), "srgan": (96, 98)}
    for name, (good, bad) in rules.items():
        cls = registry.get_method(name)
        cls.check_image_size(good)
        with pytest.raises(ConfigError, match="image_size"):
            cls.check_image_size(bad)


def test_preset_folders_add_presets(tmp_path, monkeypatch):
    (tmp_path / "mine.toml").write_text('method = "pix2pix"\ndescription = "mine"\n[data]\nsynth = "sketches"\n'
                                        'image_size = 32\n')
    monkeypatch.setenv("GAN_STUDIO_PRESET_PATH", str(tmp_path))
    assert registry.all_presets()["mine"] == tmp_path / "mine.toml"
    cfg = registry.load_config("mine", ["train.steps=2"])
    assert cfg.preset == "mine" and cfg.data.image_size == 32 and cfg.method == "pix2pix"


def test_a_dataset_is_checked_against_the_methods_layouts(tmp_path):
    from PIL import Image
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainB").mkdir()
    for side in "AB":
        Image.new("RGB", (8, 8)).save(tmp_path / f"train{side}" / "0.png")
    assert registry.check_dataset("cyclegan", tmp_path).startswith("unaligned")
    with pytest.raises(ValueError, match="pix2pix needs aligned"):
        registry.check_dataset("pix2pix", tmp_path)
