"""Training jobs started from the studio run at a lower CPU priority, so the canvas stays live."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.name != "posix", reason="POSIX nice values")
def test_a_studio_job_runs_below_the_studios_priority(qtbot, tmp_path):
    from studio.jobs import JOB_NICE, JobManager
    jobs = JobManager()
    run = tmp_path / "run"
    pid = jobs.start("pix2pix-sketches", run, ["train.steps=100000", "data.synth_n=40", "data.image_size=16",
                                               "train.device='cpu'"])
    try:
        want = min(19, os.getpriority(os.PRIO_PROCESS, 0) + JOB_NICE)
        qtbot.waitUntil(lambda: os.getpriority(os.PRIO_PROCESS, pid) == want, timeout=60000)
    finally:
        jobs.stop(run, grace_ms=100)
        qtbot.waitUntil(lambda: not jobs.is_running(run), timeout=60000)


@pytest.mark.skipif(os.name != "posix", reason="POSIX nice values")
def test_cli_nice_lowers_the_priority_and_refuses_out_of_range():
    code = "import os; from trainer.cli import main; main(['--nice', '3', 'presets']); print('NICE', os.nice(0))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert f"NICE {min(19, os.nice(0) + 3)}" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "trainer", "--nice", "25", "presets"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--nice" in bad.stderr
