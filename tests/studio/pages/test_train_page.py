"""The Train page: real procedural jobs started, stopped, resumed and crashed from the page, a
CLI run monitored live, the metrics reader, CSV export, and plotting 200,000 points."""
import csv
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from PySide6.QtCore import QSettings, Qt  # noqa: E402

from studio.app import MainWindow  # noqa: E402
from studio.gap_meter import GapMeter  # noqa: E402
from studio.metrics import MetricsReader, Series, Smoother, export_csv, group_of, health_warnings, smooth  # noqa: E402
from tests.conftest import ROOT as CONFTEST_ROOT

ROOT = str(CONFTEST_ROOT)


@pytest.fixture
def window(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    settings.setValue("runs_root", str(tmp_path / "runs"))
    w = MainWindow(settings, scan_user=False)
    w.confirm_imports = False
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    w.tabs.setCurrentWidget(w.train_page)
    yield w
    for r in w.train_page.jobs.running():
        w.train_page.jobs.stop(r, grace_ms=100)
    w.close()


def tiny_job(page, steps=20, preset="cgan-shapes"):
    f = page.form
    f.preset.setCurrentText(preset)
    f.procedural.setChecked(True)
    f.size.setValue(16)
    f.steps.setValue(steps)
    f.batch.setValue(8)
    f.device.setCurrentText("cpu")
    f.extra.setText("data.synth_n=60 train.log_every=2 train.sample_every=10 train.checkpoint_every=10 "
                   "train.threads=1")


def status(run):
    try:
        return json.loads((run / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def test_job_from_the_page_fills_plots_progress_and_samples(qtbot, window):
    page = window.train_page
    tiny_job(page)
    page.form.weight_fields.clear()
    run = page.start_job()
    assert page.current == str(run)
    qtbot.waitUntil(lambda: status(run).get("state") == "finished", timeout=600000)
    qtbot.wait(1200)  # two polls
    assert page.monitor.progress.value() == 20 and page.monitor.progress.maximum() == 20
    assert any(c.xData is not None and len(c.xData) >= 10 for c in page.monitor.plots.curves.values())
    assert {k for _, k in page.monitor.plots.curves} >= {"D_real", "D_fake", "G"}
    assert page.monitor.sample_view.array is not None
    assert page.runs.table.item(0, 1).text() == "finished"
    # "Use this model" opens it in its page (DCGAN samples live on the Style page)
    page.use_clicked()
    qtbot.waitUntil(lambda: window.pages["style"].info is not None, timeout=20000)
    assert window.page() is window.pages["style"]


def test_fields_are_validated_before_start(qtbot, window, tmp_path):
    page = window.train_page
    f = page.form
    f.preset.setCurrentText("pix2pix-sketches")
    f.size.setValue(100)
    with pytest.raises(ValueError, match="power.of.two"):  # the engine's own size rule (api.check_job)
        f.validate()
    f.size.setValue(64)
    f.procedural.setChecked(False)
    f.root.setText(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no such folder"):
        f.validate()
    (tmp_path / "empty").mkdir()
    f.root.setText(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="no images"):
        f.validate()
    (tmp_path / "u" / "trainA").mkdir(parents=True)
    (tmp_path / "u" / "trainB").mkdir()
    from PIL import Image
    Image.new("RGB", (8, 8)).save(tmp_path / "u" / "trainA" / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "u" / "trainB" / "b.png")
    f.root.setText(str(tmp_path / "u"))
    with pytest.raises(ValueError, match="pix2pix needs aligned"):
        f.validate()
    page.start_clicked()  # shown, not raised
    assert "aligned" in page.form_message.text()


def test_loss_weights_follow_the_preset_and_keep_the_window_height(qtbot, window):
    f = window.train_page.form
    f.preset.setCurrentText("sketch2photo")
    qtbot.wait(50)
    height = window.height()
    for preset, weights in (("bicyclegan-sketches", {"lambda_l1": 10.0, "lambda_kl": 0.003, "lambda_z": 0.5}),
                            ("cyclegan-shapes", None), ("sketch2photo", {"lambda_l1": 100.0})):
        f.preset.setCurrentText(preset)
        qtbot.wait(50)
        assert window.height() == height, preset  # three weights lie in two rows, not a third
        if weights:
            assert {k: w.value() for k, w in f.weight_fields.items()} == weights
        assert f.weights.count() == 2 * len(f.weight_fields)  # a label and a field each, none left over
    f.weight_fields["lambda_l1"].setValue(50.0)
    assert "model.lambda_l1=50.0" in f.overrides()
    f.preset.setCurrentText("fast-style")  # weights as written, exponents too, typed or shown
    style = f.weight_fields["lambda_style"]
    assert style.text() == "1e+10" and style.value() == 1e10
    style.lineEdit().selectAll()
    qtbot.keyClicks(style, "2.5e3")
    qtbot.keyClick(style, Qt.Key_Return)
    assert "model.lambda_style=2500.0" in f.overrides()
    style.lineEdit().selectAll()
    qtbot.keyClicks(style, "lots")  # not a number: the last value stays
    qtbot.keyClick(style, Qt.Key_Return)
    assert style.value() == 2500.0


def test_stop_then_resume_ends_at_the_total(qtbot, window):
    page = window.train_page
    tiny_job(page, steps=100)
    run = page.start_job()
    qtbot.waitUntil(lambda: status(run).get("step", 0) >= 10, timeout=600000)
    assert page.runs.stop_button.isEnabled()
    page.stop_clicked()
    assert page.form_message.full_text.startswith("stopping")
    qtbot.waitUntil(lambda: status(run).get("state") == "stopped", timeout=600000)
    stopped_at = status(run)["step"]
    assert 10 <= stopped_at < 100
    qtbot.waitUntil(lambda: page.runs.resume_button.isEnabled(), timeout=10000)
    # once the job has exited, the message under the form says so, not "stopping"
    qtbot.waitUntil(lambda: not page.form_message.full_text.startswith("stopping"), timeout=10000)
    assert page.form_message.full_text == f"{run.name}: stopped, checkpoint at step {stopped_at} (Resume continues from it)"
    page.runs.resume_steps.setValue(100)
    page.resume_clicked()
    qtbot.waitUntil(lambda: status(run).get("state") == "finished", timeout=600000)
    assert status(run)["step"] == 100
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 100


def answer_dialog(qtbot, button_text):
    """Click ``button_text`` in the next modal dialog, from the event loop the dialog runs."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox
    seen = []

    def click():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        seen.append(box.text())
        next(b for b in box.buttons() if b.text().replace("&", "") == button_text).click()
    QTimer.singleShot(20, click)
    return seen


def test_closing_with_a_running_job_asks_cancel_leave_or_stop(qtbot, window):
    page = window.train_page
    tiny_job(page, steps=100000)
    run = page.start_job()
    qtbot.waitUntil(lambda: status(run).get("step", 0) >= 2, timeout=600000)
    window.confirm_imports = True
    seen = answer_dialog(qtbot, "Cancel")
    assert not window.close() and window.isVisible()  # Cancel: the studio stays, the job runs
    assert "1 training job(s) are running" in seen[0] and page.jobs.running()
    answer_dialog(qtbot, "Stop jobs")
    assert window.close()
    qtbot.waitUntil(lambda: status(run).get("state") == "stopped", timeout=600000)
    assert (run / "checkpoints").is_dir() and any((run / "checkpoints").iterdir())


def test_a_crashing_job_is_shown_failed_and_the_studio_keeps_working(qtbot, window, tmp_path):
    page = window.train_page
    tiny_job(page)
    # valid for the form (a folder of image files), fatal in the job (none of them decodes)
    data = tmp_path / "broken"
    (data / "train").mkdir(parents=True)
    for i in range(5):
        (data / "train" / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 10)
    page.form.procedural.setChecked(False)
    page.form.root.setText(str(data))
    page.form.validate()
    run = page.start_job()
    qtbot.waitUntil(lambda: page.jobs.state(run) in ("failed", "crashed"), timeout=600000)
    qtbot.wait(1200)
    banner = page.monitor.banner
    assert banner.isVisible() and ("failed" in banner.text() or "crashed" in banner.text())
    assert window.isVisible()
    tiny_job(page, steps=4)
    run2 = page.start_job()  # the studio still starts jobs
    qtbot.waitUntil(lambda: status(run2).get("state") == "finished", timeout=600000)


def test_a_cli_run_folder_is_monitored_live(qtbot, window, tmp_path):
    run = tmp_path / "elsewhere"
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.Popen([sys.executable, "-m", "trainer", "train", "cgan-shapes", "--run-dir", str(run),
                             "--no-progress", "--set", "train.steps=150", "--set", "data.image_size=16",
                             "--set", "train.batch_size=8", "--set", "train.log_every=5",
                             "--set", "train.device='cpu'", "--set", "data.synth_n=60"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        page = window.train_page
        deadline = time.time() + 60
        while not (run / "status.json").exists() and time.time() < deadline:
            qtbot.wait(100)
        page.open_run(run)
        qtbot.waitUntil(lambda: page.readers.get(str(run)) and page.readers[str(run)].records >= 2, timeout=600000)
        first = page.readers[str(run)].records
        qtbot.waitUntil(lambda: page.readers[str(run)].records > first + 2, timeout=600000)
        assert page.jobs.state(run) in ("running", "finished")
    finally:
        proc.wait(timeout=900)
    qtbot.waitUntil(lambda: page.readers[str(run)].records == 30, timeout=10000)


def test_metrics_reader_survives_a_half_written_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "time": 1.0, "G": 1.0}\n{"step": 2, "time": 2.0, "G": 0.5}\n{"step": 3, "ti')
    r = MetricsReader(path)
    assert r.poll() == 2 and list(r.series["G"].value) == [1.0, 0.5]
    with open(path, "a") as f:
        f.write('me": 3.0, "G": 0.25}\n{"step": 4, "time": 4.0, "G": NaN}\n')
    assert r.poll() == 2
    assert r.series["G"].step.tolist() == [1, 2, 3, 4] and np.isnan(r.series["G"].value[-1])
    assert any("diverged" in w for w in health_warnings(r))
    path.write_text('{"step": 1, "time": 1.0, "G": 9.0}\n')  # truncated by a resume: read again
    assert r.poll() == 1 and r.series["G"].value.tolist() == [9.0]
    declared = {"D_real": "discriminator", "G_GAN": "generator", "D_gp": "reconstruction / regularisation"}
    assert group_of("D_real", declared) == "discriminator" and group_of("G_GAN", declared) == "generator"
    assert group_of("D_gp", declared) == group_of("undeclared") == "reconstruction / regularisation"
    assert group_of("lr_G") is None and group_of("it_s") is None


def test_csv_export_matches_metrics_jsonl(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rng = np.random.default_rng(0)
    recs = [{"step": i, "time": 100.0 + i, "D_real": float(rng.random()), "G": float(rng.random())}
            for i in range(1, 301)]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    r = MetricsReader(path)
    r.poll()
    n = export_csv(tmp_path / "out.csv", {"run": r}, None, 0.6)
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert n == len(rows) == 600
    g = [row for row in rows if row["key"] == "G"]
    assert [float(x["value"]) for x in g] == [rec["G"] for rec in recs]
    assert [int(x["step"]) for x in g] == list(range(1, 301))
    assert np.allclose([float(x["smoothed"]) for x in g], smooth(np.array([rec["G"] for rec in recs]), 0.6))
    # TensorBoard's debiased EMA: the first smoothed value is the first value
    assert float(g[0]["smoothed"]) == pytest.approx(recs[0]["G"])


def test_smoothing_equals_the_step_by_step_debiased_ema():
    """The vectorised EMA (chunks as matrix rows, carries chained) against TensorBoard's loop, for
    weights that make one chunk or hundreds; a Smoother fed in two parts gives the same curve;
    non-finite points are skipped."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=5000) * 3 + 1
    values[[10, 2000]] = np.nan
    for w in (0.3, 0.6, 0.9, 0.999):
        expected, last, count = values.copy(), 0.0, 0
        for i, v in enumerate(values):
            if np.isfinite(v):
                last, count = w * last + (1 - w) * v, count + 1
                expected[i] = last / (1 - w ** count)
        np.testing.assert_allclose(smooth(values, w), expected, rtol=1e-9, atol=1e-12)
        series, smoother = Series(), Smoother()
        for i, v in enumerate(values[:1234]):
            series.append(i, i, v)
        smoother(series, w)
        for i, v in enumerate(values[1234:], 1234):
            series.append(i, i, v)
        np.testing.assert_allclose(smoother(series, w), expected, rtol=1e-9, atol=1e-12)


def test_plot_of_200k_points_keeps_every_point_through_smoothing_zoom_and_log(qtbot, tmp_path):
    """Behaviour only; the UI thread's longest gap while plotting is a figure of bench/plot_gaps.py."""
    from studio.widgets.loss_plots import LossPlots
    path = tmp_path / "metrics.jsonl"
    n = 200_000
    steps = np.arange(1, n + 1)
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        for s, d, g in zip(steps, rng.random(n), rng.random(n) + 1):
            f.write(f'{{"step": {s}, "time": {s * 0.01}, "D_real": {d}, "G": {g}}}\n')
    reader = MetricsReader(path)
    reader.poll()
    plots = LossPlots()
    qtbot.addWidget(plots)
    plots.resize(900, 700)
    plots.show()
    meter = GapMeter().start()
    plots.set_runs({"big": reader})
    qtbot.wait(400)
    for w in (300, 900, 0, 600):  # re-smoothing, zoom and redraw with every point
        plots.smoothing.setValue(w)
        qtbot.wait(150)
    plots.plots["discriminator"].setXRange(1000, 5000)
    qtbot.wait(200)
    plots.logy.setChecked(True)
    qtbot.wait(200)
    meter.stop()
    assert len(plots.curves[("big", "G")].xData) == n  # every point kept
    assert len(meter.gaps) > 10  # the event loop ran while the plot redrew


def weight_field_sizes(page):
    return [(f.width(), f.height()) for f in page.form.weight_fields.values()]


def test_resume_after_stop_continues_to_the_runs_total_and_the_fields_keep_their_size(qtbot, window):
    """Resume without typing a number goes on to the run's own total (the box shows it); Stop and
    its message leave the form's fields as they were."""
    page = window.train_page
    tiny_job(page, steps=60, preset="pix2pix-sketches")  # a preset with a loss weight field
    page.form.size.setValue(32)
    page.form.extra.setText(page.form.extra.text() + " data.load_size=36 model.ngf=8 model.ndf=8 "
                                                      "train.decay_steps=0")
    qtbot.wait(100)
    before = weight_field_sizes(page)
    assert before and all(w > 30 and h > 15 for w, h in before)
    run = page.start_job()
    qtbot.waitUntil(lambda: status(run).get("step", 0) >= 10, timeout=600000)
    qtbot.waitUntil(lambda: page.runs.resume_steps.value() == 60, timeout=5000)  # the run's total, read once there
    page.stop_clicked()
    qtbot.waitUntil(lambda: status(run).get("state") == "stopped", timeout=600000)
    qtbot.waitUntil(lambda: page.runs.resume_button.isEnabled(), timeout=10000)
    qtbot.wait(600)  # a poll with the stopped run shown
    assert weight_field_sizes(page) == before
    stopped_at = status(run)["step"]
    assert 10 <= stopped_at < 60
    assert page.runs.resume_steps.value() == 60
    page.resume_clicked()  # nothing typed: on to the run's own total
    qtbot.waitUntil(lambda: status(run).get("state") == "finished", timeout=600000)
    assert status(run)["step"] == status(run)["total_steps"] == 60
    assert weight_field_sizes(page) == before
    qtbot.waitUntil(lambda: not page.jobs.is_running(run), timeout=60000)
    # a total the run has reached trains nothing: refused with a message, no job started
    page.runs.resume_steps.setValue(30)
    page.resume_clicked()
    assert "above 60" in page.form_message.full_text and not page.jobs.is_running(run)
    page.runs.resume_steps.setValue(70)  # a typed number: the new total
    page.resume_clicked()
    qtbot.waitUntil(lambda: status(run).get("state") == "finished" and status(run).get("step") == 70,
                    timeout=600000)


def test_runs_list_shows_five_rows_at_the_default_size(qtbot, window):
    page = window.train_page
    rows = page.runs.table.verticalHeader().defaultSectionSize()
    for preset in (page.form.preset.currentText(), "stargan-faces", "bicyclegan-sketches"):
        page.form.preset.setCurrentText(preset)
        qtbot.wait(50)
        assert window.size().width() == 1280 and window.size().height() == 800, preset
        assert page.runs.table.viewport().height() >= 5 * rows, preset
    for w in page.form.weight_fields.values():  # not squeezed: as tall as a spin box wants
        assert w.height() >= w.minimumSizeHint().height()


def test_default_preset_is_the_bundled_sketch2photos_and_says_so(qtbot, window):
    from trainer.modelfile import read_card
    from studio.library import BUNDLED
    f = window.train_page.form
    card = read_card(BUNDLED / "sketch2photo.safetensors")
    assert f.preset.currentText() == card["preset"] == "bicyclegan-sketches"
    text = f.description.full_text
    assert "sketch2photo" in text and "BicycleGAN" in text and "pix2pix" not in text


def test_the_job_writes_making_its_dataset_into_its_status(tmp_path, monkeypatch):
    """A tiny procedural dataset made by a real job: stage "dataset" with its count, from 0 to all,
    then stage "train"."""
    from trainer import registry, run
    from trainer.data import synth
    from trainer.rundir import RunDir
    writes = []
    real = RunDir.write_status

    def spy(self, **fields):
        out = real(self, **fields)
        writes.append(dict(out))
        return out
    monkeypatch.setattr(RunDir, "write_status", spy)
    monkeypatch.setattr(synth.os, "cpu_count", lambda: 1)  # made in this process, no pool
    cfg = registry.load_config("cgan-shapes", ["data.synth_n=37", "data.image_size=16", "train.steps=2",
                                               "train.batch_size=4", "train.device='cpu'", "train.threads=1",
                                               "train.sample_every=0", "data.num_workers=0"])
    run.train(cfg, tmp_path / "run", log=lambda *a, **k: None, progress=False)
    making = [w for w in writes if w.get("stage") == "dataset"]
    assert making[0]["stage_done"] == 0 and making[0]["stage_total"] == 37
    assert making[-1]["stage_done"] == 37 and making[-1]["message"] == "making dataset shapes 37 / 37"
    done = [w["stage_done"] for w in making]
    assert done == sorted(done)
    assert writes[0]["stage"] == "starting"
    after = writes[writes.index(making[-1]) + 1:]
    assert after and all(w["stage"] == "train" for w in after) and after[-1]["state"] == "finished"
    # the faces dataset counts its counterfactuals too: it reaches n at its very end, never past it
    seen = []
    synth.synthesize("faces", tmp_path / "faces", n=20, size=16, workers=1, progress=lambda i, n: seen.append((i, n)))
    assert seen[-1] == (20, 20) and [i for i, _ in seen] == sorted(i for i, _ in seen)
    assert sum(1 for i, _ in seen if i == 20) == 1  # not stuck at 100 % while the counterfactuals are drawn


def test_page_shows_the_data_stage_instead_of_step_0(qtbot, window, tmp_path):
    import socket
    run = tmp_path / "making"
    run.mkdir()
    (run / "status.json").write_text(json.dumps({
        "state": "running", "step": 0, "total_steps": 1000, "method": "stargan", "pid": os.getpid(),
        "host": socket.gethostname(), "stage": "dataset", "stage_done": 4500, "stage_total": 20000,
        "message": "making dataset faces 4,500 / 20,000"}))
    page = window.train_page
    page.open_run(run)
    page.poll()
    assert page.monitor.stats.full_text.startswith("preparing data 22 %")
    stats = page.monitor.stats.full_text
    assert "making dataset faces 4,500 / 20,000" in stats and "step 0" not in stats
    assert page.monitor.progress.text() == "preparing data 22 %"
    row = next(r for r in range(page.runs.table.rowCount()) if page.runs.table.item(r, 0).text() == "making")
    assert page.runs.table.item(row, 3).text() == "preparing data 22 %"
    status = json.loads((run / "status.json").read_text())
    status.update(stage="train", step=40, it_s=2.0, eta_s=480)
    (run / "status.json").write_text(json.dumps(status))
    page.poll()
    assert page.monitor.stats.full_text.startswith("running · step 40 / 1000 · 2.00 it/s")
    assert page.monitor.progress.value() == 40 and page.monitor.progress.text() == "40 / 1000"
    # a run folder without a status yet (a job starting): neither "0 / 1" nor "step 0 / 0"
    from studio.pages.train.monitor import stats_text
    page.monitor.show_run(str(run), {}, "starting", None, None)
    assert page.monitor.progress.text() == "starting"
    assert stats_text({}, "starting", None).startswith("starting · no status yet")
