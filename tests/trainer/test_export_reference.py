"""``gan-trainer export --format junyanz|stargan|rosinality``: the reference's keys and shapes
(tests/fixtures/reference-keys), the same function after re-import, and refusals with reasons."""

import pytest
import torch

from tests.conftest import ROOT, tiny_overrides
from tests.trainer.nets.test_nets import reference
from tests.trainer.test_tensor_api import images, save, tiny  # noqa: F401  (tiny: the fixture)
from trainer import inference
from trainer.cli import main
from trainer.conversion import ExportRefused, export_reference, plan
from trainer.conversion import import_checkpoint
from trainer.nets import build

MODELS = ROOT / "assets" / "models"


def meta_model(card: dict) -> dict:
    """The tensors of ``card``'s nets built on the meta device (keys and shapes, no values)."""
    tensors = {}
    with torch.device("meta"):
        for name, spec in card["nets"].items():
            tensors.update({f"{name}.{k}": v for k, v in build(spec["name"], **spec["args"]).state_dict().items()})
    return tensors


def junyanz_card(args: dict) -> dict:
    """A model card for the generator that junyanz's ``define_G(**args)`` builds."""
    net = args["netG"]
    if net.startswith("unet"):
        spec = {"name": "unet", "args": {"input_nc": args["input_nc"], "output_nc": args["output_nc"],
                                         "num_downs": int(net.split("_")[1]).bit_length() - 1, "ngf": args["ngf"],
                                         "norm": args["norm"], "use_dropout": args["use_dropout"]}}
        return {"method": "pix2pix", "nets": {"G": spec}, "image_size": int(net.split("_")[1]), "direction": "AtoB"}
    spec = {"name": "resnet", "args": {"input_nc": args["input_nc"], "output_nc": args["output_nc"],
                                       "ngf": args["ngf"], "norm": args["norm"], "use_dropout": args["use_dropout"],
                                       "n_blocks": int(net.split("_")[1][0])}}
    return {"method": "cyclegan", "nets": {"G_A": spec}, "image_size": 256, "directions": ["AtoB"]}


def state_keys(state: dict) -> list:
    return [(k, tuple(v.shape)) for k, v in state.items()]


@pytest.mark.parametrize("name", ["junyanz_cyclegan_resnet9_instance", "junyanz_resnet6_instance",
                                  "junyanz_resnet9_batch", "junyanz_pix2pix_unet256_batch_dropout",
                                  "junyanz_unet128_batch", "junyanz_unet256_instance"])
def test_junyanz_export_has_the_reference_keys_and_shapes(name, tmp_path):
    args, _, keys = reference(name)
    card = junyanz_card(args)
    export = plan(meta_model(card), card, "junyanz", tmp_path / "latest_net_G.pth")
    (path, state), = export.files.items()
    assert path.name == "latest_net_G.pth"
    assert state_keys(state) == list(keys.items())  # the same keys, shapes and order
    assert f"--norm {args['norm']}" in export.options and f"--netG {args['netG']}" in export.options
    assert ("--no_dropout" in export.options) == (not args["use_dropout"])


def test_stargan_export_has_the_reference_keys_and_shapes(tmp_path):
    _, _, keys = reference("stargan_G_celeba_c5")
    card = {"method": "stargan", "image_size": 128, "domains": ["a", "b", "c", "d", "e"], "classes": [],
            "nets": {"G": {"name": "stargan_G", "args": {"conv_dim": 64, "c_dim": 5, "repeat_num": 6}}}}
    export = plan(meta_model(card), card, "stargan", tmp_path / "200000-G.ckpt")
    (_, state), = export.files.items()
    assert state_keys(state) == list(keys.items())  # running statistics and num_batches_tracked included
    assert "--c_dim 5" in export.options and "--selected_attrs a b c d e" in export.options


@pytest.mark.parametrize("name, size", [("rosinality_stylegan2_G_256_cm2", 256),
                                        ("rosinality_stylegan2_G_1024_cm2", 1024)])
def test_rosinality_export_has_the_reference_keys_and_shapes(name, size, tmp_path):
    _, _, keys = reference(name)
    card = {"method": "stylegan", "image_size": size, "nets": {"G": {"name": "stylegan_G", "args": {
        "size": size, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2, "channel_max": 512, "lr_mlp": 0.01}}}}
    export = plan(meta_model(card), card, "rosinality", tmp_path / "g.pt")
    (_, ckpt), = export.files.items()
    assert set(ckpt) == {"g_ema", "latent_avg"} and tuple(ckpt["latent_avg"].shape) == (512,)
    assert state_keys(ckpt["g_ema"]) == list(keys.items())
    assert any(k.startswith("noises.noise_") for k in ckpt["g_ema"])
    assert f"--size {size} --channel_multiplier 2" in export.options


def outputs(path, x, **controls):
    return inference.load(path).run_tensor(x, **controls)


@pytest.mark.parametrize("controls", [{"mode": "eval"}, {"mode": "deterministic"}, {"mode": "paper", "seed": 4}])
def test_pix2pix_round_trip_computes_the_same(controls, tmp_path):
    model = save(tmp_path / "m.safetensors",
                 {"G": ("unet", dict(input_nc=3, output_nc=3, num_downs=5, ngf=8, norm="batch", use_dropout=True))},
                 {"method": "pix2pix", "task": "sketch2photo", "direction": "BtoA", "inference": {"mode": "eval"}})
    with torch.no_grad():  # running statistics of their own, so eval mode differs from batch statistics
        from trainer.modelfile import load_model, save_model
        tensors, card = load_model(model)
        for k in tensors:
            if k.endswith("running_var"):
                tensors[k] = torch.rand_like(tensors[k]) + 0.5
            elif k.endswith("running_mean"):
                tensors[k] = torch.randn_like(tensors[k]) * 0.1
        save_model(model, tensors, card)
    ckpt = tmp_path / "ref" / "latest_net_G.pth"
    assert main(["export", str(model), "--format", "junyanz", "-o", str(ckpt)]) == 0
    state = torch.load(ckpt, map_location="cpu", weights_only=True)  # as the reference loads it
    strict = build("unet", input_nc=3, output_nc=3, num_downs=5, ngf=8, norm="batch", use_dropout=True)
    strict.load_state_dict(state, strict=True)
    opts = (ckpt.parent / "train_opt.txt").read_text()
    assert "direction: BtoA" in opts and "no_dropout: False" in opts
    back = import_checkpoint(ckpt, tmp_path / "back.safetensors")
    assert inference.load(back).card["direction"] == "BtoA"
    _, x = images(n=3)
    diff = (outputs(model, x, **controls) - outputs(back, x, **controls)).abs().max()
    assert diff < 1e-5


def test_cyclegan_pair_round_trip_and_train_opt_left_alone(tiny, tmp_path):  # noqa: F811
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "train_opt.txt").write_text("a training's own options\n")
    done = export_reference(tiny("cyclegan"), tmp_path / "ref" / "latest_net_G.pth", "junyanz")
    assert sorted(p.name for p in done.files) == ["latest_net_G_A.pth", "latest_net_G_B.pth"]
    assert not done.notes and (tmp_path / "ref" / "train_opt.txt").read_text() == "a training's own options\n"
    back = import_checkpoint(tmp_path / "ref" / "latest_net_G_A.pth", tmp_path / "back.safetensors")
    _, x = images(n=2)
    for direction in ("AtoB", "BtoA"):
        diff = (outputs(tiny("cyclegan"), x, direction=direction) - outputs(back, x, direction=direction)).abs().max()
        assert diff < 1e-5


def test_stargan_round_trip(tiny, tmp_path):  # noqa: F811
    ckpt = tmp_path / "200000-G.ckpt"
    export_reference(tiny("stargan"), ckpt, "stargan")
    back = import_checkpoint(ckpt, tmp_path / "back.safetensors")
    _, x = images(n=3)
    c = torch.rand(3, 5, generator=torch.Generator().manual_seed(0))
    assert (outputs(tiny("stargan"), x, c=c) - outputs(back, x, c=c)).abs().max() < 1e-5
    controls = {"Black_Hair": True, "Young": True}
    assert (outputs(tiny("stargan"), x, **controls) - outputs(back, x, **controls)).abs().max() < 1e-5


@pytest.mark.parametrize("with_latent_avg", [True, False])
def test_rosinality_round_trip_with_stored_noise(with_latent_avg, tmp_path):
    args = dict(size=8, style_dim=16, n_mlp=2, channel_multiplier=1)  # rosinality's channel table: 512
    torch.manual_seed(0)
    g = build("stylegan_G", **args)
    with torch.no_grad():
        for m in g.modules():
            if type(m).__name__ == "NoiseInjection":
                m.weight.fill_(0.5)
    tensors = {f"G.{k}": v for k, v in g.state_dict().items()}
    if with_latent_avg:
        tensors["latent_avg"] = torch.randn(1, 16) * 0.1
    from trainer.modelfile import save_model
    model = save_model(tmp_path / "m.safetensors", tensors, {"method": "stylegan", "image_size": 8, "nets": {
        "G": {"name": "stylegan_G", "args": args}}})
    ckpt = tmp_path / "g.pt"
    export_reference(model, ckpt, "rosinality")
    obj = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert set(obj) == {"g_ema", "latent_avg"} and obj["latent_avg"].shape == (16,)
    strict = build("stylegan_G", size=8, style_dim=16, n_mlp=2, channel_multiplier=1)  # rosinality's Generator
    strict.load_state_dict(obj["g_ema"], strict=True)
    back = import_checkpoint(ckpt, tmp_path / "back.safetensors")
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))
    for controls in ({"psi": 0.6, "noise_mode": "stored"}, {"psi": 1.0, "noise_mode": "const", "noise_seed": 2}):
        a = inference.load(model).run_tensor(z=z, **controls)
        b = inference.load(back).run_tensor(z=z, **controls)
        assert (a - b).abs().max() < 1e-5
    with torch.no_grad():  # and what the reference computes: randomize_noise=False, truncation_latent=latent_avg
        ref = strict([z], truncation=0.6, truncation_latent=obj["latent_avg"], randomize_noise=False)
    assert (inference.load(back).run_tensor(z=z, psi=0.6, noise_mode="stored") - ref.clamp(-1, 1)).abs().max() < 1e-5


@pytest.mark.parametrize("left_out", ["zeros", "trained"])
def test_rosinality_export_of_a_generator_with_output_skips_from_16(left_out, tmp_path):
    """Rosinality's Generator adds the ToRGBs that output_skips_from leaves out: the export writes
    them as zeros (also when a run resumed with the option had trained them), so the reference
    draws the same image."""
    from trainer.modelfile import save_model
    args = dict(size=16, style_dim=16, n_mlp=2, channel_multiplier=1, output_skips_from=16)
    torch.manual_seed(0)
    g = build("stylegan_G", **args)
    card = {"method": "stylegan", "image_size": 16, "nets": {"G": {"name": "stylegan_G", "args": args}}}
    tensors = {f"G.{k}": v for k, v in g.state_dict().items()}
    if left_out == "trained":
        tensors["G.to_rgbs.0.bias"] = torch.full((1, 3, 1, 1), 0.1)
        tensors["G.to_rgb1.conv.weight"] = torch.randn_like(tensors["G.to_rgb1.conv.weight"])
    model = save_model(tmp_path / "m.safetensors", tensors, card)
    export_reference(model, tmp_path / "g.pt", "rosinality")
    obj = torch.load(tmp_path / "g.pt", map_location="cpu", weights_only=True)
    assert not obj["g_ema"]["to_rgbs.0.bias"].any() and not obj["g_ema"]["to_rgb1.conv.weight"].any()
    assert obj["g_ema"]["to_rgbs.1.bias"].shape == (1, 3, 1, 1)
    strict = build("stylegan_G", size=16, style_dim=16, n_mlp=2, channel_multiplier=1)  # rosinality's Generator
    strict.load_state_dict(obj["g_ema"], strict=True)
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = strict([z], randomize_noise=False)
    assert (inference.load(model).run_tensor(z=z, psi=1.0, noise_mode="stored") - ref.clamp(-1, 1)).abs().max() < 1e-5


@pytest.mark.parametrize("model, fmt, reason", [
    ("sketch2photo", "junyanz", "BicycleGAN generator (a pix2pix U-Net with a latent code input"),
    ("shapes-cyclegan", "junyanz", "residual ResNet generator"),
    ("faces-style", "rosinality", "channel table of its own"),
    ("superres-x4", "junyanz", "no reference format holds it"),
    ("faces-attributes", "rosinality", "its format is stargan"),
])
def test_bundled_models_without_a_reference_equivalent_are_refused(model, fmt, reason, tmp_path):
    with pytest.raises(ExportRefused, match=reason.replace("(", r"\(")):
        export_reference(MODELS / f"{model}.safetensors", tmp_path / "out.pth", fmt)
    assert not list(tmp_path.iterdir())  # nothing written


def test_the_bundled_stargan_has_an_attention_mask_and_is_refused_as_yunjeys(tmp_path):
    """The bundled faces-attributes uses GANimation's attention mask, which yunjey's Generator lacks:
    refused with the reason and the way out (ONNX), nothing written. Plain StarGANs export
    (test_stargan_round_trip)."""
    with pytest.raises(ExportRefused, match="attention mask.*--onnx"):
        export_reference(MODELS / "faces-attributes.safetensors", tmp_path / "200000-G.ckpt", "stargan")
    assert not list(tmp_path.iterdir())


def test_attention_stargan_and_custom_channels_are_refused(tiny, tmp_path):  # noqa: F811
    with pytest.raises(ExportRefused, match="attention mask"):
        export_reference(tiny("attention_stargan"), tmp_path / "g.ckpt", "stargan")
    with pytest.raises(ExportRefused, match=r"channel_base 256"):
        export_reference(tiny("stylegan"), tmp_path / "g.pt", "rosinality")
    assert not list(tmp_path.iterdir())


def test_cli_export_format_from_a_run_and_refusal(sketches32, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "pix2pix-sketches", "--run-dir", str(run_dir), "--no-progress",
                 *sum((["--set", o] for o in tiny_overrides(sketches32, steps=2)), [])]) == 0
    capsys.readouterr()
    ckpt = tmp_path / "ref" / "latest_net_G.pth"
    assert main(["export", str(run_dir), "--format", "junyanz", "-o", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {ckpt}" in out and "reference: python test.py --model pix2pix" in out
    assert import_checkpoint(ckpt, tmp_path / "back.safetensors").is_file()
    code = main(["export", str(MODELS / "shapes-cyclegan.safetensors"), "--format", "junyanz",
                 "-o", str(tmp_path / "c.pth")])
    assert code == 2 and "residual" in capsys.readouterr().err
    assert main(["export", str(run_dir), "--format", "junyanz"]) == 2  # -o is needed
    assert "-o FILE" in capsys.readouterr().err
    assert main(["export", str(run_dir), "--format", "junyanz", "-o", str(ckpt), "--fp16"]) == 2
