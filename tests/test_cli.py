"""Every gan-trainer command, as a user types it."""
import json

import pytest
import torch
from PIL import Image

from conftest import run_cli, tiny_overrides
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
    assert Image.open(out_dir / "b.png").size == (17, 64)
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
