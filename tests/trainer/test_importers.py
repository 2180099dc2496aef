"""``gan-trainer import`` on the checkpoints people actually have (GitHub issue 28, item 1).

Every fixture is built from the reference networks' key lists in tests/fixtures/reference-keys
(random tensors of the listed shapes), never downloaded. ``shrink`` divides the channel widths
(multiples of 64) so that the big generators stay small; ``replace`` changes single shapes (one
channel in or out, more domains)."""
import argparse
import ast

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import REFERENCE_KEYS
from trainer import inference
from trainer.conversion import KINDS, CheckpointImportError, import_checkpoint
from trainer.modelfile import load_model, read_card


def reference_shapes(name: str) -> dict:
    """{key: shape} of one reference-keys file, in order."""
    keys = {}
    for line in (REFERENCE_KEYS / f"{name}.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.split(" ", 1)
        keys[key] = tuple(ast.literal_eval(shape)) if shape.strip() != "()" else ()
    return keys


def _shrunk(key: str, shape: tuple, shrink: int) -> tuple:
    if shrink == 1 or not shape:
        return shape
    positions = {1: (0,), 2: (0, 1), 4: (0, 1), 5: (1, 2)}.get(len(shape), ())
    return tuple(d // shrink if i in positions and d % 64 == 0 else d for i, d in enumerate(shape))


def reference_state(name: str, shrink: int = 1, replace: dict | None = None, seed: int = 0) -> dict:
    """A state dict with the key list's keys and shapes (channel widths divided by ``shrink``,
    ``replace`` = {key: shape} applied after), filled as a trained checkpoint would be: weights
    random and small, batch-norm running variances positive, num_batches_tracked an int64."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in reference_shapes(name).items():
        shape = (replace or {}).get(key, _shrunk(key, shape, shrink))
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith(".kernel"):  # StyleGAN2's blur kernels
            k = torch.tensor([1.0, 3.0, 3.0, 1.0])
            k = k[None] * k[:, None]
            state[key] = (k / k.sum() * (4 if "upsample" in key else 1)) if shape == (4, 4) else torch.randn(shape)
        else:
            state[key] = torch.randn(shape, generator=g) * 0.05
    return state


def _grey_unet(shrink=8):
    """junyanz unet_256, instance norm, one channel in and out (e.g. a greyscale restoration model)."""
    return reference_state("junyanz_unet256_instance", shrink, replace={
        "model.model.0.weight": (64 // shrink, 1, 4, 4), "model.model.3.weight": (128 // shrink, 1, 4, 4),
        "model.model.3.bias": (1,)})


# -- rosinality StyleGAN2 ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stylegan_state():
    return reference_state("rosinality_stylegan2_G_256_cm2")


@pytest.mark.parametrize("layout", ["bare", "g_ema_alone", "g_ema_no_noises", "bare_no_noises", "module_prefix"])
def test_stylegan_layouts_people_have(stylegan_state, tmp_path, layout):
    state = dict(stylegan_state)
    if "no_noises" in layout:  # checkpoints of older rosinality versions
        state = {k: v for k, v in state.items() if not k.startswith("noises.")}
    if layout == "module_prefix":
        state = {f"module.{k}": v for k, v in state.items()}
    obj = {"g_ema": state} if layout.startswith("g_ema") else state
    torch.save(obj, tmp_path / "stylegan2-ffhq.pt")
    out = import_checkpoint(tmp_path / "stylegan2-ffhq.pt", tmp_path / "s.safetensors")
    tensors, card = load_model(out)
    assert card["method"] == "stylegan"
    assert card["nets"]["G"]["args"] == {"size": 256, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2,
                                         "channel_max": 512}
    assert torch.equal(tensors["G.style.1.weight"], stylegan_state["style.1.weight"])
    assert tensors["G.noises.noise_12"].shape == (1, 1, 256, 256)
    if "no_noises" in layout:
        assert "noises" in card["training"]["filled_in"]


def test_stylegan_kind_on_a_bare_state_dict_and_on_other_files(stylegan_state, tmp_path):
    torch.save(stylegan_state, tmp_path / "g.pt")
    card = read_card(import_checkpoint(tmp_path / "g.pt", tmp_path / "s.safetensors", kind="stylegan"))
    assert card["nets"]["G"]["args"]["size"] == 256
    torch.save(reference_state("junyanz_resnet6_instance", 8), tmp_path / "latest_net_G.pth")
    with pytest.raises(CheckpointImportError, match=r"not a .*StyleGAN2.*style\.1\.weight"):
        import_checkpoint(tmp_path / "latest_net_G.pth", tmp_path / "x.safetensors", kind="stylegan")
    # a truncated generator: the refusal names what is wrong
    broken = dict(stylegan_state)
    broken["convs.3.conv.weight"] = torch.zeros(1, 512, 256, 3, 3)
    torch.save({"g_ema": broken}, tmp_path / "broken.pt")
    with pytest.raises(CheckpointImportError,
                       match=r"convs\.3\.conv\.weight.*\(1, 512, 256, 3, 3\).*\(1, 512, 512, 3, 3\)"):
        import_checkpoint(tmp_path / "broken.pt", tmp_path / "x.safetensors")


def test_rosinality_training_checkpoint_with_namespace_and_latent_avg(stylegan_state, tmp_path):
    torch.save({"g": stylegan_state, "g_ema": stylegan_state, "d": reference_state("rosinality_stylegan2_D_256_cm2"),
                "g_optim": {}, "d_optim": {}, "latent_avg": torch.zeros(512),
                "args": argparse.Namespace(size=256, channel_multiplier=2)}, tmp_path / "550000.pt")
    tensors, card = load_model(import_checkpoint(tmp_path / "550000.pt", tmp_path / "s.safetensors"))
    assert card["training"]["generator"] == "g_ema" and tensors["latent_avg"].shape == (1, 512)


# -- junyanz ResNet / U-Net ------------------------------------------------------------------------


def test_resnet_batch_norm_without_dropout_is_not_read_as_dropout(tmp_path):
    state = reference_state("junyanz_resnet9_batch", 8)
    torch.save(state, tmp_path / "latest_net_G.pth")
    out = import_checkpoint(tmp_path / "latest_net_G.pth", tmp_path / "m.safetensors")
    tensors, card = load_model(out)
    assert card["nets"]["G_A"]["args"] == {"input_nc": 3, "output_nc": 3, "ngf": 8, "norm": "batch",
                                           "use_dropout": False, "n_blocks": 9}
    # conv_block.6 is the second batch norm, with its running statistics
    assert torch.equal(tensors["G_A.model.10.conv_block.6.running_var"], state["model.10.conv_block.6.running_var"])
    assert inference.load(out).run(Image.new("RGB", (24, 24))).size == (24, 24)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_resnet_dropout_is_read_from_the_tensors(tmp_path, norm):
    from trainer.nets.resnet import ResnetGenerator
    torch.save(ResnetGenerator(ngf=8, n_blocks=2, norm=norm, use_dropout=True).state_dict(), tmp_path / "d.pth")
    card = read_card(import_checkpoint(tmp_path / "d.pth", tmp_path / "d.safetensors"))
    assert card["nets"]["G_A"]["args"]["use_dropout"] is True and card["nets"]["G_A"]["args"]["norm"] == norm
    torch.save(ResnetGenerator(ngf=8, n_blocks=2, norm=norm).state_dict(), tmp_path / "n.pth")
    card = read_card(import_checkpoint(tmp_path / "n.pth", tmp_path / "n.safetensors"))
    assert card["nets"]["G_A"]["args"]["use_dropout"] is False


def test_unet_without_train_opt_is_not_assumed_to_use_dropout(tmp_path):
    torch.save(reference_state("junyanz_unet128_batch", 8), tmp_path / "latest_net_G.pth")
    card = read_card(import_checkpoint(tmp_path / "latest_net_G.pth", tmp_path / "m.safetensors"))
    assert card["nets"]["G"]["args"]["use_dropout"] is False and card["image_size"] == 128
    (tmp_path / "train_opt.txt").write_text("----- Options -----\n      no_dropout: False\n")
    card = read_card(import_checkpoint(tmp_path / "latest_net_G.pth", tmp_path / "d.safetensors"))
    assert card["nets"]["G"]["args"]["use_dropout"] is True


def test_reference_resnet_and_unet_key_lists_import(tmp_path):
    for name, method in (("junyanz_cyclegan_resnet9_instance", "cyclegan"), ("junyanz_resnet6_instance", "cyclegan"),
                         ("junyanz_pix2pix_unet256_batch_dropout", "pix2pix"), ("junyanz_unet256_instance", "pix2pix")):
        torch.save(reference_state(name, 8), tmp_path / f"{name}.pth")
        card = read_card(import_checkpoint(tmp_path / f"{name}.pth", tmp_path / f"{name}.safetensors"))
        assert card["method"] == method, name


# -- one channel -----------------------------------------------------------------------------------


def test_one_channel_unet_imports_and_translates_to_greyscale(tmp_path):
    torch.save(_grey_unet(), tmp_path / "latest_net_G.pth")
    out = import_checkpoint(tmp_path / "latest_net_G.pth", tmp_path / "grey.safetensors")
    card = read_card(out)
    assert card["channels"] == 1 and card["nets"]["G"]["args"]["input_nc"] == 1
    t = inference.load(out)
    image = t.run(Image.new("RGB", (40, 30), (200, 10, 10)), mode="deterministic")
    assert image.mode == "L" and image.size == (40, 30)
    assert t.run_array(Image.new("L", (16, 16), 128), mode="deterministic").shape == (16, 16, 3)


def test_one_channel_resnet_pair_imports_and_translates(tmp_path):
    for side in "AB":
        torch.save(reference_state("junyanz_resnet6_instance", 8, seed=ord(side), replace={
            "model.1.weight": (8, 1, 7, 7), "model.23.weight": (1, 8, 7, 7), "model.23.bias": (1,)}),
            tmp_path / f"latest_net_G_{side}.pth")
    out = import_checkpoint(tmp_path / "latest_net_G_A.pth", tmp_path / "grey.safetensors")
    assert read_card(out)["channels"] == 1
    t = inference.load(out)
    for output in ("translation", "reconstruction"):
        assert t.run(Image.new("RGB", (20, 20)), direction="BtoA", output=output).mode == "L"


def test_two_channel_output_is_refused_by_shape(tmp_path):
    state = _grey_unet()
    state["model.model.3.weight"], state["model.model.3.bias"] = torch.zeros(16, 2, 4, 4), torch.zeros(2)
    torch.save(state, tmp_path / "lab.pth")
    with pytest.raises(CheckpointImportError, match=r"model\.model\.3\.weight.*\(16, 2, 4, 4\).*2 channels"):
        import_checkpoint(tmp_path / "lab.pth", tmp_path / "x.safetensors")


# -- StarGAN ---------------------------------------------------------------------------------------


RAFD = ["angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised"]


def _rafd_state():
    return reference_state("stargan_G_celeba_c5", 8, replace={"main.0.weight": (8, 3 + len(RAFD), 7, 7)})


def test_stargan_exclusive_domains_and_image_size(tmp_path):
    torch.save(_rafd_state(), tmp_path / "200000-G.ckpt")
    out = import_checkpoint(tmp_path / "200000-G.ckpt", tmp_path / "rafd.safetensors", domains=RAFD,
                            exclusive=True, image_size=256)
    card = read_card(out)
    assert card["exclusive_groups"] == [RAFD] and card["image_size"] == 256
    t = inference.load(out)
    assert t.image_size == 256
    assert t.run(Image.new("RGB", (32, 32)), happy=True).size == (32, 32)
    with pytest.raises(ValueError, match="happy and sad are mutually exclusive"):
        t.run(Image.new("RGB", (32, 32)), happy=True, sad=True)
    # without the option the domains stay independent
    card = read_card(import_checkpoint(tmp_path / "200000-G.ckpt", tmp_path / "ind.safetensors", domains=RAFD))
    assert card["exclusive_groups"] == [] and card["image_size"] == 128


def test_stargan_option_errors(tmp_path):
    torch.save(_rafd_state(), tmp_path / "200000-G.ckpt")
    for options, words in (({"image_size": 130}, "multiple of 4"), ({"image_size": 0}, "multiple of 4"),
                           ({"domains": ["a", "b"]}, "8 domains.*--domains names 2"),
                           ({"exclusive": ["happy", "bored"]}, "bored"),
                           ({"direction": "BtoA"}, "--direction does not apply to a stargan")):
        with pytest.raises(CheckpointImportError, match=words):
            import_checkpoint(tmp_path / "200000-G.ckpt", tmp_path / "x.safetensors", **options)
    card = read_card(import_checkpoint(tmp_path / "200000-G.ckpt", tmp_path / "g.safetensors", domains=RAFD,
                                       exclusive=["happy", "sad"]))
    assert card["exclusive_groups"] == [["happy", "sad"]]


def test_reference_stargan_key_list_imports(tmp_path):
    torch.save(reference_state("stargan_G_celeba_c5", 8), tmp_path / "200000-G.ckpt")
    card = read_card(import_checkpoint(tmp_path / "200000-G.ckpt", tmp_path / "m.safetensors"))
    assert card["method"] == "stargan" and card["nets"]["G"]["args"] == {"conv_dim": 8, "c_dim": 5, "repeat_num": 6}


# -- kinds and refusals ----------------------------------------------------------------------------


def test_every_kind_on_every_wrong_file_is_a_clear_refusal(stylegan_state, tmp_path):
    files = {"pix2pix": reference_state("junyanz_unet128_batch", 8),
             "cyclegan": reference_state("junyanz_resnet6_instance", 8),
             "stargan": reference_state("stargan_G_celeba_c5", 8),
             "stylegan": {"g_ema": stylegan_state, "args": argparse.Namespace(size=256)},
             "discriminator": reference_state("junyanz_D_basic_pix2pix_in6_batch", 8)}
    for name, obj in files.items():
        torch.save(obj, tmp_path / f"{name}.pth")
    for kind in KINDS:
        for name in files:
            if name == kind or kind == "auto" and name != "discriminator":
                continue
            with pytest.raises(CheckpointImportError) as e:
                import_checkpoint(tmp_path / f"{name}.pth", tmp_path / "x.safetensors", kind=kind)
            message = str(e.value)
            assert f"{name}.pth" in message and ("key" in message or "shape" in message), (kind, name, message)
    with pytest.raises(CheckpointImportError, match="unknown checkpoint kind 'stylegan3'.*auto, pix2pix, cyclegan, "
                                                    "stargan, stylegan"):
        import_checkpoint(tmp_path / "pix2pix.pth", tmp_path / "x.safetensors", kind="stylegan3")


def test_mismatch_names_the_key_and_shape(tmp_path):
    state = reference_state("junyanz_resnet6_instance", 8)
    state["model.13.conv_block.5.weight"] = torch.zeros(32, 16, 3, 3)
    torch.save(state, tmp_path / "latest_net_G.pth")
    with pytest.raises(CheckpointImportError, match=r"model\.13\.conv_block\.5\.weight has shape \(32, 16, 3, 3\) "
                                                    r"where the network has \(32, 32, 3, 3\)"):
        import_checkpoint(tmp_path / "latest_net_G.pth", tmp_path / "x.safetensors")
    state = reference_state("junyanz_unet128_batch", 8)
    del state["model.model.1.model.3.model.2.running_var"]
    torch.save(state, tmp_path / "u.pth")
    with pytest.raises(CheckpointImportError, match=r"missing key.*model\.model\.1\.model\.3\.model\.2\.running_var"):
        import_checkpoint(tmp_path / "u.pth", tmp_path / "x.safetensors")


def test_imported_grey_model_output_is_not_black(tmp_path):
    torch.save(_grey_unet(), tmp_path / "latest_net_G.pth")
    t = inference.load(import_checkpoint(tmp_path / "latest_net_G.pth", tmp_path / "g.safetensors"))
    arr = np.asarray(t.run(Image.new("L", (32, 32), 90), mode="deterministic"))
    assert arr.ndim == 2 and arr.std() > 0
