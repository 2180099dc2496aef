"""The run loop's parts on their own (issue 27): the stop semantics, the sample-diversity hook read
through the Method contract, nets that adapt checkpoint state, and no attribute probing."""
import ast
import signal
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import ROOT
from trainer.distributed import World
from trainer.nets.adapt import AdaptsState
from trainer.run.job import Job
from trainer.run.periodic import PeriodicWork
from trainer.run.signals import StopRequested, StopSignals
from trainer.rundir import RunDir


def test_the_stop_signals_count_as_documented():
    said = []
    stop = StopSignals(said.append)
    with pytest.raises(StopRequested):  # while starting: at once
        stop._on_signal(signal.SIGTERM, None)
    assert stop.requested and stop.count == 1

    stop = StopSignals(said.append)
    assert stop.training_begins() is False
    stop._on_signal(signal.SIGINT, None)  # while training: ends the step, checkpoints
    assert stop.requested and "saving a checkpoint" in said[-1]
    stop._on_signal(signal.SIGINT, None)  # again: only says so
    assert "once more quits at once" in said[-1]
    with pytest.raises(KeyboardInterrupt):  # a third: at once, without the checkpoint
        stop._on_signal(signal.SIGINT, None)


def test_the_handlers_are_put_back():
    before = signal.getsignal(signal.SIGTERM)
    stop = StopSignals(lambda *a: None)
    stop.install()
    assert signal.getsignal(signal.SIGTERM) == stop._on_signal
    stop.restore()
    assert signal.getsignal(signal.SIGTERM) == before


class _Sampler:
    """Just what PeriodicWork.sample reads of a Method."""

    def __init__(self, outputs):
        self.outputs = outputs

    def sample(self, batch):
        from PIL import Image
        return Image.new("RGB", (8, 8))

    def sample_outputs(self):
        return self.outputs


@pytest.mark.parametrize("outputs", [None, torch.linspace(-1, 1, 4 * 3 * 8 * 8).reshape(4, 3, 8, 8)])
def test_the_sample_diversity_comes_from_sample_outputs(tmp_path, outputs):
    cfg = SimpleNamespace(train=SimpleNamespace(steps=10, sample_every=5, log_every=100, checkpoint_every=0,
                                                keep_checkpoints=1))
    rd = RunDir(tmp_path / "r")
    rd.path.mkdir()
    job = Job(cfg=cfg, rd=rd, world=World(), device=torch.device("cpu"), say=lambda *a: None, resume=False,
              threads_before=1, step=5, method=_Sampler(outputs), preview={})
    work = PeriodicWork(job, progress=False)
    work.sample()
    assert rd.sample_path(5).is_file()
    assert ("sample_diversity" in work.extra) == (outputs is not None)


def test_the_latent_encoder_adapts_checkpoint_state():
    from trainer.nets.latent_encoder import LatentEncoder
    assert isinstance(LatentEncoder(nz=2, nef=4, n_blocks=2, grid=2), AdaptsState)


def test_the_loop_probes_no_attributes():
    """The Method contract is read as declared: no getattr / hasattr / vars in trainer/run."""
    found = []
    for path in sorted((ROOT / "trainer" / "run").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("getattr", "hasattr", "vars"):
                found.append(f"{path.name}:{node.lineno} {node.func.id}")
    assert not found, found
