"""Evaluators (classifiers on procedural data), the in-domain Frechet distance, quality metrics,
and `gan-trainer eval` on tiny models."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, run_cli
from tests import tiny_models
from trainer.evaluators import Evaluator
from trainer.evaluators.specs import SPECS
from trainer.metrics import colourfulness, edge_agreement, frechet_distance, mean_l1, psnr, saturation, ssim

BUNDLED = ["sketches", "faces", "shapes-unpaired"]
# held-out accuracy each bundled evaluator reaches (the card's figure). Every head is at 0.99 or
# better; for sketches "accuracy" is all six counts of a scene right at once, so it sits lower.
FLOOR = {"sketches": 0.96, "faces": 0.99, "shapes-unpaired": 0.99}


def test_metrics_against_known_values():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert psnr(a, a) == 100.0 and ssim(a, a) == pytest.approx(1.0) and mean_l1(a, a) == 0.0
    b = np.clip(a.astype(int) + 16, 0, 255).astype(np.uint8)
    assert 20 < psnr(a, b) < 30 and ssim(a, b) < 1.0
    noisy = np.clip(a + rng.normal(0, 40, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, noisy) < ssim(a, b)
    assert saturation(np.full((4, 4, 3), 128, np.uint8)) == 0.0
    assert saturation(np.array([[[255, 0, 0]]], np.uint8)) == 1.0
    assert saturation(np.array([[[200, 100, 100]]], np.uint8)) == pytest.approx(0.5)
    assert colourfulness(np.full((4, 4, 3), 77, np.uint8)) == 0.0
    # flat pure red: rg = 1, yb = 0.5, no spread -> 0.3 * hypot(1, 0.5)
    assert colourfulness(np.array([[[255, 0, 0]]], np.uint8)) == pytest.approx(0.3 * np.hypot(1, 0.5))
    assert colourfulness(a) > colourfulness(np.repeat(a[..., :1], 3, -1)) == 0.0


def test_frechet_distance_of_gaussians():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 4))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    # mean shift of 1 in one dimension: FD = 1; scale 2 in one dimension: (2 - 1)^2 = 1
    assert frechet_distance(x, x + np.array([1.0, 0, 0, 0])) == pytest.approx(1.0, abs=1e-9)
    y = rng.normal(size=(200_000, 4)) * np.array([2.0, 1, 1, 1])
    assert frechet_distance(rng.normal(size=(200_000, 4)), y) == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError):
        frechet_distance(x[:1], x)


def test_edge_agreement_finds_the_sketch_in_its_photo():
    from trainer.data.sketches import render
    photo, sketch, _ = render(7, 128)
    own = edge_agreement(sketch, photo)["f1"]
    other = edge_agreement(sketch, render(8, 128)[0])["f1"]
    flat = edge_agreement(sketch, Image.new("RGB", (128, 128), (120, 90, 60)))
    assert own > 0.3 and own > 2 * other and flat["f1"] == 0.0


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_evaluators_are_accurate_on_held_out_real_images(name):
    ev = Evaluator.load(name)
    assert ev.card["held_out"]["accuracy"] >= FLOOR[name], ev.card["held_out"]
    assert all(v >= 0.99 for k, v in ev.card["held_out"].items() if k.startswith("acc_")), ev.card["held_out"]
    # fresh real images (seeds neither training nor the card's held-out set used) agree with the card
    spec = SPECS[name]
    examples = [spec.example(2_000_000_000 + k, ev.input_size) for k in range(60)]
    pred = ev.predict([e[0] for e in examples])
    true = {h: np.array([e[1][h] for e in examples]) for h in spec.heads}
    assert spec.score(pred, true)["accuracy"] >= FLOOR[name] - 0.06


def test_features_and_fid_identical_sets_zero_different_sets_more():
    from trainer.data.faces import draw_attributes, render
    from trainer.data.sketches import render as scene
    ev = Evaluator.load("faces")
    faces = [render(s, draw_attributes(s), 64) for s in range(40)]
    others = [render(s, draw_attributes(s), 64) for s in range(100, 140)]
    photos = [scene(s, 64)[0] for s in range(40)]
    f, g, h = ev.features(faces), ev.features(others), ev.features(photos)
    assert f.shape == (40, ev.net.features[1].out_features) and np.isfinite(f).all()
    assert np.allclose(ev.features(faces[:5]), f[:5], atol=1e-5)  # deterministic, batch-independent
    same, near, far = frechet_distance(f, f), frechet_distance(f, g), frechet_distance(f, h)
    assert same < 1e-3 * near and near < far


def test_evaluator_training_writes_a_loadable_scored_file(tmp_path):
    from trainer.evaluators.training import train
    out = tmp_path / "domain.safetensors"
    card = train("shapes-unpaired", out, n_train=32, n_held_out=16, steps=3, batch_size=8, width=4, workers=1,
                 input_size=24, log=None)
    ev = Evaluator.load(out)
    assert card["input_size"] == ev.input_size == 24  # it reads images at the size it was trained at
    assert set(card["held_out"]) == {"acc_domain", "accuracy"} and 0 <= ev.accuracy <= 1
    assert ev.card["training"]["steps"] == 3
    assert ev.predict([np.zeros((20, 30, 3), np.uint8)])["domain"].shape == (1,)
    assert "held_out_nuisance" not in card and card["training"]["nuisance"] is False


def test_nuisance_changes_the_chosen_half_within_range_and_keeps_the_scene():
    import torch
    from trainer.evaluators.training import nuisance
    x = torch.rand(64, 3, 32, 32) * 2 - 1
    y, picked = nuisance(x, torch.Generator().manual_seed(0), p=0.5)
    changed = (y != x).flatten(1).any(1)
    assert torch.equal(changed, picked)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert 16 < changed.sum() < 48 and torch.equal(y[~changed], x[~changed])
    # the blotches are smooth: the changed images still correlate with the originals
    corr = [np.corrcoef(x[i].flatten(), y[i].flatten())[0, 1] for i in torch.nonzero(changed)[:, 0].tolist()]
    assert np.mean(corr) > 0.5
    assert torch.equal(nuisance(x, torch.Generator().manual_seed(0), p=0.0)[0], x)


def test_sketches_evaluator_trains_under_nuisance_and_scores_both(tmp_path):
    from trainer.evaluators.training import train
    card = train("sketches", tmp_path / "s.safetensors", n_train=16, n_held_out=8, steps=2, batch_size=8, width=4,
                 workers=1, log=None)
    assert card["training"]["nuisance"] is True
    # counts are scored under nuisance too; the clean photo's look only on clean photos
    assert {"r2_saturation", "r2_colourfulness", "r2_brightness"} <= set(card["held_out"])
    assert set(card["held_out_nuisance"]) == {k for k in card["held_out"] if not k.startswith("r2_")}


def test_loading_a_generator_as_evaluator_is_refused(tmp_path):
    from trainer.modelfile import ModelFileError
    with pytest.raises(ModelFileError, match="not an evaluator"):
        Evaluator.load(tiny_models.pix2pix(tmp_path / "g.safetensors"))
    with pytest.raises(FileNotFoundError, match="gan-trainer evaluator train"):
        Evaluator.load("no-such-dataset")


EXPECTED = {
    "pix2pix": {"n", "fid", "saturation_output", "saturation_real", "saturation_ratio", "edge_f1", "edge_f1_real",
                "l1_to_photo", "object_accuracy", "object_accuracy_real", "objects_found", "extra_objects",
                "evaluator_held_out_accuracy"},
    "stargan": {"n_faces", "n_edits", "accuracy", "accuracy_overall", "all_targets_accuracy", "face_rate",
                "l1_to_counterfactual", "l1_input_to_counterfactual", "l1_ratio_to_baseline", "no_change_l1",
                "untouched_l1", "identity", "evaluator_held_out_accuracy"},
    "cyclegan": {"n", "AtoB", "BtoA", "evaluator_held_out_accuracy"},
    "stylegan": {"n", "psi", "fid", "fid_real_vs_real", "face_rate", "face_rate_real", "attributes",
                 "attributes_real", "mixing", "noise", "evaluator_held_out_accuracy"},
    "srgan": {"n", "scale", "psnr", "psnr_bicubic", "ssim", "ssim_bicubic", "psnr_gain"},
}


@pytest.mark.parametrize("method", ["pix2pix", "stargan", "cyclegan", "stylegan", "srgan"])
def test_eval_writes_every_metric_of_the_task(tmp_path, method):
    from trainer.scoring import evaluate
    model = getattr(tiny_models, {"srgan": "srresnet"}.get(method, method))(tmp_path / f"{method}.safetensors")
    extra = {"pairs": 3} if method == "stylegan" else {}
    report = evaluate(model, n=4, progress=False, picture=tmp_path / "picture.png", **extra)
    m = report["metrics"]
    assert set(m) == EXPECTED[method]
    numbers = [v for v in m.values() if isinstance(v, float)]
    assert numbers and all(np.isfinite(numbers))
    if method == "cyclegan":
        assert set(m["AtoB"]) == {"l1", "psnr", "l1_identity", "psnr_identity", "domain_accuracy"}
    if method == "stargan":
        assert set(m["accuracy"]) == set(tiny_models.DOMAINS) and m["n_edits"] == 4 * len(tiny_models.DOMAINS)
    if method == "stylegan":
        assert set(m["mixing"]) >= {"coarse_follows_source", "hair_follows_style", "skin_follows_style", "ideal"}
        assert set(m["mixing"]["ideal"]) == set(m["mixing"]) - {"pairs", "crossover", "ideal"}
        assert set(m["noise"]) == {"pairs", "attributes_unchanged", "pixel_change"}
        assert m["mixing"]["pairs"] == m["noise"]["pairs"] == 3
        # the 3x3 mixing grid under its three styles, then six noise variations, then what they are
        picture = Image.open(tmp_path / "picture.png")
        assert picture.width == 6 * 32 + 5 * 2 and picture.height > 5 * 32 + 4 * 2 + 20
        caption = np.asarray(picture.convert("L"))[5 * 32 + 4 * 2:]
        assert (caption < 128).mean() > 0.01  # words drawn under the grid
    if method == "stargan":
        assert set(m["identity"]) == {"shift", "baseline", "kept", "tolerance"}
        # 4 faces: the input, then each edit beside its ground truth
        assert Image.open(tmp_path / "picture.png").size == (11 * 32 + 10 * 2, 4 * 32 + 3 * 2)


def test_attribute_eval_scores_the_ground_truth_perfectly_and_doing_nothing_as_its_baseline(monkeypatch):
    """The fidelity measures against known answers: a translator that returns each edit's own
    counterfactual rendering scores zero everywhere; one that returns its input scores the
    do-nothing baseline (ratio 1) and leaves the untouched pixels and the no-change edit at zero."""
    from trainer.data.faces import render
    from trainer.evaluation import attributes
    seed_of, original = {}, attributes.procedural_items

    def items(n, size, domains, seed=attributes.EVAL_SEED):
        for k, (image, attrs, cf) in enumerate(original(n, size, domains, seed)):
            seed_of[id(image)] = (seed + k, attrs)
            yield image, attrs, cf
    monkeypatch.setattr(attributes, "procedural_items", items)

    class Fake:
        image_size = 64
        card = {"domains": ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]}

        def __init__(self, oracle):
            self.oracle = oracle

        def run_array(self, image, **labels):
            seed, attrs = seed_of[id(image)]
            if not self.oracle:
                return np.asarray(image)
            return np.asarray(render(seed, {**attrs, **labels}, 64))

    truth = attributes.evaluate(Fake(True), n=6, progress=False)
    assert truth["l1_to_counterfactual"] == 0.0 and truth["no_change_l1"] == 0.0
    assert truth["untouched_l1"] < 1e-3  # untouched: pixels no edit moves by 2 / 255 or more
    assert truth["identity"]["kept"] == 1.0 and truth["all_targets_accuracy"] >= 0.9
    nothing = attributes.evaluate(Fake(False), n=6, progress=False)
    assert nothing["l1_ratio_to_baseline"] == pytest.approx(1.0)
    assert nothing["no_change_l1"] == 0.0 and nothing["untouched_l1"] == 0.0
    assert nothing["accuracy_overall"] < 0.5  # nothing edited: the targets are not read


def test_sketch_eval_scores_an_oracle_as_the_real_photos_and_a_blank_as_nothing(monkeypatch):
    """The pix2pix metrics against known answers: a translator that returns each scene's own photo
    scores exactly what the real photos score; one that returns grey gets no scene right."""
    from trainer.evaluation import sketch
    items = list(sketch.procedural_items(24, 64))
    photo_of = {id(s): np.asarray(p.convert("RGB")) for s, p, _ in items}
    monkeypatch.setattr(sketch, "procedural_items", lambda n, size, **_: iter(items[:n]))

    class Fake:
        image_size = 64
        card = {}
        controls = []  # no seed: the evaluation passes none

        def __init__(self, fn):
            self.run_array = fn

    oracle = sketch.evaluate(Fake(lambda s: photo_of[id(s)]), n=24, progress=False)
    assert oracle["object_accuracy"] == oracle["object_accuracy_real"] >= 0.9
    assert oracle["objects_found"] >= 0.95 and oracle["extra_objects"] <= 0.1
    assert oracle["l1_to_photo"] == 0.0 and oracle["saturation_ratio"] == pytest.approx(1.0)
    assert oracle["fid"] == pytest.approx(0.0, abs=1e-6)
    blank = sketch.evaluate(Fake(lambda s: np.full((64, 64, 3), 128, np.uint8)), n=24, progress=False)
    # the evaluator learnt empty rooms too: a flat grey output shows no objects
    assert blank["object_accuracy"] == 0.0 and blank["objects_found"] < 0.1
    assert blank["saturation_output"] == 0.0
    assert blank["fid"] > 10 * max(oracle["fid"], 1e-3)


def test_eval_cli_prints_and_writes_json_and_the_card(tmp_path):
    from trainer.modelfile import read_card
    model = tiny_models.cyclegan(tmp_path / "c.safetensors")
    out = tmp_path / "report.json"
    r = run_cli("eval", model, "--n", "3", "-o", out, "--write-card", "--device", "auto")
    assert r.returncode == 0, r.stderr
    assert "AtoB" in r.stdout and "unpaired 3/3" in r.stderr
    report = json.loads(out.read_text())
    assert report["metrics"]["n"] == 3 and report["method"] == "cyclegan"
    assert read_card(model)["eval"]["metrics"] == report["metrics"]


def test_eval_reads_a_dataset_folder_and_reports_what_is_missing(tmp_path):
    from trainer.data.synth import synthesize
    from trainer.scoring import EvaluationError, evaluate
    data = synthesize("shapes-unpaired", tmp_path / "pair", n=40, size=32, workers=1)
    model = tiny_models.cyclegan(tmp_path / "c.safetensors")
    assert evaluate(model, data=data, n=2, progress=False)["metrics"]["n"] == 2
    with pytest.raises(EvaluationError, match="pairs.jsonl"):
        evaluate(model, data=tmp_path, n=2, progress=False)
    faces = synthesize("faces", tmp_path / "faces", n=40, size=32, workers=1)
    report = evaluate(tiny_models.stargan(tmp_path / "s.safetensors"), data=faces, n=2, progress=False)
    assert report["metrics"]["n_faces"] == 2


def test_inspect_prints_an_evaluators_card():
    r = run_cli("inspect", ROOT / "assets" / "evaluators" / "sketches.safetensors")
    assert r.returncode == 0, r.stderr
    assert "evaluator of sketches" in r.stdout and "count_mug(4)" in r.stdout
    assert "held_out:" in r.stdout and "accuracy" in r.stdout


def test_empty_scenes_are_part_of_the_sketches_evaluators_training():
    from trainer.data.sketches import render
    photo, sketch, labels = render(5, 64, count=0)
    from trainer.data.shapes import KINDS
    assert labels == {"objects": [], "count": 0} and photo.size == sketch.size == (64, 64)
    spec = SPECS["sketches"]
    empty = [spec.example(1_000_000_000 + k, 32)[1] for k in range(300)]
    n_empty = sum(all(t[f"count_{k}"] == 0 for k in KINDS) for t in empty)
    assert 3 <= n_empty <= 25  # about one in 25


def test_the_ideal_style_mix_scores_what_a_perfect_split_would():
    """Faces mixed by hand (the source seed's geometry, the style seed's colours and hair colour),
    read by the faces evaluator: the fidelity partner of the style-mixing measures."""
    from trainer.data.faces import draw_attributes, render
    from trainer.evaluation.style import ideal_mixes, mixing_measures
    a = draw_attributes(5)
    assert np.array_equal(np.asarray(render(5, a, 32, colours_seed=5)), np.asarray(render(5, a, 32)))
    assert not np.array_equal(np.asarray(render(5, a, 32, colours_seed=6)), np.asarray(render(5, a, 32)))
    ev = Evaluator.load("faces")
    ideal = mixing_measures(*(ev.predict(x) for x in ideal_mixes(60, 64, 123)))
    assert ideal["coarse_follows_source"] >= 0.85 and ideal["hair_follows_style"] >= 0.95
    assert ideal["skin_follows_style"] >= 0.85
    src, sty, mix = (ev.predict(x) for x in ideal_mixes(60, 64, 123))
    swapped = mixing_measures(sty, src, mix)  # the same mixes scored as if the seeds' roles were swapped
    assert swapped["coarse_follows_source"] <= 0.15 and swapped["hair_follows_style"] <= 0.05


def test_the_mixing_grid_puts_styles_on_top_and_sources_down_the_left():
    from trainer.evaluation.style import mixing_rows
    src, sty = [np.full((4, 4, 3), k, np.uint8) for k in (1, 2)], [np.full((4, 4, 3), k, np.uint8) for k in (3, 4, 5)]
    mixes = [[np.full((4, 4, 3), 10 * i + j, np.uint8) for j in range(3)] for i in range(2)]
    rows = mixing_rows(src, sty, mixes)
    assert [[int(a[0, 0, 0]) for a in row] for row in rows] == [[255, 3, 4, 5], [1, 0, 1, 2], [2, 10, 11, 12]]
    with pytest.raises(ValueError, match="2 sources x 3 styles"):
        mixing_rows(src, sty, mixes[:1])
    with pytest.raises(ValueError, match="2 sources x 3 styles"):
        mixing_rows(src, sty, [row[:2] for row in mixes])


@pytest.mark.parametrize("n", [0, -5, 2.5, True])
def test_eval_refuses_a_number_of_items_below_one(tmp_path, n):
    from trainer.errors import EvaluationError
    from trainer.scoring import evaluate
    with pytest.raises(EvaluationError, match=f"n = {n!r}: the number of test items"):
        evaluate(tiny_models.pix2pix(tmp_path / "m.safetensors"), n=n, progress=False)
