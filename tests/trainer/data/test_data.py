"""Aligned layout, the step sampler, the procedural sketches and their synthesis."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from trainer.data.aligned import AlignedDataset
from trainer.data.imageio import ImageError
from trainer.data.sampler import StepSampler
from trainer.data.sketches import render
from trainer.data.shapes import KINDS
from trainer.data.synth import split_counts, synthesize


def make_aligned(root, n=3, size=16):
    (root / "train").mkdir(parents=True)
    for i in range(n):
        pair = Image.new("RGB", (2 * size, size), (200, 0, 0))
        pair.paste(Image.new("RGB", (size, size), (0, 0, 200)), (size, 0))
        pair.save(root / "train" / f"{i}.png")
    return root


def test_aligned_splits_pairs_and_direction(tmp_path):
    root = make_aligned(tmp_path / "d")
    ab = AlignedDataset(root, "train", image_size=16, load_size=18)[(0, 123)]
    assert ab["A"].shape == (3, 16, 16) and ab["A"].min() >= -1 and ab["A"].max() <= 1
    assert ab["A"][0].mean() > 0.5 and ab["B"][2].mean() > 0.5  # A red, B blue
    ba = AlignedDataset(root, "train", image_size=16, direction="BtoA")[(0, 123)]
    assert torch.equal(ba["A"], ab["B"]) and torch.equal(ba["B"], ab["A"])


def test_augmentation_is_a_function_of_the_seed(tmp_path):
    root = make_aligned(tmp_path / "d", size=32)
    im = np.random.default_rng(0).integers(0, 255, (32, 64, 3), dtype=np.uint8)
    Image.fromarray(im).save(root / "train" / "0.png")
    ds = AlignedDataset(root, "train", image_size=24, load_size=32)
    assert torch.equal(ds[(0, 7)]["A"], ds[(0, 7)]["A"])
    assert not all(torch.equal(ds[(0, 7)]["A"], ds[(0, s)]["A"]) for s in range(8, 16))
    assert ds[(0, None)]["A"].shape == (3, 24, 24)


def test_missing_phase_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ImageError, match="aligned layout"):
        AlignedDataset(tmp_path, "train")


def test_step_sampler_resumes_mid_epoch_and_shards():
    def take(s, n):
        it = iter(s)
        return [next(it) for _ in range(n)]
    full = take(StepSampler(10, batch_size=3, seed=5), 30)
    resumed = take(StepSampler(10, batch_size=3, seed=5, start_step=4), 18)
    assert resumed == full[12:30]
    assert sorted(i for i, _ in full[:10]) == list(range(10))  # each epoch is a permutation
    r0 = take(StepSampler(10, 1, seed=5, rank=0, world_size=2), 5)
    r1 = take(StepSampler(10, 1, seed=5, rank=1, world_size=2), 5)
    assert sorted(i for i, _ in r0 + r1) == list(range(10))


def test_sketches_are_deterministic_and_varied():
    p1, s1, l1 = render(3, 64)
    p2, s2, l2 = render(3, 64)
    assert np.array_equal(np.asarray(p1), np.asarray(p2)) and l1 == l2
    p3, _, _ = render(4, 64)
    assert not np.array_equal(np.asarray(p1), np.asarray(p3))
    kinds = {k for seed in range(60) for k in render(seed, 32)[2]["objects"]}
    assert kinds == set(KINDS)


def test_sketch_looks_like_a_drawing():
    """Black strokes on white: mostly white, some dark ink, nearly no colour."""
    for seed in range(5):
        _, sketch, labels = render(seed, 128)
        arr = np.asarray(sketch).astype(int)
        ink = (arr.mean(axis=2) < 128).mean()
        assert 0.01 < ink < 0.25, (seed, ink)
        assert (arr.mean(axis=2) > 240).mean() > 0.6
        assert np.abs(arr[..., 0] - arr[..., 2]).max() == 0
        assert 1 <= labels["count"] <= 3


def test_colour_varies_independently_of_shape():
    """The same object kind comes out in many hues."""
    hues = []
    for seed in range(40):
        photo, _, labels = render(seed, 32, kinds=["ball"], count=1)
        hsv = np.asarray(photo.convert("HSV")).reshape(-1, 3)
        sat = hsv[hsv[:, 1] > 120]
        if len(sat):
            hues.append(int(np.median(sat[:, 0])) // 32)
    assert len(set(hues)) >= 5


def test_synth_writes_the_aligned_layout(tmp_path):
    out = synthesize("sketches", tmp_path / "s", n=20, size=32, workers=1)
    counts = split_counts(20)
    for split in ("train", "val", "test"):
        assert len(list((out / split).glob("*.png"))) == counts[split]
    first = Image.open(next((out / "train").glob("*.png")))
    assert first.size == (64, 32)
    labels = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    assert len(labels) == 20 and {"file", "objects", "count"} <= set(labels[0])
    assert len(AlignedDataset(out, "train", image_size=32)) == counts["train"]
    with pytest.raises(FileExistsError):
        synthesize("sketches", out, n=2, size=32)
