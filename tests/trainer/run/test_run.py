"""The run loop: learning, run directory, resume equivalence, SIGTERM, NaN stop, failures, DDP."""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from tests.conftest import ROOT, tiny_overrides
from trainer import config, registry, run
from trainer.methods.base import linear_decay
from trainer.rundir import RunDir


def tiny(root, steps=12, **extra):
    return registry.load_config("pix2pix-sketches", tiny_overrides(root, steps, **extra))


def test_short_run_learns_and_writes_the_run_directory(sketches32, tmp_path):
    cfg = tiny(sketches32, steps=40, **{"train.lr": 1e-3, "train.batch_size": 4, "train.sample_every": 20,
                                         "train.checkpoint_every": 10, "train.keep_checkpoints": 2})
    out = run.train(cfg, tmp_path / "r", progress=False)
    assert out.state == "finished" and out.step == 40
    rd = RunDir(tmp_path / "r")
    metrics = rd.read_metrics()
    assert [m["step"] for m in metrics] == list(range(1, 41))
    first = sum(m["G_L1"] for m in metrics[:8]) / 8
    last = sum(m["G_L1"] for m in metrics[-8:]) / 8
    assert last < first * 0.85, (first, last)
    assert {"D_real", "D_fake", "G_GAN", "G_L1", "it_s", "time", "lr_G"} <= set(metrics[0])
    status = rd.read_status()
    assert status["state"] == "finished" and status["step"] == 40 and status["total_steps"] == 40
    assert [s for s, _ in rd.checkpoints()] == [30, 40]  # keep_checkpoints = 2
    assert [s for s, _ in rd.samples()] == [20, 40]
    grid = Image.open(rd.sample_path(40))
    assert grid.size == (3 * 32 + 4, 4 * 32 + 6)  # input | output | target, 4 rows
    assert rd.model_path.is_file()
    assert config.read_toml(rd.config_path)["train"]["steps"] == 40


def _weights(path):
    from safetensors.torch import load_file
    return load_file(str(path))


def test_sigterm_checkpoints_and_resume_matches_an_uninterrupted_run(sketches32, tmp_path):
    overrides = tiny_overrides(sketches32, steps=30, **{"train.checkpoint_every": 1000, "train.sample_every": 0})
    straight = run.train(registry.load_config("pix2pix-sketches", overrides), tmp_path / "straight", progress=False)
    assert straight.state == "finished"

    stopped = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "trainer", "train", "pix2pix-sketches", "--run-dir", str(stopped),
                             "--no-progress", *sum((["--set", o] for o in overrides), [])],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rd = RunDir(stopped)
    deadline = time.time() + 600
    while time.time() < deadline and not any(m["step"] >= 5 for m in rd.read_metrics()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output
    status = rd.read_status()
    assert status["state"] == "stopped", status
    stop_step = status["step"]
    assert 5 <= stop_step < 30, output
    assert rd.latest_checkpoint()[0] == stop_step
    assert "resume" in status["message"]

    resumed = run.resume(stopped, progress=False)
    assert resumed.state == "finished" and resumed.step == 30
    a = _weights(tmp_path / "straight" / "checkpoints" / "step-000030" / "nets.safetensors")
    b = _weights(stopped / "checkpoints" / "step-000030" / "nets.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    steps = [m["step"] for m in rd.read_metrics()]
    assert steps == sorted(set(steps)) and steps[-1] == 30  # no duplicated points after resume


def test_sigterm_to_the_whole_process_group_with_loader_workers_still_checkpoints(sketches32, tmp_path):
    """Ctrl-C in a terminal or `kill -- -PGID` reaches the DataLoader workers too; the run must still stop cleanly."""
    overrides = tiny_overrides(sketches32, steps=100000, **{"train.checkpoint_every": 100000,
                                                            "train.sample_every": 0, "data.num_workers": 2})
    stopped = tmp_path / "group"
    proc = subprocess.Popen([sys.executable, "-m", "trainer", "train", "pix2pix-sketches", "--run-dir", str(stopped),
                             "--no-progress", *sum((["--set", o] for o in overrides), [])],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    rd = RunDir(stopped)
    deadline = time.time() + 600
    while time.time() < deadline and not any(m["step"] >= 5 for m in rd.read_metrics()):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output
    assert "DataLoader worker" not in output
    status = rd.read_status()
    assert status["state"] == "stopped", status
    assert rd.latest_checkpoint()[0] == status["step"] >= 5


def test_nan_loss_stops_at_once_with_a_message(sketches32, tmp_path):
    cfg = tiny(sketches32, steps=20, **{"train.checkpoint_every": 1})
    cfg.model.lambda_l1 = float("inf")  # the configuration refuses it: set past its checks, as a diverging run
    with pytest.raises(run.NonFiniteLoss, match=r"non-finite at step \d+: (G|D)"):
        run.train(cfg, tmp_path / "r", progress=False)
    rd = RunDir(tmp_path / "r")
    status = rd.read_status()
    assert status["state"] == "failed" and "non-finite" in status["message"]
    bad_step = int(status["message"].split("step ")[1].split(":")[0])
    assert bad_step <= 3
    assert all(s < bad_step for s, _ in rd.checkpoints())  # nothing saved from the broken weights
    for _, path in rd.checkpoints():
        assert all(torch.isfinite(v).all() for v in _weights(path / "nets.safetensors").values()
                   if v.is_floating_point())


def test_exception_marks_the_run_failed(tmp_path):
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "train" / "bad.png").write_bytes(b"nope")
    cfg = tiny(tmp_path / "data")
    with pytest.raises(Exception, match="no usable image"):
        run.train(cfg, tmp_path / "r", progress=False)
    status = RunDir(tmp_path / "r").read_status()
    assert status["state"] == "failed" and "no usable image" in status["message"]


def test_broken_images_are_skipped_and_training_goes_on(sketches32, tmp_path):
    import shutil
    data = tmp_path / "data"
    shutil.copytree(sketches32, data)
    (data / "train" / "zz_empty.png").write_bytes(b"")
    (data / "train" / "zz_text.jpg").write_text("hello")
    lines = []
    out = run.train(tiny(data, steps=3), tmp_path / "r", progress=False, log=lines.append)
    assert out.state == "finished"
    assert any("zz_empty.png" in line for line in lines) and any("zz_text.jpg" in line for line in lines)
    assert any("2 skipped" in line for line in lines)


def test_config_errors_are_specific():
    with pytest.raises(config.ConfigError, match="unknown key train.stpes"):
        registry.load_config("pix2pix-sketches", ["train.stpes=3"])
    with pytest.raises(config.ConfigError, match="power-of-two"):
        registry.load_config("pix2pix-sketches", ["data.image_size=100"])
    with pytest.raises(config.ConfigError, match="data.root is empty"):
        registry.load_config("pix2pix-facades")
    with pytest.raises(config.ConfigError, match="expected int"):
        registry.load_config("pix2pix-sketches", ["train.steps=many"])
    with pytest.raises(config.ConfigError, match="train.winograd = 'true': choose one of auto, on, off"):
        registry.load_config("pix2pix-sketches", ["train.winograd=true"])
    with pytest.raises(config.ConfigError, match="model.norm = 'true'; choose batch, instance or none"):
        registry.load_config("pix2pix-sketches", ["model.norm=true"])
    with pytest.raises(config.ConfigError, match="model.norm = 'false'; choose batch, instance or none"):
        registry.load_config("cyclegan-shapes", ["model.norm=false"])  # before a run folder is made
    with pytest.raises(config.ConfigError, match="no preset"):
        registry.load_config("pix2pix-nothing")


def test_warm_restarts_follow_the_lr_of_a_run_resumed_with_more_steps(sketches32, tmp_path):
    # the bundled sketch2photo was trained by resuming with a larger train.steps (each time the lr
    # went back up and decayed to 0 again); its preset's train.restarts must give the same lrs
    at = {}
    for name, steps, extra in (("restarts", 14, {"train.restarts": [6, 10]}), ("resumed", 6, {})):
        cfg = tiny(sketches32, steps=steps, **{"train.decay_steps": 4, "train.checkpoint_every": 2, **extra})
        assert run.train(cfg, tmp_path / name, progress=False).state == "finished"
        at[name] = tmp_path / name
    for total in (10, 14):
        assert run.resume(at["resumed"], [f"train.steps={total}"], progress=False).step == total
    lr = {k: [m["lr_G"] for m in RunDir(v).read_metrics()] for k, v in at.items()}
    assert len(lr["restarts"]) == len(lr["resumed"]) == 14
    assert lr["restarts"] == pytest.approx(lr["resumed"], abs=1e-12)
    base = 2e-4
    # decay_steps 4: 1, 1, .8, .6, .4, .2 | restart at 6: .8, .6, .4, .2 | restart at 10: .8, .6, .4, .2
    factors = [1, 1, .8, .6, .4, .2] + [.8, .6, .4, .2] * 2
    assert lr["restarts"] == pytest.approx([base * f for f in factors])
    shortened = registry.load_config("bicyclegan-sketches", ["train.steps=50"])  # restarts beyond the end are ignored
    factor = linear_decay(50, 8000, shortened.train.restarts)
    assert shortened.train.restarts and factor(0) > 0.95 and 0 < factor(49) < 0.05  # one decay over 50
    with pytest.raises(config.ConfigError, match="train.restarts"):
        registry.load_config("pix2pix-sketches", ["train.restarts=[10, 5]"])


def test_resume_with_new_rates_uses_them_from_its_first_step(sketches32, tmp_path):
    cfg = tiny(sketches32, steps=4, **{"train.checkpoint_every": 2})
    assert run.train(cfg, tmp_path / "r", progress=False).state == "finished"
    run.resume(tmp_path / "r", ["train.steps=8", "train.lr=1e-4", "train.lr_D=2e-5"], progress=False)
    metrics = RunDir(tmp_path / "r").read_metrics()
    assert [(m["lr_G"], m["lr_D"]) for m in metrics[:4]] == [(2e-4, 2e-4)] * 4
    assert [(m["lr_G"], m["lr_D"]) for m in metrics[4:]] == [(1e-4, 2e-5)] * 4  # TTUR: D's own rate


def test_ablation_settings_build(sketches32, tmp_path):
    """The paper's ablations (L1 only: no discriminator; cGAN only; unconditional D; PixelGAN; ImageGAN),
    the GAN modes, and pix2pixHD's two-scale D with feature matching."""
    for i, extra in enumerate(({"model.lambda_gan": 0.0}, {"model.lambda_l1": 0.0},
                               {"model.conditional_D": False}, {"model.netD": "pixel"}, {"model.netD": "image"},
                               {"model.gan_mode": "lsgan"}, {"model.gan_mode": "wgangp"},
                               {"model.gan_mode": "hinge"},
                               {"model.netD": "n_layers", "model.n_layers_D": 2, "model.num_D": 2, "model.lambda_feat": 10.0})):
        out = run.train(tiny(sketches32, steps=2, **extra), tmp_path / f"r{i}", progress=False)
        assert out.state == "finished"
        keys = set(RunDir(tmp_path / f"r{i}").read_metrics()[-1])
        assert ("D_real" in keys) == (extra != {"model.lambda_gan": 0.0})
        if extra == {"model.gan_mode": "wgangp"}:
            assert "D_gp" in keys
        assert ("G_feat" in keys) == ("model.lambda_feat" in extra)


def test_pix2pixhd_discriminator_settings_are_checked():
    with pytest.raises(config.ConfigError, match="num_D"):
        registry.load_config("sketch2photo", ["model.num_D=0"])
    with pytest.raises(config.ConfigError, match="PatchGAN"):
        registry.load_config("sketch2photo", ["model.netD=pixel", "model.lambda_feat=10"])
    with pytest.raises(config.ConfigError, match="coarsest discriminator would see 16 px"):
        registry.load_config("sketch2photo", ["model.num_D=4"])
    with pytest.raises(config.ConfigError, match="gradient penalty"):
        registry.load_config("sketch2photo", ["model.num_D=2", "model.gan_mode=wgangp"])
    cfg = registry.load_config("sketch2photo", ["model.num_D=2", "model.lambda_feat=10"])
    assert cfg.model.num_D == 2


def test_bicyclegan_learns_a_latent_code_and_exports_a_seeded_generator(sketches32, tmp_path):
    """``model.nz``: E is trained and checkpointed with G, the losses of both halves are logged, the
    model file holds G alone, and its translator draws z from the seed in every test mode."""
    import numpy as np
    from trainer import inference
    from trainer.modelfile import load_model
    with pytest.raises(config.ConfigError, match="model.nz"):
        registry.load_config("sketch2photo", ["model.nz=-1"])
    with pytest.raises(config.ConfigError, match="feature matching"):
        registry.load_config("sketch2photo", ["model.nz=8", "model.lambda_feat=10"])
    out = run.train(tiny(sketches32, steps=4, **{"model.nz": 4, "model.nef": 8, "train.checkpoint_every": 4}),
                    tmp_path / "r", progress=False)
    last = RunDir(tmp_path / "r").read_metrics()[-1]
    assert {"G_L1", "G_GAN", "G_kl", "G_z", "D_real", "D_fake"} <= set(last)
    assert np.isfinite([last["G_kl"], last["G_z"]]).all() and last["G_kl"] >= 0
    step = RunDir(tmp_path / "r").latest_checkpoint()[1]
    assert any(k.startswith("E.") for k in load_file(str(step / "nets.safetensors")))
    tensors, card = load_model(tmp_path / "r" / "model.safetensors")
    assert card["nets"]["G"]["args"]["nz"] == 4 and not any(k.startswith("E.") for k in tensors)
    t = inference.load(tmp_path / "r" / "model.safetensors")
    seed = next(c for c in t.controls if c.name == "seed")
    assert seed.active({"mode": "eval"})
    sketch = Image.new("RGB", (40, 30), "white")
    a, b = t.run_array(sketch, mode="eval", seed=1), t.run_array(sketch, mode="eval", seed=2)
    assert a.shape == (30, 40, 3) and np.array_equal(a, t.run_array(sketch, mode="eval", seed=1))
    assert not np.array_equal(a, b)  # another seed, another latent code


def test_a_bicyclegan_run_resumes_with_a_grid_encoder(sketches32, tmp_path):
    """``model.encoder_grid`` set on resume: E's head (and its Adam moments) widen to the grid,
    the run goes on from its step, and the next checkpoint holds the wider head."""
    with pytest.raises(config.ConfigError, match="encoder_grid"):
        registry.load_config("sketch2photo", ["model.nz=4", "model.encoder_grid=0"])
    overrides = {"model.nz": 4, "model.nef": 8, "train.checkpoint_every": 2}
    run.train(tiny(sketches32, steps=2, **overrides), tmp_path / "r", progress=False)
    before = load_file(str(RunDir(tmp_path / "r").latest_checkpoint()[1] / "nets.safetensors"))
    out = run.resume(tmp_path / "r", ["train.steps=4", "model.encoder_grid=2"], log=lambda *a: None, progress=False)
    assert out.state == "finished"
    step, path = RunDir(tmp_path / "r").latest_checkpoint()
    after = load_file(str(path / "nets.safetensors"))
    assert step == 4 and after["E.mu.weight"].shape[1] == 4 * before["E.mu.weight"].shape[1]
    moments = torch.load(path / "state.pt", weights_only=True)["optimizers"]["G"]["state"]
    assert any(s["exp_avg"].shape == after["E.mu.weight"].shape for s in moments.values())
    assert all(torch.isfinite(v).all() for v in after.values())
    from trainer.modelfile import ModelFileError
    settings = (tmp_path / "r" / "config.toml").read_text()
    with pytest.raises(ModelFileError, match="wrong shapes"):  # 2x2 -> 4x4 is no widening of a global head
        run.resume(tmp_path / "r", ["train.steps=6", "model.encoder_grid=4"], log=lambda *a: None, progress=False)
    assert RunDir(tmp_path / "r").latest_checkpoint()[0] == 4  # nothing lost: checkpoint and settings kept
    assert (tmp_path / "r" / "config.toml").read_text() == settings


def _ddp_worker(rank, world, port, cfg_overrides, run_dir, out_dir, preset="pix2pix-sketches"):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    cfg = registry.load_config(preset, cfg_overrides)
    out = run.train(cfg, run_dir, progress=False, log=lambda *a: None)
    torch.save({k: v.detach().clone() for n, net in out.method.nets.items()
                for k, v in ((f"{n}.{k}", v) for k, v in net.state_dict().items())}, f"{out_dir}/rank{rank}.pt")


def test_ddp_two_cpu_processes_end_with_identical_weights(sketches32, tmp_path):
    import socket
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    overrides = tiny_overrides(sketches32, steps=4, **{"train.sample_every": 2, "train.checkpoint_every": 2})
    mp.spawn(_ddp_worker, args=(2, port, overrides, str(tmp_path / "r"), str(tmp_path)), nprocs=2, join=True)
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rd = RunDir(tmp_path / "r")
    assert rd.read_status()["state"] == "finished"
    assert [m["step"] for m in rd.read_metrics()] == [1, 2, 3, 4]  # rank 0 alone writes
    assert a["G.model.model.0.weight"].abs().sum() > 0


def test_ddp_stylegan_with_output_skips_from_16_and_the_mixing_loss(tmp_path):
    """The left-out ToRGBs get no gradient: DDP must not wait for one (they are frozen); the
    mixing-consistency step's gradients are averaged like the others (the ranks stay equal)."""
    import socket
    import torch.multiprocessing as mp
    from tests.trainer.methods.test_stylegan_training import SMALL
    from trainer.data.synth import synthesize
    faces = synthesize("faces", tmp_path / "faces", n=16, size=32, workers=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    overrides = [f"data.root='{faces}'", "train.steps=3", *SMALL, "model.output_skips_from=16",
                 "model.lambda_mix_colour=2", "model.lambda_mix_layout=1", "model.mix_from=1", "model.mix_every=1"]
    mp.spawn(_ddp_worker, args=(2, port, overrides, str(tmp_path / "r"), str(tmp_path), "stylegan-faces"), nprocs=2,
             join=True)
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    rd = RunDir(tmp_path / "r")
    assert rd.read_status()["state"] == "finished"
    assert [("G_mix_colour" in m, "G_mix_layout" in m) for m in rd.read_metrics()] == [(False, False)] + [(True, True)] * 2
    assert not a["G.to_rgb1.bias"].any() and a["G.to_rgbs.1.conv.weight"].any()


def test_region_codes_train_export_and_fine_tune_from_a_model_file(sketches32, tmp_path):
    """``model.region_codes``: G reads a code map per sketch object (its loss logged), the export
    holds the training objects' colours and the segmenter, and its translator colours each object
    from the seed; ``train.init_from`` starts a run from a model file's G (a narrower G widens as
    the same function) and refuses another method's file."""
    import numpy as np
    from trainer import inference, object_segmenter
    from trainer.errors import ConfigError, ModelFileError
    from trainer.modelfile import load_model
    seg = object_segmenter.train(tmp_path / "seg.safetensors", n_train=16, n_held_out=8, steps=2, workers=1,
                                 log=lambda *a: None)
    assert seg["kind"] == "segmenter" and 0 <= seg["held_out"]["exact"] <= 1
    base = {"model.nz": 4, "model.nef": 8, "train.checkpoint_every": 4, "model.latent_prior": "posterior",
            "model.latent_fit_images": 16}
    run.train(tiny(sketches32, steps=2, **base), tmp_path / "plain", progress=False)
    plain_G = {k: v for k, v in load_model(tmp_path / "plain" / "model.safetensors")[0].items() if k.startswith("G.")}
    cfg = tiny(sketches32, steps=4, **base, **{"model.region_codes": True,
                                                "model.region_segmenter": str(tmp_path / "seg.safetensors"),
                                                "train.init_from": str(tmp_path / "plain" / "model.safetensors")})
    rd = RunDir(tmp_path / "r")
    out = run.train(cfg, rd.path, progress=False, log=lambda *a: None)
    assert out.state == "finished"
    assert np.isfinite([m["G_region"] for m in rd.read_metrics()]).all()
    tensors, card = load_model(rd.path / "model.safetensors")
    assert card["nets"]["G"]["args"]["region_nc"] == 4 and card["nets"]["S"]["args"]["output_nc"] == 2
    assert tensors["region_colours"].shape[1] == 3 and tensors["region_colours"].abs().max() <= 1
    t = inference.load(rd.path / "model.safetensors")
    assert t.segmenter is not None and t.region_colours is not None
    sketch = Image.new("RGB", (32, 32), "white")
    from PIL import ImageDraw
    ImageDraw.Draw(sketch).ellipse((6, 6, 26, 26), outline=(0, 0, 0), width=2)
    a = t.run_array(sketch, mode="eval", seed=1)
    assert a.shape == (32, 32, 3) and np.array_equal(a, t.run_array(sketch, mode="eval", seed=1))
    # init_from: step 0's G is the file's, its code-map columns zero
    from trainer.run.checkpoints import load_model_nets
    fresh = tiny(sketches32, steps=2, **base, **{"model.region_codes": True, "model.region_segmenter": "enclosure"})
    method = registry.get_method(fresh.method)(fresh, torch.device("cpu"))
    assert load_model_nets(tmp_path / "plain" / "model.safetensors", method) == ["G"]
    first = method.G.model.model[0].weight
    assert torch.equal(first[:, :7], plain_G["G.model.model.0.weight"]) and (first[:, 7:] == 0).all()
    with pytest.raises(ModelFileError, match="init_from"):
        load_model_nets(tmp_path / "seg.safetensors", method)
    # learned features per object (pix2pixHD's F), started from the run's checkpoint: D and E come too
    feats = tiny(sketches32, steps=2, **base, **{"model.region_codes": True, "model.region_features": 2,
                                                  "model.region_segmenter": str(tmp_path / "seg.safetensors"),
                                                  "train.init_from": str(rd.path / "checkpoints" / "step-000004")})
    method = registry.get_method(feats.method)(feats, torch.device("cpu"))
    assert sorted(load_model_nets(feats.train.init_from, method)) == ["D", "E", "G"]
    assert method.G.model.model[0].weight.shape[1] == 3 + 4 + 6 and (method.G.model.model[0].weight[:, 11:] == 0).all()
    out = run.train(feats, tmp_path / "f", progress=False, log=lambda *a: None)
    assert out.state == "finished"
    tensors, card = load_model(tmp_path / "f" / "model.safetensors")
    assert card["nets"]["G"]["args"]["region_nc"] == 6 and "F" not in card["nets"]
    assert tensors["region_colours"].shape[1] == 5 and tensors["region_colours"].abs().max() <= 1
    t = inference.load(tmp_path / "f" / "model.safetensors")
    assert t.code_map(torch.zeros(1, 3, 32, 32), 1).shape == (1, 6, 32, 32)
    assert t.run_array(sketch, mode="eval", seed=1).shape == (32, 32, 3)
    with pytest.raises(ModelFileError, match="not a checkpoint folder"):
        load_model_nets(tmp_path, method)
    # two colours per object (region_palette 2): 3 code channels more, the bank's rows 6 wide
    pal = tiny(sketches32, steps=2, **base, **{"model.region_codes": True, "model.region_palette": 2,
                                                "model.region_segmenter": str(tmp_path / "seg.safetensors"),
                                                "train.init_from": str(rd.path / "checkpoints" / "step-000004")})
    assert run.train(pal, tmp_path / "p", progress=False, log=lambda *a: None).state == "finished"
    tensors, card = load_model(tmp_path / "p" / "model.safetensors")
    assert card["nets"]["G"]["args"]["region_nc"] == 7 and tensors["region_colours"].shape[1] == 6
    with pytest.raises(ConfigError, match="region_palette"):
        tiny(sketches32, steps=2, **base, **{"model.region_codes": True, "model.region_palette": 3})
    with pytest.raises(ConfigError, match="region_features"):
        tiny(sketches32, steps=2, **base, **{"model.region_features": 2})


def test_object_colours_export_the_training_objects_colours_and_colour_each_object_after_G(sketches32, tmp_path,
                                                                                         monkeypatch):
    """``model.object_colours``: G is trained as it is; the export carries the training objects'
    colours (M, 3) and the card's ``object_colours``; its translator moves each object of G's output
    to a colour drawn from the seed (control ``object_colours``, on by default), leaves the
    background as G made it, and with the control off is G itself. Refused with region codes."""
    import numpy as np
    from PIL import ImageDraw
    from trainer import inference
    from trainer.errors import ConfigError
    from trainer.modelfile import load_model
    cfg = tiny(sketches32, steps=2, **{"model.nz": 4, "model.nef": 8, "model.object_colours": True,
                                        "model.region_segmenter": "enclosure", "model.latent_fit_images": 16})
    assert run.train(cfg, tmp_path / "r", progress=False, log=lambda *a: None).state == "finished"
    tensors, card = load_model(tmp_path / "r" / "model.safetensors")
    assert card["object_colours"] == "transfer" and "region_nc" not in card["nets"]["G"]["args"]
    assert tensors["region_colours"].shape[1] == 3 and tensors["region_colours"].abs().max() <= 1
    t = inference.load(tmp_path / "r" / "model.safetensors")
    assert [c.default for c in t.controls if c.name == "object_colours"] == [True]
    sketch = Image.new("RGB", (32, 32), "white")
    ImageDraw.Draw(sketch).rectangle((4, 4, 14, 14), outline=(0, 0, 0), width=2)
    ImageDraw.Draw(sketch).ellipse((17, 17, 29, 29), outline=(0, 0, 0), width=2)
    plain = t.run_array(sketch, mode="eval", seed=3, object_colours=False)
    outs = [t.run_array(sketch, mode="eval", seed=s) for s in range(4)]
    assert all(o.shape == (32, 32, 3) for o in outs) and np.array_equal(outs[3], t.run_array(sketch, mode="eval", seed=3))
    assert not np.array_equal(outs[3], plain)
    assert np.array_equal(outs[3][0], plain[0])  # the top row: background, as G made it
    assert len({o[9, 9].tobytes() for o in outs}) > 1  # the square's colour follows the seed
    # the objects found beside G on a free core (many cores) or after it (one): the same picture
    import trainer.methods.bicyclegan as bicyclegan
    for cores in (1, 64):
        monkeypatch.setattr(bicyclegan.os, "cpu_count", lambda: cores)
        assert np.array_equal(t.run_array(sketch, mode="eval", seed=3), outs[3]), cores
    # the helper thread's error reaches the caller, and the next render is fine
    monkeypatch.setattr(type(t), "object_colouring", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        t.run_array(sketch, mode="eval", seed=3)
    monkeypatch.undo()
    assert np.array_equal(t.run_array(sketch, mode="eval", seed=3), outs[3])
    # G interrupted (a newer stroke in the studio): the helper's segmentation is told to stop
    stops, colouring, started = [], type(t).object_colouring, threading.Event()
    monkeypatch.setattr(bicyclegan.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(type(t), "object_colouring", lambda self, x, seed=0, stop=None: (
        stops.append(stop), started.set(), colouring(self, x, seed, stop))[2])
    monkeypatch.setattr(t.G, "forward", lambda *a: (started.wait(10), (_ for _ in ()).throw(KeyboardInterrupt())))
    with pytest.raises(KeyboardInterrupt):
        t.run_array(sketch, mode="eval", seed=3)
    assert len(stops) == 1 and stops[0].is_set()
    monkeypatch.undo()
    assert np.array_equal(t.run_array(sketch, mode="eval", seed=3), outs[3])
    # native resolution in tiles: the colours come after the tiles, over the whole picture
    big = sketch.resize((128, 128), Image.NEAREST)
    t.max_pixels = 64 * 64
    tiled, plain = (t.run_array(big, mode="eval", seed=3, resolution="native", object_colours=c) for c in (True, False))
    assert tiled.shape == (128, 128, 3) and np.array_equal(tiled[0], plain[0]) and not np.array_equal(tiled, plain)
    bank, t.object_colours = t.object_colours, None  # the control off is G's tiles alone
    assert np.array_equal(plain, t.run_array(big, mode="eval", seed=3, resolution="native"))
    t.object_colours = bank
    # a bank that is not (M, 3) finite RGB rows is refused by name
    from trainer.errors import ModelFileError
    for bank in (torch.zeros(5, 2), torch.full((4, 3), float("nan")), torch.zeros(4, 3, dtype=torch.int64)):
        with pytest.raises(ModelFileError, match="region_colours"):
            type(t)(card, {**tensors, "region_colours": bank})
    with pytest.raises(ConfigError, match="object_colours"):
        tiny(sketches32, steps=2, **{"model.object_colours": True, "model.region_codes": True})
    with pytest.raises(ConfigError, match="line drawings"):  # photos have no objects to find
        tiny(sketches32, steps=2, **{"model.nz": 4, "model.object_colours": True, "model.task": "photo2photo"})


def test_a_new_run_never_overwrites_a_run_and_its_config_names_absolute_paths(sketches32, tmp_path, monkeypatch):
    """``train`` into a folder that holds a run is refused before anything is written; the
    config.toml of a new run names its data folder and other files absolutely (a resume from
    elsewhere reads the same files); ``train.init_from`` says what is wrong with a near miss."""
    from trainer.errors import ConfigError, ModelFileError
    from trainer.run.checkpoints import load_model_nets
    monkeypatch.chdir(sketches32.parent)
    cfg = tiny(sketches32.name, steps=2, **{"train.checkpoint_every": 2})
    rd = RunDir(tmp_path / "r")
    run.train(cfg, rd.path, progress=False, log=lambda *a: None)
    assert config.read_toml(rd.config_path)["data"]["root"] == str(sketches32.resolve())
    before = {p: p.read_bytes() for p in rd.path.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="already holds a run.*resume"):
        run.train(cfg, rd.path, progress=False, log=lambda *a: None)
    assert {p: p.read_bytes() for p in rd.path.rglob("*") if p.is_file()} == before
    method = registry.get_method(cfg.method)(cfg, torch.device("cpu"))
    with pytest.raises(ModelFileError, match="run folder: pass one of its checkpoints"):
        load_model_nets(rd.path, method)
    step = rd.path / "checkpoints" / "step-000002"
    with pytest.raises(ModelFileError, match="pass its folder"):
        load_model_nets(step / "nets.safetensors", method)
    loose = tmp_path / "copied" / "step-000002"
    loose.parent.mkdir()
    loose.mkdir()
    (loose / "nets.safetensors").write_bytes((step / "nets.safetensors").read_bytes())
    with pytest.raises(ModelFileError, match="no config.toml in .*its method is unknown"):
        load_model_nets(loose, method)
    (loose / "nets.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ModelFileError, match="damaged"):
        load_model_nets(loose, method)
    assert sorted(load_model_nets(step, method)) == ["D", "G"]


def test_resume_with_other_model_settings_says_what_to_do(sketches32, tmp_path):
    cfg = tiny(sketches32, steps=2, **{"train.checkpoint_every": 2})
    assert run.train(cfg, tmp_path / "r", progress=False).state == "finished"
    rd = RunDir(tmp_path / "r")
    status = rd.status_path.read_bytes()
    with pytest.raises(Exception, match=r"--set model\.ngf=16 \(the run has 8\) changed the nets: .*"
                                        r"does not match its network.*a model\.\* change.*config\.toml\): resume "
                                        r"without it\. Nets of another size start a new run"):
        run.resume(tmp_path / "r", ["train.steps=4", "model.ngf=16"], progress=False)
    assert rd.checkpoints()[-1][0] == 2  # nothing trained over
    assert rd.status_path.read_bytes() == status  # nor its status: still finished at 2 of 2 steps
    assert rd.read_status()["total_steps"] == 2
    # a loss weight changes no net: only the setting that does is named
    with pytest.raises(Exception, match=r"^--set model\.ngf=16 \(the run has 8\) changed the nets: "):
        run.resume(tmp_path / "r", ["model.lambda_l1=50", "model.ngf=16"], progress=False)
    with pytest.raises(config.ConfigError, match=r"^--set model\.foo=1: unknown key model\.foo"):
        run.resume(tmp_path / "r", ["model.foo=1"], progress=False)
    with pytest.raises(config.ConfigError, match=r"train\.steps = 1: .* is already at step 2; give a total of at least 2"):
        run.resume(tmp_path / "r", ["train.steps=1"], progress=False)
    config_toml = rd.config_path.read_bytes()
    for bad, says in [("model.init_type=foo", "init"), ("train.device=foo", "unknown device 'foo'")]:
        with pytest.raises(config.ConfigError, match=rf"^--set train\.steps=4 {bad}: .*{says}"):
            run.resume(tmp_path / "r", ["train.steps=4", bad], progress=False)  # checked when the nets are built
        assert rd.config_path.read_bytes() == config_toml and rd.status_path.read_bytes() == status


def test_resume_refuses_a_run_whose_job_is_alive(sketches32, tmp_path):
    import socket
    from trainer.rundir import process_start_time, run_state
    cfg = tiny(sketches32, steps=2, **{"train.checkpoint_every": 2})
    assert run.train(cfg, tmp_path / "r", progress=False).state == "finished"
    rd = RunDir(tmp_path / "r")
    born = process_start_time(os.getpid())
    rd.write_status(state="running", started=(born or time.time()) + 1)  # this test's process as the job
    assert rd.read_status()["pid"] == os.getpid() and rd.read_status()["host"] == socket.gethostname()
    with pytest.raises(config.ConfigError, match=rf"is training now \(pid {os.getpid()}\): stop that job first"):
        run.resume(tmp_path / "r", ["train.steps=4"], progress=False)
    assert rd.checkpoints()[-1][0] == 2
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "r", copy)  # its status names the job of the folder it was copied from
    assert run_state(copy) == "crashed" and run_state(tmp_path / "r") == "running"
    if born is not None:  # a pid the system gave to a process that started after the job: not the job
        rd.write_status(state="running", started=born - 3600)
        assert run_state(tmp_path / "r") == "crashed"
        assert run.resume(tmp_path / "r", ["train.steps=4"], progress=False).state == "finished"


def test_a_stylegan_resume_at_another_size_names_image_size(tmp_path):
    from trainer.errors import ModelFileError
    cfg = registry.load_config("stylegan-faces", ["data.image_size=16", "data.synth_n=8", "train.steps=1",
                                                  "train.batch_size=2", "train.checkpoint_every=1", "train.threads=1",
                                                  "train.device='cpu'", "train.precision='off'", "model.style_dim=16",
                                                  "data.num_workers=0", "train.sample_every=0"])
    assert run.train(cfg, tmp_path / "s", progress=False, log=lambda *a: None).state == "finished"
    with pytest.raises(ModelFileError, match=r"^--set data\.image_size=32 \(the run has 16\) changed the nets"):
        run.resume(tmp_path / "s", ["data.image_size=32", "train.steps=2"], progress=False, log=lambda *a: None)


def test_a_run_that_failed_before_its_first_step_leaves_its_folder_free(sketches32, tmp_path):
    from trainer.errors import ModelFileError
    first = tiny(sketches32, steps=2, **{"train.checkpoint_every": 2})
    assert run.train(first, tmp_path / "a", progress=False).state == "finished"
    step = tmp_path / "a" / "checkpoints" / "step-000002"
    wrong = tiny(sketches32, steps=2, **{"model.ngf": 16, "train.init_from": str(step)})
    with pytest.raises(ModelFileError):
        run.train(wrong, tmp_path / "b", progress=False, log=lambda *a: None)
    assert RunDir(tmp_path / "b").read_status()["state"] == "failed"
    right = tiny(sketches32, steps=2, **{"train.init_from": str(step)})
    assert run.train(right, tmp_path / "b", progress=False, log=lambda *a: None).state == "finished"
