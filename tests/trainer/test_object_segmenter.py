"""The learned object segmenter (trainer.object_segmenter): its targets, the seed-and-grow step,
and the bundled file's held-out score."""
import threading
from concurrent.futures import CancelledError

import numpy as np
import pytest
import torch
from torch import nn

from trainer import object_segmenter
from trainer.modelfile import ModelFileError


def test_targets_keep_the_seeds_of_touching_objects_apart():
    masks = np.zeros((2, 128, 128), np.float32)
    masks[0, 20:60, 20:64] = 1  # two squares side by side, touching along x = 64
    masks[1, 20:60, 64:100] = 1
    fg, seed = object_segmenter.targets(masks, 128)
    assert fg.sum() == 40 * 80 and fg[10, 10] == 0
    assert seed[40, 40] == 1 and seed[40, 80] == 1
    assert seed[40, 62:66].sum() == 0 and seed[40, 58:60].all()  # a 2 px margin either side of the seam
    assert seed[21, 40] == 0  # and from the background
    assert object_segmenter.targets(np.zeros((0, 32, 32), np.float32), 32).shape == (2, 32, 32)


class Maps(nn.Module):
    """A stand-in net that returns fixed foreground and seed maps (in the U-Net's tanh range)."""

    def __init__(self, fg, seed):
        super().__init__()
        self.out = torch.stack([fg, seed]).float()[None] * 2 - 1

    def forward(self, x):
        return self.out.expand(x.shape[0], -1, -1, -1)


def test_segment_grows_each_seed_over_the_foreground_and_drops_specks():
    fg = torch.zeros(128, 128)
    fg[20:60, 20:100] = 1  # one blob of foreground ...
    seed = torch.zeros(128, 128)
    seed[24:56, 25:55] = 1  # ... holding two seeds: two objects
    seed[24:56, 64:92] = 1
    seed[100, 100] = 1  # a one-pixel speck outside: no object
    lab = object_segmenter.segment(Maps(fg, seed), torch.zeros(2, 3, 128, 128))
    assert lab.shape == (2, 128, 128) and int(lab.max()) == 2
    assert (lab[:, 20:60, 20:59] == 1).all() and (lab[:, 20:60, 60:98] == 2).all()  # split near the middle
    reach = round(object_segmenter.MAX_GROWTH * 128)  # 6 px: foreground farther from every seed stays 0
    assert (lab[:, 20:60, 92 + reach:100] == 0).all()
    assert (lab[:, fg == 0] == 0).all()
    # another size comes back at its own size
    assert object_segmenter.segment(Maps(fg, seed), torch.zeros(1, 1, 64, 96)).shape == (1, 64, 96)
    # a stop event: not set, the same labels; set (its render cancelled), CancelledError before any work
    stop = threading.Event()
    assert torch.equal(object_segmenter.segment(Maps(fg, seed), torch.zeros(2, 3, 128, 128), stop), lab)
    stop.set()
    with pytest.raises(CancelledError):
        object_segmenter.object_regions(torch.zeros(2, 3, 128, 128), Maps(fg, seed), stop)


def test_the_bundled_segmenter_tells_touching_objects_apart(tmp_path):
    """Held-out scenes (the evaluators' held-out seeds): most scenes of two objects have each
    object found exactly, where the enclosure rule joins half of them."""
    from trainer.evaluators.specs import HELD_OUT_SEED
    net = object_segmenter.load()
    sketches, _, masks = object_segmenter.make_examples(HELD_OUT_SEED, 48, workers=1)
    scores = object_segmenter.exact_rate(net, sketches, masks)
    assert scores["exact"] >= 0.85 and scores["split_objects"] <= 0.05, scores
    with pytest.raises(ModelFileError, match="not an object segmenter"):
        object_segmenter.load(object_segmenter.ASSETS.parent / "models" / "superres-x4.safetensors")


def test_cli_segmenter_train_writes_a_scored_segmenter(tmp_path):
    from trainer.cli import main
    from trainer.modelfile import read_card
    out = tmp_path / "s.safetensors"
    assert main(["segmenter", "train", "-o", str(out), "--n", "8", "--held-out", "4", "--steps", "1",
                 "--batch-size", "2", "--width", "4", "--workers", "1"]) == 0
    card = read_card(out)
    assert card["kind"] == "segmenter" and card["width"] == 4 and card["held_out"]["n"] == 4
    net = object_segmenter.load(out)
    assert object_segmenter.segment(net, torch.zeros(1, 3, 64, 64)).shape == (1, 64, 64)


@pytest.mark.parametrize("args", [["--width", "0"], ["--steps", "0"], ["--n", "0"], ["--held-out", "-1"],
                                  ["--batch-size", "0"], ["--width", "two"]])
def test_cli_segmenter_train_refuses_bad_values_before_drawing(tmp_path, capsys, args):
    from trainer.cli import main
    with pytest.raises(SystemExit) as e:
        main(["segmenter", "train", "-o", str(tmp_path / "s.safetensors"), *args])
    assert e.value.code == 2 and args[0] in capsys.readouterr().err
    assert not (tmp_path / "s.safetensors").exists()
    with pytest.raises(SystemExit):  # a folder is not a file name
        main(["segmenter", "train", "-o", str(tmp_path)])
