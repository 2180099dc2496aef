"""Model files, the Translator, reference imports and the refusal of pickles."""
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import ROOT, tiny_overrides
from trainer import config, inference, registry, run
from trainer.conversion import CheckpointImportError, import_checkpoint
from trainer.inference import set_norm_mode
from trainer.modelfile import ModelFileError, load_model, read_card, save_model
from trainer.nets.unet import UnetGenerator
from trainer.rundir import RunDir


@pytest.fixture(scope="module")
def trained(sketches32, tmp_path_factory):
    rd = tmp_path_factory.mktemp("run") / "r"
    out = run.train(registry.load_config("pix2pix-sketches", tiny_overrides(sketches32, steps=4)), rd, progress=False)
    return rd, out.method


def test_export_round_trip(trained, tmp_path):
    rd, method = trained
    tensors, card = load_model(rd / "model.safetensors")
    assert card["method"] == "pix2pix" and card["image_size"] == 32 and card["format"] == 1
    assert card["nets"]["G"]["name"] == "unet" and card["training"]["steps_done"] == 4
    own = method.G.state_dict()
    assert set(tensors) == {f"G.{k}" for k in own}
    for k, v in own.items():
        assert torch.equal(tensors[f"G.{k}"], v.cpu())
    translator = inference.load(rd / "model.safetensors")
    image = Image.open(next(rd.glob("samples/*.png"))).convert("RGB").crop((0, 0, 32, 32))
    out = translator.run(image, mode="deterministic", strokes=False)  # the network alone, no stroke normalisation
    G = method.G.cpu()
    set_norm_mode(G, "deterministic")
    with torch.no_grad():
        from trainer.data.transforms import to_tensor, to_uint8
        expect = to_uint8(G(to_tensor(image)[None])[0])
    assert np.abs(np.asarray(out).astype(int) - expect.astype(int)).max() <= 1


def test_fp16_export_is_half_the_size(trained, tmp_path):
    rd, _ = trained
    small = run.export_run(RunDir(rd), tmp_path / "half.safetensors", dtype=torch.float16)
    assert small.stat().st_size < 0.6 * (rd / "model.safetensors").stat().st_size
    assert read_card(small)["stored_dtype"] == "float16"
    tensors, _ = load_model(small)
    assert all(v.dtype == torch.float32 for v in tensors.values() if v.is_floating_point())


def test_int8_export_is_a_quarter_the_size_and_close(trained, tmp_path):
    from safetensors.torch import load_file, save_file
    from trainer.evaluation import write_into_card
    from trainer.modelfile import INT8_SCALE
    rd, method = trained
    full = rd / "model.safetensors"
    small = run.export_run(RunDir(rd), tmp_path / "q.safetensors", dtype=torch.int8)
    assert small.stat().st_size < 0.35 * full.stat().st_size
    assert read_card(small)["stored_dtype"] == "int8"
    raw = load_file(str(small))
    big = [k for k, v in method.G.state_dict().items() if v.dim() >= 2 and v.numel() >= 1024]
    assert big and all(raw[f"G.{k}"].dtype == torch.int8 for k in big)
    tensors, _ = load_model(small)
    assert not any(k.endswith(INT8_SCALE) for k in tensors)
    assert all(v.dtype == torch.float32 for v in tensors.values() if v.is_floating_point())
    for k, v in method.G.state_dict().items():
        got, want = tensors[f"G.{k}"], v.cpu()
        if k in big:  # within half a step of its output channel's scale
            step = raw[f"G.{k}{INT8_SCALE}"]
            assert step.shape == (want.shape[0],) + (1,) * (want.dim() - 1)
            assert torch.all((got - want).abs() <= step / 2 + 1e-7) and not torch.equal(got, want)
        elif v.is_floating_point():
            assert torch.allclose(got, want, rtol=1e-3, atol=1e-4)
    image = Image.open(next(rd.glob("samples/*.png"))).convert("RGB").crop((0, 0, 32, 32))
    a = np.asarray(inference.load(full).run(image, mode="deterministic")).astype(int)
    b = np.asarray(inference.load(small).run(image, mode="deterministic")).astype(int)
    assert np.abs(a - b).mean() < 2
    # storing an evaluation rewrites the file as int8 again, with the same integers
    write_into_card(small, {"data": "d", "metrics": {"x": 1}, "date": "now"})
    again = load_file(str(small))
    assert read_card(small)["eval"]["metrics"] == {"x": 1} and read_card(small)["stored_dtype"] == "int8"
    assert set(again) == set(raw) and all(torch.equal(again[k], raw[k]) for k in raw)
    # a file whose scales are missing or do not fit is refused, not loaded wrong
    from safetensors import safe_open
    with safe_open(str(small), "pt") as f:
        meta = f.metadata()
    k = f"G.{big[0]}"
    for broken in ({n: v for n, v in raw.items() if n != k + INT8_SCALE},
                   {**raw, k + INT8_SCALE: raw[k + INT8_SCALE][:-1]},
                   {**raw, k + INT8_SCALE: raw[k + INT8_SCALE] * float("nan")}):
        save_file(broken, str(tmp_path / "b.safetensors"), metadata=meta)
        with pytest.raises(ModelFileError, match="corrupt model file.*int8"):
            load_model(tmp_path / "b.safetensors")


def test_int8_scales_follow_the_output_channels_of_modulated_weights():
    from trainer.modelfile import dequantize_int8, quantize_int8
    w = torch.randn(1, 8, 4, 3, 3) * torch.logspace(-3, 0, 8).view(1, 8, 1, 1, 1)  # StyleGAN's layout
    q, scale = quantize_int8(w)
    assert q.dtype == torch.int8 and scale.shape == (1, 8, 1, 1, 1)
    err = (dequantize_int8(q, scale) - w).abs().amax(dim=(0, 2, 3, 4))
    assert torch.all(err <= scale.flatten() / 2 + 1e-9)  # the 1e-3 channel keeps its own precision


def test_translator_any_size_and_mode(trained):
    rd, _ = trained
    t = inference.load(rd / "model.safetensors")
    for mode, size in (("RGBA", (50, 20)), ("L", (7, 90)), ("CMYK", (33, 33)), ("1", (64, 48)), ("P", (31, 17))):
        out = t.run(Image.new(mode, size))
        assert out.size == size and out.mode == "RGB"
    a = t.run(Image.new("RGB", (32, 32), "white"), seed=1)
    b = t.run(Image.new("RGB", (32, 32), "white"), seed=1)
    assert np.array_equal(np.asarray(a), np.asarray(b))  # the noise seed makes paper mode repeatable
    with pytest.raises(ValueError, match="unknown control"):
        t.run(Image.new("RGB", (8, 8)), psi=0.5)
    with pytest.raises(ValueError, match="choose one of"):
        t.run(Image.new("RGB", (8, 8)), mode="fast")


def test_resize_convolution_unet_trains_exports_and_translates(trained, sketches32, tmp_path):
    with pytest.raises(config.ConfigError, match="upsample"):
        registry.load_config("pix2pix-sketches", ["model.upsample=deconv", "data.root=."])
    out = run.train(registry.load_config("pix2pix-sketches", tiny_overrides(sketches32, steps=2, **{"model.upsample": "resize"})),
                    tmp_path / "r", progress=False)
    card = read_card(tmp_path / "r" / "model.safetensors")
    assert card["nets"]["G"]["args"]["upsample"] == "resize"
    t = inference.load(tmp_path / "r" / "model.safetensors")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    G = out.method.G.cpu()
    set_norm_mode(G, "eval")
    set_norm_mode(t.G, "eval")
    with torch.no_grad():
        torch.testing.assert_close(t.G(x), G(x))
    # the reference layout stays the default, and an ordinary card does not name it
    assert "upsample" not in read_card(trained[0] / "model.safetensors")["nets"]["G"]["args"]


def test_paper_mode_does_not_touch_running_statistics(trained):
    rd, _ = trained
    t = inference.load(rd / "model.safetensors")
    before = {k: v.clone() for k, v in t.G.state_dict().items()}
    t.run(Image.new("RGB", (32, 32), "red"))
    for k, v in t.G.state_dict().items():
        assert torch.equal(before[k], v), k


def test_test_mode_of_the_preset_is_the_exported_default(trained, tmp_path):
    rd, _ = trained
    cfg = registry.load_config("pix2pix-sketches", ["model.test_mode=eval", "data.root=."])
    assert cfg.model.test_mode == "eval"
    with pytest.raises(config.ConfigError, match="test_mode"):
        registry.load_config("pix2pix-sketches", ["model.test_mode=fast", "data.root=."])
    copy = tmp_path / "run"
    shutil.copytree(rd, copy)
    rundir = RunDir(copy)
    raw = config.read_toml(rundir.config_path)
    raw["model"]["test_mode"] = "eval"
    rundir.config_path.write_text(config.to_toml(raw))
    path = run.export_run(rundir, tmp_path / "eval-mode.safetensors")
    assert read_card(path)["inference"]["mode"] == "eval"
    t = inference.load(path)
    assert {c.name: c.default for c in t.controls}["mode"] == "eval"
    image = Image.new("RGB", (32, 32), "white")
    assert np.array_equal(np.asarray(t.run(image)), np.asarray(t.run(image, mode="eval")))
    assert not np.array_equal(np.asarray(t.run(image)), np.asarray(t.run(image, mode="paper")))


def test_pickles_are_refused_with_a_pointer_to_import(tmp_path):
    path = tmp_path / "latest_net_G.pth"
    torch.save({"w": torch.zeros(1)}, path)
    for fn in (read_card, load_model, inference.load):
        with pytest.raises(ModelFileError, match="gan-trainer import"):
            fn(path)
    (tmp_path / "x.safetensors").write_bytes(b"\x80\x04junk")
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(tmp_path / "x.safetensors")
    (tmp_path / "text.safetensors").write_text("hello")
    with pytest.raises(ModelFileError, match="not a model file"):
        load_model(tmp_path / "text.safetensors")


class Hostile:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = ""


def test_hostile_pickle_is_refused_and_runs_nothing(tmp_path):
    global MARKER
    MARKER = str(tmp_path / "pwned")
    path = tmp_path / "latest_net_G.pth"
    with open(path, "wb") as f:
        pickle.dump({"model.model.0.weight": Hostile()}, f)
    with pytest.raises(CheckpointImportError, match="refused"):
        import_checkpoint(path, tmp_path / "out.safetensors")
    torch.save({"model.model.0.weight": Hostile()}, tmp_path / "zip.pth")
    with pytest.raises(CheckpointImportError, match="refused"):
        import_checkpoint(tmp_path / "zip.pth", tmp_path / "out.safetensors")
    assert not os.path.exists(MARKER)
    assert not (tmp_path / "out.safetensors").exists()


def _reference_unet(norm, num_downs=5, ngf=8, dropout=False):
    torch.manual_seed(0)
    net = UnetGenerator(3, 3, num_downs, ngf, norm, dropout)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net


def test_import_reference_unet_with_prefixes_and_old_instance_stats(tmp_path):
    net = _reference_unet("instance", num_downs=6)
    state = {f"module.{k}": v for k, v in net.state_dict().items()}
    # old PyTorch versions saved running statistics for instance norm layers
    state["module.model.model.1.model.3.running_mean"] = torch.zeros(8)
    state["module.model.model.1.model.3.running_var"] = torch.ones(8)
    torch.save(state, tmp_path / "latest_net_G.pth")
    (tmp_path / "train_opt.txt").write_text("----- Options -----\n      direction: BtoA   \t[default: AtoB]\n"
                                            "      no_dropout: True\n")
    out = import_checkpoint(tmp_path / "latest_net_G.pth", tmp_path / "m.safetensors")
    card = read_card(out)
    assert card["image_size"] == 64 and card["direction"] == "BtoA"
    assert card["nets"]["G"]["args"] == {"input_nc": 3, "output_nc": 3, "num_downs": 6, "ngf": 8,
                                         "norm": "instance", "use_dropout": False}
    t = inference.load(out)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(t.G(x), net(x), atol=1e-6)


def test_import_batch_norm_unet_keeps_running_stats(tmp_path):
    net = _reference_unet("batch", dropout=True)
    torch.save(net.state_dict(), tmp_path / "latest_net_G.pth")
    out = import_checkpoint(tmp_path / "latest_net_G.pth", tmp_path / "m.safetensors")
    tensors, card = load_model(out)
    assert card["nets"]["G"]["args"]["norm"] == "batch" and card["image_size"] == 32
    assert torch.equal(tensors["G.model.model.1.model.2.running_mean"],
                       net.state_dict()["model.model.1.model.2.running_mean"])


def test_import_errors_are_clear(tmp_path):
    torch.save({"some.other.weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointImportError, match="unrecognised"):
        import_checkpoint(tmp_path / "other.pth", tmp_path / "o.safetensors")
    (tmp_path / "garbage.pth").write_bytes(b"garbage")
    with pytest.raises(CheckpointImportError, match="not a readable"):
        import_checkpoint(tmp_path / "garbage.pth", tmp_path / "o.safetensors")
    bad = _reference_unet("batch").state_dict()
    bad.pop("model.model.1.model.2.running_var")
    torch.save(bad, tmp_path / "broken.pth")
    with pytest.raises(CheckpointImportError, match="matches"):
        import_checkpoint(tmp_path / "broken.pth", tmp_path / "o.safetensors")


def test_mismatched_model_file_lists_keys(tmp_path):
    net = UnetGenerator(3, 3, 5, 8)
    state = {f"G.{k}": v for k, v in net.state_dict().items() if "model.model.0" not in k}
    state["G.extra"] = torch.zeros(1)
    card = {"method": "pix2pix", "nets": {"G": {"name": "unet", "args": {"num_downs": 5, "ngf": 8}}},
            "image_size": 32}
    save_model(tmp_path / "m.safetensors", state, card)
    with pytest.raises(ModelFileError, match=r"missing keys: model\.model\.0\.weight.*unexpected keys: extra"):
        inference.load(tmp_path / "m.safetensors")


def test_truncated_model_file_is_a_clear_error(trained, tmp_path):
    rd, _ = trained
    data = (rd / "model.safetensors").read_bytes()
    for cut, words in ((60, "truncated or corrupt"), (len(data) - 100, f"truncated model file .*need {len(data):,} "
                                                                      f"bytes, the file has {len(data) - 100:,}")):
        (tmp_path / "cut.safetensors").write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match=words):
            inference.load(tmp_path / "cut.safetensors")
        with pytest.raises(ModelFileError, match=words):  # the card alone is refused too (inspect, the library)
            read_card(tmp_path / "cut.safetensors")
    (tmp_path / "folder.safetensors").mkdir()
    with pytest.raises(ModelFileError, match="a folder, not a model file"):
        read_card(tmp_path / "folder.safetensors")


def test_controls_refuse_nan_inf_out_of_range_and_unknown_with_the_allowed_values(tmp_path):
    """GitHub issue 28, item 6: no black image for psi=nan; the message gives the range."""
    import math

    from tests import tiny_models
    from trainer.inference import ControlError
    t = inference.load(tiny_models.stylegan(tmp_path / "s.safetensors"))
    n = t.G.n_latent
    for bad, words in (({"psi": math.nan}, r"psi = nan: not a finite number; allowed: a number from 0 to 1"),
                       ({"psi": -0.01}, r"out of range; allowed: a number from 0 to 1"),
                       ({"noise_strength": math.inf}, r"noise_strength = inf: not a finite number"),
                       ({"noise_strength": "loud"}, r"not a number; allowed: a number from 0 to 2"),
                       ({"seed": 2 ** 31}, r"seed = 2147483648: out of range; allowed: a whole number from 0 to "
                                           r"2147483647"),
                       ({"noise_seed": -5}, r"noise_seed = -5: out of range"),
                       ({"seed": True}, r"seed = True: not a number"),
                       ({"crossover": n + 1}, rf"crossover = {n + 1}: out of range; allowed: a whole number from 0 "
                                              rf"to {n}"),
                       ({"style_layers": f"0,{n}"}, rf"style_layers = '0,{n}': no such layer; allowed: comma-separated "
                                                    rf"layer numbers from 0 to {n - 1}"),
                       ({"truncation": 0.5}, r"unknown control truncation; this model has seed")):
        with pytest.raises(ControlError, match=words):
            t.run_array(**bad)
        assert issubclass(ControlError, ValueError)
    # the bounds themselves, integral floats (a slider's 3.0) and numeric strings are fine
    assert t.check_controls({"psi": 1, "noise_strength": 0.0, "seed": 2 ** 31 - 1, "crossover": 3.0})["crossover"] == 3
    assert t.check_controls({"psi": "0.5"})["psi"] == 0.5
    assert t.run_array(seed=2 ** 31 - 1, psi=0.0).shape == (32, 32, 3)
    with pytest.raises(ControlError, match="psi = nan"):
        t.interpolate(1, 2, frames=3, psi=math.nan)
    with pytest.raises(ControlError, match="frames = 1"):
        t.interpolate(1, 2, frames=1)
    assert len(t.interpolate(1, 2, frames=3)) == 3
    s = inference.load(tiny_models.stargan(tmp_path / "g.safetensors"))
    with pytest.raises(ControlError, match="Male = 'maybe': allowed: true or false"):
        s.run_array(Image.new("RGB", (8, 8)), Male="maybe")
    with pytest.raises(ValueError, match="mutually exclusive"):
        s.run_array(Image.new("RGB", (8, 8)), Black_Hair=True, Blond_Hair=1)


def _card_file(path, card_json: str):
    """A safetensors file with ``card_json`` as its model card, as a hostile or damaged file would be."""
    from safetensors.torch import save_file
    save_file({"G.w": torch.zeros(2)}, str(path), metadata={"gan_studio": card_json})
    return path


@pytest.mark.parametrize("card, words", [
    ("[1, 2, 3]", "the model card is a JSON list, not an object"),
    ('{"method": "pix2pix", "image_size": 100000, "nets": {}}',
     r"image_size is not usable: 100000 is outside 8\.\.4096"),
    ('{"method": "pix2pix", "image_size": "big"}', "image_size is str 'big', expected int"),
    ('{"method": "pix2pix", "image_size": true}', "image_size is bool"),
    ('{"method": "pix2pix", "nets": {"G": {"name": "unet", "args": {"ngf": 10000000}}}}', "ngf = 10000000"),
    ('{"method": "pix2pix", "nets": []}', "nets is list"),
    ('{"method": "pix2pix", "domains": "abc"}', "domains is str"),
    ('{"method": "pix2pix", "value_range": [0, NaN]}', "two finite numbers"),
    ("[" * 100000 + "]" * 100000, "not valid JSON"),
    ('{"notes": "' + "x" * 1_100_000 + '"}', "at most 1,000,000 are read"),
])
def test_a_model_card_is_validated_as_data_before_use(tmp_path, card, words):
    path = _card_file(tmp_path / "m.safetensors", card)
    for fn in (read_card, load_model, inference.load):
        with pytest.raises(ModelFileError, match=words):
            fn(path)


def test_inspect_and_translate_refuse_a_hostile_card_with_one_line(tmp_path, capsys):
    from trainer.cli import main
    for i, card in enumerate(("[1, 2]", '{"method": "pix2pix", "image_size": 100000}')):
        path = _card_file(tmp_path / f"m{i}.safetensors", card)
        Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
        assert main(["inspect", str(path)]) == 2
        assert main(["translate", str(path), str(tmp_path / "x.png"), "-o", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.count("error:") == 2 and "Traceback" not in err
        assert ("JSON list" if i == 0 else "image_size") in err


def test_the_bundled_cards_pass_the_checks():
    from pathlib import Path
    root = ROOT / "assets"
    files = sorted(root.glob("*/*.safetensors"))
    assert files
    for path in files:
        assert isinstance(read_card(path), dict)
    for path in [*root.glob("evaluators/*.safetensors"), *root.glob("segmenters/*.safetensors")]:
        card = read_card(path)  # a helper's card names its sections as a model's does
        assert {"training", "held_out"} <= set(card) and "trained" not in card, path
