"""Reading a run from outside (trainer.rundir's readers, which the studio's Train page uses) and
the loss groups of its plots (trainer.api)."""
import json
import os
import socket

from trainer import api, rundir


def write_status(run, **status):
    run.mkdir(parents=True, exist_ok=True)
    (run / "status.json").write_text(json.dumps(status))


def test_state_totals_and_method_come_from_status_then_config(tmp_path):
    run = tmp_path / "run"
    assert rundir.run_state(run) == "new" and rundir.run_total_steps(run) is None and rundir.run_method(run) == ""
    run.mkdir()
    (run / "config.toml").write_text('method = "cyclegan"\n[train]\nsteps = 300\n')
    assert rundir.run_total_steps(run) == 300 and rundir.run_method(run) == "cyclegan"  # before any status
    write_status(run, state="running", total_steps=500, method="pix2pix", host=socket.gethostname(), pid=os.getpid())
    assert rundir.run_state(run) == "running" and rundir.run_pid(run) == os.getpid()
    assert rundir.run_total_steps(run) == 500 and rundir.run_method(run) == "pix2pix"
    write_status(run, state="running", host=socket.gethostname(), pid=2 ** 22 + 12345)  # its process is gone
    assert rundir.run_state(run) == "crashed" and rundir.run_pid(run) is None
    (run / "status.json").write_bytes(b'{"state": "stopped",\n\xff\xfe\n"step": 3}')  # a line not UTF-8: skipped
    assert rundir.read_status(run) == {"state": "stopped", "step": 3}
    (run / "config.toml").write_bytes(b"\xff not toml")
    assert rundir.run_total_steps(run) is None and rundir.run_method(run) == ""


def test_data_stage_and_log_tail(tmp_path):
    assert rundir.data_stage({"stage": "dataset", "stage_done": 50, "stage_total": 20}) == (20, 20)
    assert rundir.data_stage({"stage": "train", "stage_done": 5, "stage_total": 20}) is None
    assert rundir.data_stage({"stage": "dataset", "stage_done": "5", "stage_total": 20}) is None
    assert rundir.log_tail(tmp_path) == []
    (tmp_path / "job.log").write_bytes(b"x" * 30000 + b"\nstep 1\rstep 2\n\n\xffend\n")
    assert rundir.log_tail(tmp_path, 3) == ["step 1", "step 2", "\ufffdend"]


def test_metrics_reader_skips_damaged_lines_and_rereads_a_cut_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 1, "time": 1.0, "G": 1.0, "ok": true}\n[1, 2]\n\xff\xfe\n{"step": "x", "G": 3}\n'
                     b'{"step": 2, "G": 0.5, "time": "late"}\n{"step": 3')
    r = rundir.MetricsReader(path)
    assert r.poll() == 3 and r.skipped == 2 and r.records == 2  # a record without a numeric step is no point
    g = r.series["G"]
    assert g.step.tolist() == [1, 2] and g.value.tolist() == [1.0, 0.5] and g.time[1] != g.time[1]  # NaN
    assert "ok" not in r.series and "step" not in r.series
    assert r.poll() == 0  # the half-written line waits
    path.write_text('{"step": 1, "G": 9.0}\n')
    assert r.poll() == 1 and r.series["G"].value.tolist() == [9.0]


def test_loss_groups_are_the_declared_ones():
    declared = api.loss_groups("cyclegan")
    assert declared and set(declared.values()) <= set(api.LOSS_GROUPS)
    assert all(api.loss_group(k, declared) == g for k, g in declared.items())
    assert api.loss_group("D_A", declared) == "discriminator" and api.loss_group("G_A", declared) == "generator"
    # a loss its method does not declare (a plugin that declares none) is plotted with the rest
    assert api.loss_group("D_x") == api.loss_group("D_x", {"D_x": "no such plot"}) == "reconstruction / regularisation"
    assert api.loss_group("D_x", {"D_x": "generator"}) == "generator"
    assert api.loss_group("lr_G") is None and api.loss_group("it_s") is None and api.loss_group("step") is None


def test_a_field_given_as_none_is_removed(tmp_path):
    from trainer.rundir import RunDir
    rd = RunDir(tmp_path / "run")
    rd.write_status(state="running", stage="dataset", stage_done=20, stage_total=20)
    assert rundir.data_stage(rundir.read_status(rd.path)) == (20, 20)
    status = rd.write_status(stage="train", message="training", step=0, stage_done=None, stage_total=None)
    assert "stage_done" not in status and "stage_total" not in status and status["state"] == "running"
    assert rundir.read_status(rd.path)["stage"] == "train" and "stage_total" not in rundir.read_status(rd.path)
