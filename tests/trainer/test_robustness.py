"""Issue 29: torn runs resume and look right, stop means stop, a full disk, divergence and bad
configuration, untrusted files, messages that say what happened, the folder job."""
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import ROOT, tiny_overrides
from trainer import config, registry, run
from trainer.methods.base import BlowUpCheck
from trainer.rundir import CheckpointError, DiskFullError, RunDir


def tiny(root, steps=12, **extra):
    return registry.load_config("pix2pix-sketches", tiny_overrides(root, steps, **extra))


def trainer_process(run_dir, overrides, command="train", **kw):
    args = ["train", "pix2pix-sketches", "--run-dir", str(run_dir)] if command == "train" else ["resume", str(run_dir)]
    return subprocess.Popen([sys.executable, "-m", "trainer", *args, "--no-progress",
                             *sum((["--set", o] for o in overrides), [])],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def wait_for(predicate, timeout=600, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def logged_steps(rd):
    return [m["step"] for m in rd.read_metrics()]


def group_members(pgid) -> list[int]:
    """Live processes (not zombies) of process group ``pgid``."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(d.name))
    return out


# -- 1. a torn run always resumes and looks right

def test_kill_before_the_first_checkpoint_does_not_log_a_step_twice(sketches32, tmp_path):
    overrides = tiny_overrides(sketches32, steps=60, **{"train.checkpoint_every": 1000, "train.log_every": 5,
                                                        "train.sample_every": 0})
    rd = RunDir(tmp_path / "r")
    proc = trainer_process(rd.path, overrides)
    wait_for(lambda: any(s >= 25 for s in logged_steps(rd)) or proc.poll() is not None, what="step 25")
    proc.kill()
    proc.communicate(timeout=60)
    assert rd.latest_checkpoint() is None and logged_steps(rd)  # killed before any checkpoint
    lines = []
    out = run.resume(rd.path, progress=False, log=lines.append)
    assert out.state == "finished" and out.step == 60
    assert "no checkpoint yet" in "\n".join(lines)
    assert logged_steps(rd) == list(range(5, 61, 5))  # each step once


def test_resume_after_a_kill_truncates_to_its_checkpoint(sketches32, tmp_path):
    rd = RunDir(tmp_path / "r")
    run.train(tiny(sketches32, steps=12), rd.path, progress=False)
    rd.append_metrics({"step": 13, "G_L1": 1.0})  # logged after the last checkpoint, then killed
    with open(rd.metrics_path, "ab") as f:
        f.write(b'{"step": 14, "G_L')  # torn mid-line
    assert run.resume(rd.path, ["train.steps=16"], progress=False).step == 16
    assert logged_steps(rd) == list(range(1, 17))


def test_the_status_names_each_checkpoint_step_when_it_is_written(sketches32, tmp_path, monkeypatch):
    """With log lines rarer than checkpoints, status.json still says the step a killed job kept."""
    seen = []
    write = RunDir.write_status

    def spy(self, **fields):
        if "step" in fields and (self.path / "checkpoints").is_dir():
            seen.append((fields["step"], [p.name for p in sorted((self.path / "checkpoints").iterdir())]))
        return write(self, **fields)
    monkeypatch.setattr(RunDir, "write_status", spy)
    run.train(tiny(sketches32, steps=9, **{"train.checkpoint_every": 4, "train.log_every": 1000}), tmp_path / "r",
              progress=False)
    assert any(step == 4 and names[-1].endswith("000004") for step, names in seen)


def test_leftovers_of_a_killed_job_are_cleaned_on_the_next_start(sketches32, tmp_path):
    rd = RunDir(tmp_path / "r")
    run.train(tiny(sketches32, steps=12), rd.path, progress=False)
    ck = rd.checkpoints_dir
    (ck / ".incomplete-abc123").mkdir()
    (ck / ".incomplete-abc123" / "nets.safetensors").write_bytes(b"half")
    (ck / "step-000018").mkdir()  # half pruned or torn: no meta.json
    (ck / "step-000018" / "state.pt").write_bytes(b"x")
    (ck / ".pruning-step-000003").mkdir()
    (rd.path / ".status.json.k2j4_x9a").write_text("{")
    (rd.samples_dir / ".step-000012.png.ab12cd34").write_bytes(b"")
    assert len(rd.leftovers()) == 5
    lines = []
    assert run.resume(rd.path, ["train.steps=14"], progress=False, log=lines.append).step == 14
    assert rd.leftovers() == []
    assert sum("left by an interrupted job" in line for line in lines) == 5
    assert [s for s, _ in rd.checkpoints()] == [6, 12, 14]


@pytest.mark.parametrize("damage", ["truncate nets", "truncate state", "flip bytes"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_newest_intact_one(sketches32, tmp_path, damage):
    rd = RunDir(tmp_path / "r")
    run.train(tiny(sketches32, steps=12), rd.path, progress=False)
    latest = rd.checkpoint_path(12)
    if damage == "truncate nets":
        f = latest / "nets.safetensors"
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif damage == "truncate state":
        f = latest / "state.pt"
        f.write_bytes(f.read_bytes()[:1000])
    else:  # same size, a few bytes inside a tensor changed: only the checksum tells
        f = latest / "nets.safetensors"
        data = bytearray(f.read_bytes())
        for i in range(len(data) - 400, len(data) - 392):
            data[i] ^= 0xFF
        f.write_bytes(bytes(data))
        assert "checksum" in rd.verify_checkpoint(latest)
    assert rd.verify_checkpoint(rd.checkpoint_path(6)) is None
    lines = []
    out = run.resume(rd.path, ["train.steps=14"], progress=False, log=lines.append)
    text = "\n".join(lines)
    assert out.step == 14 and "step-000012 is damaged" in text and "resuming" in text and "step 6" in text
    assert (rd.checkpoints_dir / "damaged-step-000012").is_dir()  # kept for a look, out of the way
    assert logged_steps(rd) == list(range(1, 15))  # steps 7..12 logged once: from the resumed run


def test_no_usable_checkpoint_is_an_error_that_moves_nothing(sketches32, tmp_path):
    rd = RunDir(tmp_path / "r")
    run.train(tiny(sketches32, steps=6), rd.path, progress=False)
    (rd.checkpoint_path(6) / "state.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="no usable checkpoint: step-000006"):
        run.resume(rd.path, progress=False)
    assert rd.checkpoint_path(6).is_dir()  # not trained over from step 0
    status = rd.read_status()
    assert status["state"] == "failed" and status["step"] == 6 and "state.pt" in status["message"]


def test_undecodable_bytes_in_status_and_metrics_block_neither_resume_nor_export(sketches32, tmp_path):
    rd = RunDir(tmp_path / "r")
    run.train(tiny(sketches32, steps=6), rd.path, progress=False)
    lines = rd.metrics_path.read_bytes().split(b"\n")
    lines[2] = b'{"step": 3, "G_L1": \xff\xfe}'
    rd.metrics_path.write_bytes(b"\n".join(lines))
    status = rd.status_path.read_bytes().split(b"\n")
    status.insert(2, b' "junk": "\xff\xfe",')
    rd.status_path.write_bytes(b"\n".join(status))

    warnings = []
    reader = RunDir(rd.path, log=warnings.append)
    assert reader.read_status()["state"] == "finished"  # the bad line skipped, the rest read
    assert [m["step"] for m in reader.read_metrics()] == [1, 2, 4, 5, 6]
    assert any("status.json line 3" in w and "not UTF-8" in w for w in warnings), warnings
    assert any("metrics.jsonl line 3" in w and "not UTF-8" in w for w in warnings), warnings

    from trainer.run import export_run
    said = []
    assert export_run(RunDir(rd.path), tmp_path / "m.safetensors", log=said.append).is_file()
    lines = []
    assert run.resume(rd.path, ["train.steps=8"], progress=False, log=lines.append).step == 8
    assert any("metrics.jsonl line 3" in line for line in lines)
    assert logged_steps(rd) == [1, 2, 4, 5, 6, 7, 8]
    json.loads(rd.status_path.read_text())  # rewritten whole


def test_status_keeps_the_checkpoint_step_when_a_resume_dies_while_starting(sketches32, tmp_path, monkeypatch):
    rd = RunDir(tmp_path / "r")
    run.train(tiny(sketches32, steps=12), rd.path, progress=False)

    def broken(*a, **k):
        raise RuntimeError("no memory for the nets")
    monkeypatch.setattr(run.setup, "get_method", broken)  # where the loop builds its method
    with pytest.raises(RuntimeError):
        run.resume(rd.path, ["train.steps=20"], progress=False)
    status = rd.read_status()
    assert status["state"] == "failed" and status["step"] == 12 and "no memory" in status["message"]
    assert status["total_steps"] == 12 and "steps = 12\n" in rd.config_path.read_text()  # nothing trained to 20


def test_a_non_finite_loss_before_any_checkpoint_does_not_claim_one_was_kept(sketches32, tmp_path):
    cfg = tiny(sketches32, steps=20, **{"train.checkpoint_every": 1000})
    cfg.model.lambda_l1 = float("inf")  # past the configuration's checks, as a diverging run would be
    with pytest.raises(run.NonFiniteLoss) as e:
        run.train(cfg, tmp_path / "r", progress=False)
    assert "no checkpoint was written yet" in str(e.value) and "kept" not in str(e.value)
    assert "no checkpoint was written yet" in RunDir(tmp_path / "r").read_status()["message"]


def test_config_and_meta_errors_name_the_file(sketches32, tmp_path):
    rd = RunDir(tmp_path / "r")
    run.train(tiny(sketches32, steps=6), rd.path, progress=False)
    (rd.checkpoint_path(6) / "meta.json").write_bytes(b"{\"step\": 6, \xff")
    assert "meta.json" in rd.verify_checkpoint(rd.checkpoint_path(6))
    text = rd.config_path.read_bytes()
    rd.config_path.write_bytes(text.replace(b"[data]", b"[data]\n\xff\xfe"))
    with pytest.raises(config.ConfigError, match=r"config\.toml line \d+: bytes that are not UTF-8"):
        run.resume(rd.path, progress=False)
    rd.config_path.write_bytes(text.replace(b"steps = 6", b"steps = 0"))
    with pytest.raises(config.ConfigError, match=r"config\.toml: train\.steps = 0: allowed range 1\.\."):
        run.resume(rd.path, progress=False)


# -- 2. stop means stop

def test_sigterm_while_the_dataset_is_made_stops_promptly_without_orphans(tmp_path):
    overrides = ["data.synth_n=200000", "data.image_size=32", "train.device=\"cpu\"", "data.num_workers=0",
                 "train.steps=10"]
    rd = RunDir(tmp_path / "r")
    proc = trainer_process(rd.path, overrides, start_new_session=True)

    def making():
        s = rd.read_status()
        return (s.get("stage") == "dataset" and s.get("stage_done", 0) > 0) or proc.poll() is not None
    wait_for(making, what="the dataset being made")
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGTERM)  # the job alone: it must end its process pool itself
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    status = rd.read_status()
    assert status["state"] == "stopped" and "while starting" in status["message"], status
    assert status["stage_done"] < 200000  # abandoned, not finished first
    wait_for(lambda: not group_members(proc.pid), timeout=30, what="no process of the job's group left")
    cache = Path(os.environ["GAN_STUDIO_CACHE"]) / "datasets"
    assert not [p for p in cache.glob("*sketches-32px-200000*")]  # no half-made dataset kept


def test_sigterm_right_after_start_leaves_a_stopped_run(sketches32, tmp_path):
    rd = RunDir(tmp_path / "r")
    proc = trainer_process(rd.path, tiny_overrides(sketches32, steps=100))
    time.sleep(1.0)  # the interpreter is loading torch
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    status = rd.read_status()
    assert status["state"] == "stopped", output
    assert rd.exists()  # resumable: config.toml is there


def test_two_ctrl_c_give_a_clean_save_then_exit(sketches32, tmp_path):
    rd = RunDir(tmp_path / "r")
    proc = trainer_process(rd.path, tiny_overrides(sketches32, steps=100000, **{"train.checkpoint_every": 100000,
                                                                                "train.sample_every": 0}))
    wait_for(lambda: any(s >= 5 for s in logged_steps(rd)), what="step 5")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert "Traceback" not in output and "finishing the checkpoint" in output
    status = rd.read_status()
    assert status["state"] == "stopped", status
    step, path = rd.latest_checkpoint()
    assert step == status["step"] >= 5 and rd.verify_checkpoint(path) is None
    assert rd.leftovers() == []


def test_the_studio_stops_a_jobs_whole_process_group(qtbot, tmp_path):
    from studio.jobs import JobManager
    script = ("import signal, subprocess, sys, time\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
              f"open({str(tmp_path / 'child')!r}, 'w').write(str(child.pid))\n"
              "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))  # exits, leaving its child\n"
              "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    wait_for(lambda: (tmp_path / "child").is_file() and (tmp_path / "child").read_text(), timeout=60,
             what="the child")
    child = int((tmp_path / "child").read_text())
    jobs = JobManager()
    key = str(tmp_path / "run")
    jobs.procs[key], jobs.pids[key] = proc, proc.pid
    assert jobs.stop(key)
    proc.wait(timeout=30)
    wait_for(lambda: not group_members(proc.pid), timeout=30, what="the child to end")
    assert child not in group_members(proc.pid)


# -- 3. a full disk

def _disk_full_when(monkeypatch, predicate, partial=False):
    from trainer import rundir
    real = rundir.write_bytes

    def write(fd, data, path):
        if predicate(Path(path)):
            if partial:
                os.write(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, path)
    monkeypatch.setattr(rundir, "write_bytes", write)


def test_disk_full_while_writing_a_checkpoint(sketches32, tmp_path, monkeypatch):
    rd = RunDir(tmp_path / "r")
    calls = {"n": 0}

    def second_checkpoint(path):
        if path.parent.name.startswith(".incomplete-") and path.name == "state.pt":
            calls["n"] += 1
            return calls["n"] == 2
        return False
    _disk_full_when(monkeypatch, second_checkpoint)
    with pytest.raises(DiskFullError, match="disk full while writing the checkpoint of step 12"):
        run.train(tiny(sketches32, steps=18), rd.path, progress=False)
    status = rd.read_status()
    assert status["state"] == "failed" and status["message"].startswith("disk full")
    assert "step 6 is intact" in status["message"]
    assert [s for s, _ in rd.checkpoints()] == [6] and rd.verify_checkpoint(rd.checkpoint_path(6)) is None
    assert rd.leftovers() == []  # the partial checkpoint removed
    assert logged_steps(rd) == list(range(1, 13))
    from trainer.cli import main
    monkeypatch.undo()
    _disk_full_when(monkeypatch, lambda p: p.parent.name.startswith(".incomplete-"))
    assert main(["resume", str(rd.path), "--no-progress"]) == 2  # a clear one-line error, not a traceback


def test_disk_full_while_appending_metrics_leaves_no_torn_line(sketches32, tmp_path, monkeypatch):
    rd = RunDir(tmp_path / "r")
    count = {"n": 0}

    def eighth_line(path):
        if path.name == "metrics.jsonl":
            count["n"] += 1
            return count["n"] == 8
        return False
    _disk_full_when(monkeypatch, eighth_line, partial=True)
    with pytest.raises(DiskFullError, match="disk full while writing .*metrics.jsonl"):
        run.train(tiny(sketches32, steps=12), rd.path, progress=False)
    data = rd.metrics_path.read_bytes()
    assert data.endswith(b"\n") and [json.loads(x)["step"] for x in data.splitlines()] == list(range(1, 8))
    assert rd.read_status()["state"] == "failed" and "disk full" in rd.read_status()["message"]
    assert [s for s, _ in rd.checkpoints()] == [6]


# -- 4. divergence and bad configuration

@pytest.mark.parametrize("override, message", [
    ("model.lambda_l1=nan", r"model\.lambda_l1 = nan: a loss weight must be a finite number >= 0"),
    ("model.lambda_l1=inf", r"model\.lambda_l1 = inf"),
    ("model.lambda_gan=-1", r"model\.lambda_gan = -1\.0: a loss weight must be a finite number >= 0"),
    ("train.steps=0", r"train\.steps = 0: allowed range 1\.\.1,000,000,000"),
    ("train.log_every=0", r"train\.log_every = 0: allowed range 1\.\."),
    ("train.checkpoint_every=-1", r"train\.checkpoint_every = -1: allowed range 0\.\."),
    ("train.sample_every=-5", r"train\.sample_every = -5: allowed range 0\.\."),
    ("train.keep_checkpoints=-1", r"train\.keep_checkpoints = -1"),
    ("data.num_workers=1000", r"data\.num_workers = 1000: allowed range -1\.\.64"),
    ("data.synth_n=2000000", r"data\.synth_n = 2000000: allowed range 1\.\.1,000,000"),
    ("train.lr=nan", r"train\.lr = nan: allowed range above 0"),
    ("train.lr=0", r"train\.lr = 0\.0: allowed range above 0"),
    ("train.beta1=1.5", r"train\.beta1 = 1\.5: allowed range 0\.\."),
    ("train.batch_size=0", r"train\.batch_size = 0: allowed range 1\.\."),
    ("train.precision=\"fp8\"", r"train\.precision = 'fp8': choose one of auto, off, bf16, fp16"),
])
def test_invalid_values_are_refused_when_the_config_is_read(override, message):
    with pytest.raises(config.ConfigError, match=message):
        registry.load_config("pix2pix-sketches", [override])


def test_bad_stylegan_settings_are_refused():
    refusals = {f"model.output_skips_from={v}": f"model.output_skips_from = {v}: .* one of 4, 8, 16, 32, 64$"
                for v in (12, 128, 2)}
    refusals.update({
        "model.lambda_mix_colour=-1": r"model.lambda_mix_colour = -1.0: a loss weight must be a finite number >= 0",
        "model.lambda_mix_layout=nan": r"model.lambda_mix_layout = nan: a loss weight must be a finite number",
        "model.mix_every=0": r"model.mix_every must be at least 1",
        "model.mix_from=-1": r"model.mix_from = -1: a step, at least 0"})
    for override, message in refusals.items():
        with pytest.raises(config.ConfigError, match=message):
            registry.load_config("stylegan-faces", [override])
    assert registry.load_config("stylegan-faces", ["model.output_skips_from=16"]).model.output_skips_from == 16


def test_every_preset_passes_the_checks():
    for name in config.list_presets():
        try:
            registry.load_config(name)
        except config.ConfigError as e:  # presets of user data name no folder yet: nothing else
            assert "data.root is empty" in str(e) or "style_image is empty" in str(e), (name, e)


def test_blow_up_check_ignores_noise_and_growth_from_near_zero():
    check = BlowUpCheck()
    g = torch.Generator().manual_seed(0)
    for i in range(2000):
        values = {"noisy": float(torch.rand(1, generator=g)) * 5, "r1": 1e-6 * (1.01 ** i),  # ~0 to ~400
                  "wgan": -float(i)}
        assert check(values) is None
    assert "over the limit of 1e+08" in check({"noisy": 2e8})
    check = BlowUpCheck()
    for _ in range(50):
        check({"G": 0.7})
    assert "times its median of 0.7" in check({"G": 0.7 * 2e6})


@pytest.mark.parametrize("factor", [1e7, 1e9])
def test_a_finite_blow_up_fails_the_run_within_one_log_interval(sketches32, tmp_path, monkeypatch, factor):
    from trainer.methods.pix2pix import Pix2Pix
    real = Pix2Pix.train_step
    count = {"n": 0}

    def diverging(self, batch):
        losses = real(self, batch)
        count["n"] += 1
        if count["n"] >= 23:
            losses["G_L1"] = losses["G_L1"] * factor
        return losses
    monkeypatch.setattr(Pix2Pix, "train_step", diverging)
    rd = RunDir(tmp_path / "r")
    with pytest.raises(run.NonFiniteLoss, match="loss blew up at step 23: G_L1"):
        run.train(tiny(sketches32, steps=40, **{"train.log_every": 5, "train.checkpoint_every": 10}), rd.path,
                  progress=False)
    status = rd.read_status()
    assert status["state"] == "failed" and "blew up at step 23" in status["message"]
    assert "the checkpoint of step 20 is kept" in status["message"]
    assert max(logged_steps(rd)) == 20


# -- 6. messages that say what happened

def test_a_hostile_state_pt_is_refused_plainly(sketches32, tmp_path):
    rd = RunDir(tmp_path / "r")
    run.train(tiny(sketches32, steps=6), rd.path, progress=False)

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))
    path = rd.checkpoint_path(6)
    torch.save({"step": 6, "x": Evil()}, path / "state.pt")
    meta = json.loads((path / "meta.json").read_text())
    meta.pop("files")  # as an older checkpoint without checksums: loading it is the last line of defence
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as e:
        run.resume(rd.path, progress=False)
    assert "would run code when loaded (it calls posix.system)" in str(e.value)
    assert "Unpickling" not in str(e.value) and not (tmp_path / "pwned").exists()
    assert "would run code" in rd.read_status()["message"]


def test_the_pixel_limit_in_the_message_is_the_one_enforced(tmp_path):
    import struct
    import zlib

    from trainer.data.imageio import ImageError, open_image

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    # 95 megapixels: refused (Pillow's bomb check), so the limit said must be below it
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 9500, 10000, 8, 2, 0, 0, 0))
    (tmp_path / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b""))
                                       + chunk(b"IEND", b""))
    with pytest.raises(ImageError) as e:
        open_image(tmp_path / "big.png")
    limit = int(str(e.value).split("limit ")[1].rstrip(")").replace(",", ""))
    assert limit < 9500 * 10000


# -- 7. the folder job

def test_output_names_keep_relative_paths_and_never_collide():
    from trainer.data.imageio import output_names
    names = [Path(p) for p in ("a.png", "a.jpg", "sub/a.png", "a.jpg.png", "B.PNG", "b.png")]
    assert [n.as_posix() for n in output_names(names)] == [
        "a.png", "a.jpg.png", "sub/a.png", "a.jpg-2.png", "B.PNG", "b-2.png"]


def test_translate_a_folder_with_inputs_of_the_same_stem(tmp_path, capsys):
    from tests import tiny_models
    from trainer.cli import main
    model = tiny_models.cyclegan(tmp_path / "m.safetensors")
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.new("RGB", (20, 16), "red").save(src / "a.png")
    Image.new("RGB", (24, 16), "green").save(src / "a.jpg")
    Image.new("RGB", (28, 16), "blue").save(src / "sub" / "a.png")
    assert main(["translate", str(model), str(src), "-o", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["a.jpg.png", "a.png", "sub/a.png"]
    assert [Image.open(out / n).width for n in ("a.png", "a.jpg.png", "sub/a.png")] == [20, 24, 28]


def _fails_on_green(monkeypatch):
    """Translator.run raising an unforeseen RuntimeError on the green image only."""
    from trainer.translator import Translator
    run = Translator.run

    def flaky(self, image=None, **controls):
        if Image.open(image).getpixel((0, 0)) == (0, 128, 0):
            raise RuntimeError("an unforeseen kernel failure")
        return run(self, image, **controls)
    monkeypatch.setattr(Translator, "run", flaky)


def test_a_folder_translation_goes_on_past_an_unforeseen_failure(tmp_path, capsys, monkeypatch):
    """One image failing in an unexpected way is reported by name; the images after it are
    still translated and the exit status says that one failed."""
    from tests import tiny_models
    from trainer.cli import main
    model = tiny_models.cyclegan(tmp_path / "m.safetensors")
    src = tmp_path / "in"
    src.mkdir()
    for name, colour in (("a.png", "red"), ("b.png", "green"), ("c.png", "blue")):
        Image.new("RGB", (20, 16), colour).save(src / name)
    _fails_on_green(monkeypatch)
    assert main(["translate", str(model), str(src), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr()
    assert "b.png: RuntimeError: an unforeseen kernel failure" in err.err
    assert "translated 2 of 3 images" in err.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


def test_the_folder_job_goes_on_past_an_unforeseen_failure(qtbot, tmp_path, monkeypatch):
    from tests import tiny_models
    from studio.pages.photo import FolderJob
    model = tiny_models.cyclegan(tmp_path / "m.safetensors")
    inputs = []
    for name, colour in (("a.png", "red"), ("b.png", "green"), ("c.png", "blue")):
        Image.new("RGB", (20, 16), colour).save(tmp_path / name)
        inputs.append(tmp_path / name)
    _fails_on_green(monkeypatch)
    job = FolderJob(model, inputs, tmp_path / "out", {}, names=[Path(p.name) for p in inputs])
    results = []
    job.done.connect(lambda *a: results.append(a))
    job.run()
    assert results[0][:3] == (2, 1, False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


def test_the_photo_pages_folder_job_keeps_every_input(qtbot, tmp_path):
    from tests import tiny_models
    from studio.pages.photo import FolderJob
    model = tiny_models.cyclegan(tmp_path / "m.safetensors")
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    inputs = [src / "a.png", src / "a.jpg", src / "sub" / "a.png"]
    for i, p in enumerate(inputs):
        Image.new("RGB", (20 + 4 * i, 16), "red").save(p)
    job = FolderJob(model, inputs, tmp_path / "out", {}, names=[p.relative_to(src) for p in inputs])
    results = []
    job.done.connect(lambda *a: results.append(a))
    job.run()
    assert results[0][:3] == (3, 0, False)
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["a.jpg.png", "a.png", "sub", "sub/a.png"]


def test_the_folder_job_runs_in_the_pages_device_and_precision(qtbot, tmp_path):
    """Translate folder... loads the model as the pages do (Preferences: device, inference
    precision): fp32 gives exactly the fp32 translator's output; an unknown precision fails every
    image, writing nothing."""
    from tests import tiny_models
    from studio.pages.photo import FolderJob
    from trainer import api
    model = tiny_models.cyclegan(tmp_path / "m.safetensors")
    photo = tmp_path / "a.png"
    Image.effect_noise((24, 16), 60).convert("RGB").save(photo)
    results = []
    for precision, out in (("fp32", tmp_path / "fp32"), ("fp8", tmp_path / "bad")):
        job = FolderJob(model, [photo], out, {}, device="auto", precision=precision)
        job.done.connect(lambda *a: results.append(a))
        job.run()
    assert results[0][:3] == (1, 0, False) and results[1][:3] == (0, 1, False)
    expected = np.asarray(api.load_model(model, "cpu", "fp32").run(photo))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "fp32" / "a.png")), expected)
    assert not (tmp_path / "bad").exists()


CLOSE_DURING_FOLDER_JOB = """
import sys, time
from pathlib import Path
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
from studio.app import MainWindow

model, src, dst, settings = sys.argv[1:5]
app = QApplication([])
w = MainWindow(QSettings(settings, QSettings.IniFormat), scan_user=False)
w.confirm_imports = False
w.show()
assert w.add_model(model)
page = w.pages["photo"]
deadline = time.time() + 120
while page.info is None and time.time() < deadline:
    app.processEvents()
    time.sleep(0.01)
assert page.translate_folder(src, dst)
progressed = []
page.job.progress.connect(lambda *a: progressed.append(a))
def close_when_started():
    if progressed:
        w.close()  # the last window: the application quits
    else:
        QTimer.singleShot(10, close_when_started)
QTimer.singleShot(10, close_when_started)
code = app.exec()
print("translated", len(list(Path(dst).rglob("*.png"))), flush=True)
sys.exit(code)
"""


def test_closing_the_studio_during_a_folder_job_exits_cleanly(tmp_path):
    from tests import tiny_models
    model = tiny_models.cyclegan(tmp_path / "m.safetensors")
    src = tmp_path / "in"
    src.mkdir()
    for i in range(200):
        Image.new("RGB", (96, 96), (i, 0, 0)).save(src / f"{i:03d}.png")
    proc = subprocess.run([sys.executable, "-c", CLOSE_DURING_FOLDER_JOB, str(model), str(src), str(tmp_path / "out"),
                           str(tmp_path / "settings.ini")], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Destroyed while thread" not in proc.stderr
    done = int(proc.stdout.split("translated")[1].split()[0])
    assert 1 <= done < 200  # cancelled after the current image
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no half-written file


def test_what_a_second_newcomer_broke_is_refused_by_name(tmp_path, capsys):
    """import onto its own source, a NaN checkpoint, an unwritable --log, data synth onto a file,
    a preset file that is not TOML, and a card whose sizes disagree with its tensors."""
    from tests import tiny_models
    from tests.trainer.test_importers import _grey_unet
    from trainer.cli import main
    from trainer.errors import ModelFileError
    from trainer.modelfile import load_model, save_model
    from trainer import inference
    source = tmp_path / "G.pth"
    torch.save(_grey_unet(), source)
    kept = source.read_bytes()
    for out in (source, tmp_path / "x.pth"):
        assert main(["import", str(source), "-o", str(out)]) == 2
        assert "needs the .safetensors suffix" in capsys.readouterr().err
    (tmp_path / "notes.safetensors").write_text("my notes")  # a user's file under a model's name is kept
    assert main(["import", str(source), "-o", str(tmp_path / "notes.safetensors")]) == 2
    assert "not a model file" in capsys.readouterr().err
    assert (tmp_path / "notes.safetensors").read_text() == "my notes"
    assert main(["import", str(source), "-o", str(tmp_path / "G.safetensors")]) == 0
    assert main(["import", str(source), "-o", str(tmp_path / "G.safetensors")]) == 0  # a model file is replaced
    capsys.readouterr()
    from trainer.conversion import import_checkpoint
    from trainer.errors import CheckpointImportError
    with pytest.raises(CheckpointImportError, match="the checkpoint being imported"):
        import_checkpoint(source, tmp_path / ".." / tmp_path.name / "G.pth")
    assert source.read_bytes() == kept
    nan = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in _grey_unet().items()}
    torch.save(nan, tmp_path / "nan.pth")
    assert main(["import", str(tmp_path / "nan.pth"), "-o", str(tmp_path / "nan.safetensors")]) == 2
    assert "hold NaN or infinite values" in capsys.readouterr().err and not (tmp_path / "nan.safetensors").exists()

    (tmp_path / "afile").write_text("mine")
    assert main(["--log", str(tmp_path / "afile" / "x.log"), "presets"]) == 2
    assert "--log" in capsys.readouterr().err
    assert main(["data", "synth", "faces", "--out", str(tmp_path / "afile"), "--n", "2", "--size", "32"]) == 2
    assert "is a file" in capsys.readouterr().err and (tmp_path / "afile").read_text() == "mine"
    (tmp_path / "broken.toml").write_text("[train\nsteps=")
    assert main(["train", str(tmp_path / "broken.toml")]) == 2
    assert "line 1, column 7" in capsys.readouterr().err

    tensors, card = load_model(tiny_models.stargan(tmp_path / "s.safetensors"))
    card["nets"]["G"]["args"]["conv_dim"] = 60000  # 460 GB if built before the shapes are compared
    card.pop("format", None)
    save_model(tmp_path / "bomb.safetensors", tensors, card)
    with pytest.raises(ModelFileError, match=r"does not match its network; wrong shapes: .*expected \(60000"):
        inference.load(tmp_path / "bomb.safetensors")
