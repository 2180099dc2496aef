"""Every gan-trainer command, as a user types it."""
import argparse
import json

import pytest
import torch
from PIL import Image

from tests import tiny_models
from tests.conftest import run_cli, tiny_overrides
from trainer.cli import main
from trainer.modelfile import read_card
from trainer.nets.unet import UnetGenerator


def sets(overrides):
    return sum((["--set", o] for o in overrides), [])


def test_presets_lists_each_with_a_description(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "pix2pix-sketches" in out and "pix2pix-facades" in out and "256x256" in out


def test_data_synth(tmp_path, capsys):
    assert main(["data", "synth", "sketches", "--out", str(tmp_path / "d"), "--n", "10", "--size", "32"]) == 0
    assert len(list((tmp_path / "d").rglob("*.png"))) == 10
    assert main(["data", "synth", "sketches", "--out", str(tmp_path / "d"), "--n", "10"]) == 2
    assert "not empty" in capsys.readouterr().err


def test_train_resume_export_inspect_translate(sketches32, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "pix2pix-sketches", "--run-dir", str(run_dir), "--no-progress",
                 *sets(tiny_overrides(sketches32, steps=4))]) == 0
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    assert main(["resume", str(run_dir), "--set", "train.steps=6", "--no-progress"]) == 0
    assert json.loads((run_dir / "status.json").read_text())["step"] == 6

    model = tmp_path / "m.safetensors"
    assert main(["export", str(run_dir), "-o", str(model)]) == 0
    assert main(["export", str(run_dir), "-o", str(tmp_path / "q.safetensors"), "--int8"]) == 0
    assert read_card(tmp_path / "q.safetensors")["stored_dtype"] == "int8"
    with pytest.raises(SystemExit):  # one storage at a time
        main(["export", str(run_dir), "-o", str(tmp_path / "x.safetensors"), "--int8", "--fp16"])
    capsys.readouterr()
    assert main(["inspect", str(model)]) == 0
    out = capsys.readouterr().out
    assert "pix2pix" in out and "unet" in out and "steps_done" in out
    assert main(["inspect", str(model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["training"]["steps_done"] == 6

    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    Image.new("RGB", (40, 30), "white").save(inputs / "a.png")
    Image.new("L", (17, 64)).save(inputs / "sub" / "b.jpg")
    (inputs / "broken.png").write_bytes(b"not a png")
    out_dir = tmp_path / "out"
    code = main(["translate", str(model), str(inputs), "-o", str(out_dir), "--control", "mode=deterministic"])
    err = capsys.readouterr().err
    assert code == 1 and "broken.png" in err  # reported by name, the rest still translated
    assert Image.open(out_dir / "a.png").size == (40, 30)
    assert Image.open(out_dir / "sub" / "b.jpg.png").size == (17, 64)  # relative path kept, no clash on stems
    assert main(["translate", str(model), str(inputs / "a.png"), "-o", str(tmp_path / "o2")]) == 0


def test_inspect_and_translate_refuse_pickles(tmp_path, capsys):
    torch.save({"w": torch.zeros(1)}, tmp_path / "latest_net_G.pth")
    assert main(["inspect", str(tmp_path / "latest_net_G.pth")]) == 2
    assert "gan-trainer import" in capsys.readouterr().err
    assert main(["translate", str(tmp_path / "latest_net_G.pth"), str(tmp_path), "-o", str(tmp_path / "o")]) == 2
    assert "gan-trainer import" in capsys.readouterr().err


def test_import_command(tmp_path, capsys):
    torch.save(UnetGenerator(3, 3, 5, 8, "batch", True).state_dict(), tmp_path / "latest_net_G.pth")
    assert main(["import", str(tmp_path / "latest_net_G.pth"), "-o", str(tmp_path / "m.safetensors"),
                 "--direction", "BtoA"]) == 0
    assert main(["inspect", str(tmp_path / "m.safetensors")]) == 0
    assert "BtoA" in capsys.readouterr().out


def test_bad_configuration_is_one_clear_line(capsys):
    assert main(["train", "pix2pix-sketches", "--set", "train.stpes=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown key train.stpes") and "Traceback" not in err


def test_python_dash_m_entry_point():
    result = run_cli("presets")
    assert result.returncode == 0 and "pix2pix-sketches" in result.stdout


# -- GitHub issue 28: imports, control validation, help, pipes --------------------------------------


def _tiny(kind, tmp_path):
    from tests import tiny_models
    return getattr(tiny_models, kind)(tmp_path / f"{kind}.safetensors")


def test_every_command_and_option_has_help_and_every_kind_is_listed(capsys):
    from trainer.cli import build_parser, import_kinds
    from trainer.conversion import KINDS

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {a.dest for a in action._choices_actions if a.help}
                for name, sub in action.choices.items():
                    assert name in helped, f"gan-trainer {path} {name}: no help"
                    walk(sub, f"{path} {name}".strip())
            elif not isinstance(action, argparse._HelpAction):
                assert action.help, f"gan-trainer {path} {'/'.join(action.option_strings) or action.dest}: no help"

    walk(build_parser(), "")
    assert tuple(import_kinds()) == KINDS
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    out = capsys.readouterr().out
    assert all(f"{k}:" in out for k in KINDS) and "--exclusive" in out and "--image-size" in out


def test_wrong_kind_is_a_clear_error_listing_the_kinds(tmp_path, capsys):
    torch.save(UnetGenerator(3, 3, 5, 8, "batch", True).state_dict(), tmp_path / "latest_net_G.pth")
    with pytest.raises(SystemExit) as e:
        main(["import", str(tmp_path / "latest_net_G.pth"), "-o", str(tmp_path / "m.safetensors"), "--kind", "gan"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "'gan'" in err and "stylegan" in err and "Traceback" not in err
    for kind in ("stylegan", "stargan", "cyclegan"):  # a mismatched file: one line naming the missing key
        assert main(["import", str(tmp_path / "latest_net_G.pth"), "-o", str(tmp_path / "m.safetensors"),
                     "--kind", kind]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "no key" in err and "latest_net_G.pth" in err, err
    assert main(["import", str(tmp_path / "latest_net_G.pth"), "-o", str(tmp_path / "m.safetensors"),
                 "--image-size", "256"]) == 2
    assert "--image-size does not apply to a pix2pix checkpoint" in capsys.readouterr().err


def test_one_channel_model_translates_end_to_end(tmp_path, capsys):
    from tests.trainer.test_importers import _grey_unet
    torch.save(_grey_unet(), tmp_path / "latest_net_G.pth")
    model = tmp_path / "grey.safetensors"
    assert main(["import", str(tmp_path / "latest_net_G.pth"), "-o", str(model)]) == 0
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(inputs / "colour.png")
    Image.new("L", (17, 64), 99).save(inputs / "grey.png")
    out = tmp_path / "out"
    assert main(["translate", str(model), str(inputs), "-o", str(out), "--control", "mode=deterministic"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    for name, size in (("colour", (40, 30)), ("grey", (17, 64))):
        with Image.open(out / f"{name}.png") as im:
            assert im.mode == "L" and im.size == size
    assert main(["inspect", str(model)]) == 0
    assert "channels     1" in capsys.readouterr().out


def test_translate_takes_inputs_after_the_options_and_eval_refuses_no_items(tmp_path, capsys):
    """``translate M -o out/ a.png b.png`` (inputs after an option) translates both; an unknown
    option is still refused; ``eval --n 0`` is refused before any work."""
    model = tiny_models.pix2pix(tmp_path / "m.safetensors")
    for name in ("a", "b"):
        Image.new("RGB", (32, 32), name == "a" and "red" or "blue").save(tmp_path / f"{name}.png")
    out = tmp_path / "out"
    assert main(["translate", str(model), "-o", str(out), str(tmp_path / "a.png"), "--device", "cpu",
                 str(tmp_path / "b.png")]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    with pytest.raises(SystemExit) as e:
        main(["translate", str(model), "-o", str(out), str(tmp_path / "a.png"), "--bogus"])
    assert e.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err
    for n in ("0", "-5"):
        with pytest.raises(SystemExit):
            main(["eval", str(model), "--n", n, "-o", str(tmp_path / "r.json")])
        assert "--n" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_stargan_exclusive_import_and_translation(tmp_path, capsys):
    from tests.trainer.test_importers import RAFD, _rafd_state
    torch.save(_rafd_state(), tmp_path / "200000-G.ckpt")
    model = tmp_path / "rafd.safetensors"
    assert main(["import", str(tmp_path / "200000-G.ckpt"), "-o", str(model), "--domains", *RAFD, "--exclusive",
                 "--image-size", "256"]) == 0
    card = read_card(model)
    assert card["exclusive_groups"] == [RAFD] and card["image_size"] == 256
    capsys.readouterr()
    assert main(["inspect", str(model)]) == 0
    out = capsys.readouterr().out
    assert "happy" in out and "exclusive with angry" in out
    Image.new("RGB", (32, 32)).save(tmp_path / "face.png")
    assert main(["translate", str(model), str(tmp_path / "face.png"), "-o", str(tmp_path / "o"),
                 "--control", "happy=true", "--control", "sad=true"]) == 2
    err = capsys.readouterr().err
    assert "mutually exclusive" in err and "Traceback" not in err
    assert main(["translate", str(model), str(tmp_path / "face.png"), "-o", str(tmp_path / "o"),
                 "--control", "happy=true"]) == 0


@pytest.mark.parametrize("control, words", [
    ("psi=nan", "psi = nan: not a finite number; allowed: a number from 0 to 1"),
    ("psi=inf", "psi = inf: not a finite number"),
    ("psi=1.5", "psi = 1.5: out of range; allowed: a number from 0 to 1"),
    ("noise_strength=-inf", "noise_strength = -inf"),
    ("noise_strength=9", "allowed: a number from 0 to 2"),
    ("seed=-1", "seed = -1: out of range; allowed: a whole number from 0 to 2147483647"),
    ("seed=4294967296", "from 0 to 2147483647"),
    ("style_seed=1.5", "style_seed = 1.5: not a whole number"),
    ("crossover=99", "crossover = 99: out of range"),
    ("noise_mode=loud", "noise_mode = 'loud': choose one of"),
    ("colour=3", "unknown control colour; this model has seed, style_seed"),
    ("psi", "expected NAME=VALUE"),
])
def test_bad_controls_exit_2_with_the_allowed_range(tmp_path, capsys, control, words):
    model = _tiny("stylegan", tmp_path)
    out = tmp_path / "out"
    assert main(["translate", str(model), "-o", str(out), "--count", "2", "--control", control]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err, err
    assert not out.exists()  # refused before anything was written: no black images


def test_seeds_beyond_the_range_through_count(tmp_path, capsys):
    model = _tiny("stylegan", tmp_path)
    assert main(["translate", str(model), "-o", str(tmp_path / "o"), "--count", "3",
                 "--control", "seed=2147483646"]) == 2
    assert "seeds 2147483646..2147483648" in capsys.readouterr().err
    assert main(["translate", str(model), "-o", str(tmp_path / "o"), "--count", "2",
                 "--control", "seed=2147483646", "--control", "psi=1"]) == 0
    assert len(list((tmp_path / "o").glob("*.png"))) == 2


def test_inspect_lists_the_controls(tmp_path, capsys):
    model = _tiny("stylegan", tmp_path)
    assert main(["inspect", str(model)]) == 0
    out = capsys.readouterr().out
    assert "controls:" in out
    lines = {line.split()[0]: line for line in out.splitlines()[out.splitlines().index("controls:") + 1:]
             if line.startswith("  ") and not line.startswith("   ")}
    assert "float" in lines["psi"] and "from 0 to 1" in lines["psi"] and "default 0.7" in lines["psi"]
    assert "choice" in lines["noise_mode"] and "random, const, off" in lines["noise_mode"]
    assert "seed" in lines["seed"] and "from 0 to 2147483647" in lines["seed"]
    assert main(["inspect", str(_tiny("pix2pix", tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "mode" in out and "one of paper, deterministic, eval; default 'paper'" in out
    assert main(["inspect", str(model), "--json"]) == 0
    assert "controls" not in json.loads(capsys.readouterr().out)  # --json: the card alone


@pytest.mark.parametrize("args", [["presets"], ["--help"], ["import", "--help"]])
@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_no_traceback_when_the_reader_of_stdout_goes_away(args, unbuffered):
    """`gan-trainer presets | head -1`: the reader has closed the pipe before the writes."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT
    r, w = os.pipe()
    os.close(r)
    try:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        if unbuffered:
            env["PYTHONUNBUFFERED"] = "1"
        result = subprocess.run([sys.executable, "-m", "trainer", *args], stdout=w, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT, env=env, timeout=120)
    finally:
        os.close(w)
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr
    assert result.returncode in (0, 141)


def test_presets_into_head_in_a_shell():
    import subprocess
    import sys

    from tests.conftest import ROOT
    result = subprocess.run(f"'{sys.executable}' -m trainer presets | head -1", shell=True, capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert len(result.stdout.splitlines()) == 1 and "Traceback" not in result.stderr


def test_translate_warns_when_a_face_model_gets_something_else(tmp_path, capsys):
    """The CLI says what the studio says: a face model's input that is not a face is named."""
    import numpy as np
    model = tiny_models.stargan(tmp_path / "s.safetensors")
    x = np.linspace(0, 1, 120)
    photo = np.stack([np.outer(np.sin(6 * x + i), np.cos(4 * x + 2 * i)) for i in range(3)], 2) * 100 + 128
    Image.fromarray(photo.astype(np.uint8)).save(tmp_path / "landscape.png")
    assert main(["translate", str(model), str(tmp_path / "landscape.png"), "-o", str(tmp_path / "out")]) == 0
    assert "landscape.png: Not a face" in capsys.readouterr().err


def test_written_files_are_readable_by_others(tmp_path):
    """Atomic writes go through a private temporary file; the result has the usual permissions."""
    import os

    from trainer.rundir import atomic_write
    mask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "f.json", "{}")
    finally:
        os.umask(mask)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o644


def test_inspect_names_the_method_as_a_user_knows_it(capsys, tmp_path):
    """An older BicycleGAN card says pix2pix; its generator takes a latent code: inspect says
    BicycleGAN, with the card's own word beside it."""
    from tests.conftest import ROOT
    from tests.trainer.test_tensor_api import bicycle
    assert main(["inspect", str(bicycle(tmp_path / "old.safetensors")), "--no-controls"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["method", "bicyclegan", "(the", "card", "says",
                                                               "pix2pix)"]
    assert main(["inspect", str(ROOT / "assets" / "models" / "faces-style.safetensors"), "--no-controls"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["method", "stylegan"]


def test_inspect_shows_a_segmenters_card(capsys):
    from tests.conftest import ROOT
    assert main(["inspect", str(ROOT / "assets" / "segmenters" / "sketches.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "segmenter of sketches" in out and "input_size   128" in out and "width        8" in out
    assert "held_out:" in out and "exact_3_objects" in out and "training:" in out


def test_no_command_writes_over_the_users_files(tmp_path, capsys):
    """translate into the inputs' own folder, export -o an image, eval -o an image, --onnx an image:
    each refused with the reason, exit 2, the file as it was."""
    model = tiny_models.pix2pix(tmp_path / "m.safetensors")
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (32, 32), "white").save(folder / "mine.png")
    Image.new("RGB", (32, 32), "white").save(folder / "sub" / "deep.png")
    Image.new("RGB", (32, 32), "white").save(folder / "other.jpg")
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    for args in ([str(folder), "-o", str(folder)], [str(folder / "mine.png"), "-o", str(folder)],
                 [str(folder / "sub"), "-o", str(folder / "sub")]):
        assert main(["translate", str(model), *args]) == 2
        err = capsys.readouterr().err
        assert "input images written over" in err and "choose another output folder" in err, args
    # a .jpg's translation is other.jpg.png: into the same folder it replaces nothing, and goes ahead
    assert main(["translate", str(model), str(folder / "other.jpg"), "-o", str(folder)]) == 0
    assert (folder / "other.jpg.png").is_file()
    assert all(p.read_bytes() == b for p, b in before.items())
    # again: it replaces its own translation of before, but never a file it did not write
    assert main(["translate", str(model), str(folder / "other.jpg"), "-o", str(folder), "--control", "seed=4"]) == 0
    Image.new("RGB", (32, 32), "white").save(folder / "other.jpg.png")  # now the user's own file
    users = (folder / "other.jpg.png").read_bytes()
    capsys.readouterr()
    assert main(["translate", str(model), str(folder / "other.jpg"), "-o", str(folder)]) == 2
    assert "not written by a translation" in capsys.readouterr().err
    assert (folder / "other.jpg.png").read_bytes() == users
    # into a subfolder, twice: the second run does not take the first one's translations as inputs
    for _ in range(2):
        assert main(["translate", str(model), str(folder), "-o", str(folder / "out")]) == 0
    assert sorted(p.relative_to(folder / "out").as_posix() for p in (folder / "out").rglob("*.png")) == [
        "mine.png", "other.jpg-2.png", "other.jpg.png", "sub/deep.png"]  # (the user's other.jpg.png is an input)
    assert main(["translate", str(model), str(folder / "other.jpg"), "-o", str(folder / "mine.png")]) == 2
    assert "a file, not a folder" in capsys.readouterr().err
    assert all(p.read_bytes() == b for p, b in before.items())
    capsys.readouterr()
    keep = tmp_path / "keep.png"
    Image.new("RGB", (8, 8), "red").save(keep)
    kept = keep.read_bytes()
    for cmd, reason in ((["export", str(model), "-o", str(keep)], "needs the .safetensors suffix, e.g. keep.safetensors"),
                        (["export", str(model), "--onnx", str(keep)], "needs the .onnx suffix"),
                        (["export", str(model), "--onnx", str(tmp_path / "g")], "needs the .onnx suffix, e.g. g.onnx"),
                        (["eval", str(model), "--n", "2", "-o", str(keep)], "needs the .json suffix"),
                        (["eval", str(model), "--n", "2", "--picture", str(tmp_path / "p.json")], "needs the .png suffix"),
                        (["export", str(model), "--format", "junyanz", "-o", str(keep)], "needs the .pth or .pt or .ckpt"),
                        (["export", str(model), "-o", str(folder.with_suffix(".safetensors"))], "a folder; a model file"),
                        (["eval", str(model), "--n", "2", "-o", str(folder.with_suffix(".json"))], "a folder; the report")):
        folder.with_suffix(".safetensors").mkdir(exist_ok=True)
        folder.with_suffix(".json").mkdir(exist_ok=True)
        assert main(cmd) == 2, cmd
        assert reason in capsys.readouterr().err
        assert keep.read_bytes() == kept
    assert not (tmp_path / "p.json").exists()


def test_eval_reports_only_a_picture_it_wrote(tmp_path, capsys, monkeypatch):
    """A picture from an earlier run is kept, and not reported as this one's (a method without one)."""
    import trainer.scoring as scoring
    model = tiny_models.pix2pix(tmp_path / "m.safetensors")
    old = tmp_path / "r.png"
    Image.new("RGB", (8, 8), "red").save(old)
    monkeypatch.setattr(scoring, "evaluate", lambda *a, **k: {"n": 1, "task": "sketch"})
    monkeypatch.setattr(scoring, "format_report", lambda r: "report")
    assert main(["eval", str(model), "-o", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "r.png" not in out and old.is_file()


def test_an_image_of_many_native_tiles_is_announced_with_the_faster_way(tmp_path, capsys):
    from trainer.cli import _note_a_long_native_run
    Image.new("RGB", (200, 100), "red").save(tmp_path / "big.png")
    _note_a_long_native_run(tmp_path / "big.png", max_pixels=1000)
    assert "big.png is 200x100: at its own size it runs in about 20 tiles" in capsys.readouterr().err
    _note_a_long_native_run(tmp_path / "big.png", max_pixels=2000)  # 10 tiles: quiet
    (tmp_path / "bad.png").write_bytes(b"not an image")
    _note_a_long_native_run(tmp_path / "bad.png", max_pixels=1)  # the translation reports it
    assert capsys.readouterr().err == ""
