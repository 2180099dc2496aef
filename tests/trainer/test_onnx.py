"""ONNX export of every generator (``gan-trainer export MODEL --onnx FILE``): onnxruntime against
the translator's tensor API (torch) on tiny random models, batch and spatial size dynamic."""
import json

import numpy as np
import pytest
import torch

from tests.trainer.test_tensor_api import tiny  # noqa: F401  (the fixture)
from trainer import inference
from trainer.cli import main
from trainer.onnx_export import export_onnx

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -e '.[test]'); "
                                                "the ONNX graphs cannot be run")
onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install -e '.[test]')")

TOLERANCE = 1e-4
ERRORS = {}  # case -> max abs error, printed at the end (pytest -s)


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def check(case, path, feeds: dict, expected: torch.Tensor):
    got = session(path).run(None, {k: np.ascontiguousarray(v.numpy() if isinstance(v, torch.Tensor) else v)
                                   for k, v in feeds.items()})[0]
    assert got.shape == tuple(expected.shape)
    err = float(np.abs(got - expected.numpy()).max())
    ERRORS[case] = max(err, ERRORS.get(case, 0.0))
    assert err < TOLERANCE, f"{case}: onnxruntime differs from torch by {err:.2e}"


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print("\nONNX max abs error (onnxruntime vs torch):")
    for case, err in sorted(ERRORS.items()):
        print(f"  {case:34s} {err:.2e}")


def batch(n, h, w, seed=0, channels=3):
    return torch.rand(n, channels, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# (kind, export options, [(controls for run_tensor, shapes (N, H, W))])
IMAGE_CASES = [
    ("pix2pix", {}, {"mode": "deterministic"}, [(3, 32, 32), (1, 64, 32)]),
    ("pix2pix", {"mode": "eval"}, {"mode": "eval"}, [(3, 32, 32), (2, 64, 64)]),
    ("cyclegan", {}, None, [(3, 32, 32), (1, 48, 40)]),
    ("residual_cyclegan", {}, None, [(3, 32, 32), (2, 24, 36)]),
    ("srgan", {}, {"tile": 2048}, [(3, 8, 8), (1, 12, 10)]),  # one tile: the graph is untiled
    ("fast_style", {}, {}, [(3, 32, 32), (2, 36, 28)]),
]


@pytest.mark.parametrize("kind, options, controls, shapes", IMAGE_CASES,
                         ids=[f"{c[0]}-{c[1].get('mode', 'default')}" for c in IMAGE_CASES])
def test_image_generators(tiny, tmp_path, kind, options, controls, shapes):
    t = inference.load(tiny(kind))
    written = export_onnx(tiny(kind), tmp_path / "g.onnx", **options)
    if kind.endswith("cyclegan"):  # a pair: one file per direction
        assert [p.name for p, _ in written] == ["g_AtoB.onnx", "g_BtoA.onnx"]
    for path, doc in written:
        assert "image" in doc
        ctl = controls if controls is not None else {"direction": doc["direction"]}
        for i, (n, h, w) in enumerate(shapes):
            x = batch(n, h, w, seed=i)
            check(f"{kind} {options.get('mode', '')} {doc.get('direction', '')}".strip(), path, {"image": x},
                  t.run_tensor(x, **ctl))


def test_bicycle_gan_image_and_latent_code(tiny, tmp_path):
    t = inference.load(tiny("bicycle"))
    (path, doc), = export_onnx(tiny("bicycle"), tmp_path / "b.onnx")  # the card's mode: eval
    assert [i.name for i in session(path).get_inputs()] == ["image", "z"]
    for i, (n, h, w) in enumerate([(3, 32, 32), (1, 64, 96)]):
        x, z = batch(n, h, w, seed=i), torch.randn(n, 4, generator=torch.Generator().manual_seed(i))
        check("bicycle eval", path, {"image": x, "z": z}, t.run_tensor(x, z=z, mode="eval"))
    (path, _), = export_onnx(tiny("bicycle"), tmp_path / "d.onnx", mode="deterministic")
    x, z = batch(2, 32, 32), torch.randn(2, 4)
    check("bicycle deterministic", path, {"image": x, "z": z}, t.run_tensor(x, z=z, mode="deterministic"))


def test_bicycle_gan_with_per_object_codes_takes_the_code_map(tiny, tmp_path):
    """The graph's ``regions`` input is what the translator's ``code_map`` paints from the seed."""
    t = inference.load(tiny("bicycle_objects"))
    (path, doc), = export_onnx(tiny("bicycle_objects"), tmp_path / "o.onnx")
    assert [i.name for i in session(path).get_inputs()] == ["image", "z", "regions"] and "regions" in doc
    import onnx
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert "metadata region_colours" in doc["regions"]  # the bank travels with the graph, as the model file's
    torch.testing.assert_close(torch.tensor(json.loads(props["region_colours"])), t.region_colours.cpu(), atol=1e-6,
                               rtol=0)
    for i, (n, h, w) in enumerate([(2, 32, 32), (1, 64, 96)]):
        x, z = batch(n, h, w, seed=i), torch.randn(n, 4, generator=torch.Generator().manual_seed(i))
        x[:, :, 8:24, 8:24] = 1  # a white square with a dark frame: an object for the enclosure or the net
        x[:, :, 6:8, 6:26] = x[:, :, 24:26, 6:26] = x[:, :, 6:26, 6:8] = x[:, :, 6:26, 24:26] = -1
        check("bicycle per-object codes", path, {"image": x, "z": z, "regions": t.code_map(x, seed=5)},
              t.run_tensor(x, z=z, mode="eval", seed=5))


@pytest.mark.parametrize("kind", ["stargan", "attention_stargan"])
def test_stargan_domain_vector_is_an_input(tiny, tmp_path, kind):
    t = inference.load(tiny(kind))
    (path, doc), = export_onnx(tiny(kind), tmp_path / "s.onnx")
    width = len(t.domains)
    assert [i.name for i in session(path).get_inputs()] == ["image", "c"] and "target vector" in doc["c"]
    for i, (n, h, w) in enumerate([(3, 32, 32), (2, 40, 24)]):
        x, c = batch(n, h, w, seed=i), torch.rand(n, width, generator=torch.Generator().manual_seed(i))
        check(kind, path, {"image": x, "c": c}, t.run_tensor(x, c=c))


@pytest.mark.parametrize("latent", ["z", "w"])
def test_stylegan_latent_psi_and_noise_strength_are_inputs(tiny, tmp_path, latent):
    t = inference.load(tiny("stylegan"))
    with torch.no_grad():
        for m in t.G.modules():  # a visible noise strength, in the graph and in torch alike
            if type(m).__name__ == "NoiseInjection":
                m.weight.fill_(0.5)
    tensors = {f"G.{k}": v for k, v in t.G.state_dict().items()}
    tensors["latent_avg"] = t.mean_w
    from trainer.modelfile import save_model
    model = save_model(tmp_path / "s.safetensors", tensors, t.card)
    (path, doc), = export_onnx(model, tmp_path / "s.onnx", latent=latent)
    assert [i.name for i in session(path).get_inputs()] == [latent, "psi", "noise_strength"]
    d, n_latent = t.G.style_dim, t.G.n_latent
    for n, psi, strength in [(3, 0.6, 0.8), (1, 1.0, 0.0), (2, 0.0, 2.0)]:
        shape = (n, d) if latent == "z" else (n, n_latent, d)
        lat = torch.randn(*shape, generator=torch.Generator().manual_seed(n))
        expected = t.run_tensor(**{latent: lat}, psi=psi, noise_mode="stored", noise_strength=strength)
        check(f"stylegan {latent}", path, {latent: lat, "psi": np.array(psi, np.float32),
                                           "noise_strength": np.array(strength, np.float32)}, expected)


def test_dcgan_z_and_class_labels(tiny, tmp_path):
    t = inference.load(tiny("dcgan"))
    (path, doc), = export_onnx(tiny("dcgan"), tmp_path / "d.onnx")
    assert [i.name for i in session(path).get_inputs()] == ["z", "labels"]
    for n in (3, 1):
        z, labels = torch.randn(n, 8, generator=torch.Generator().manual_seed(n)), torch.arange(n) % 3
        check("dcgan", path, {"z": z, "labels": labels}, t.run_tensor(z=z, labels=labels))


def test_graph_carries_the_model_card_and_input_documentation(tiny, tmp_path):
    (path, doc), = export_onnx(tiny("stargan"), tmp_path / "s.onnx")
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["gan_studio"])["method"] == "stargan"
    assert json.loads(props["inputs"]) == doc


def test_cli_export_onnx_and_its_errors(tiny, tmp_path, capsys):
    assert main(["export", str(tiny("stylegan")), "--onnx", str(tmp_path / "s.onnx"), "--latent", "w"]) == 0
    out = capsys.readouterr().out
    assert "s.onnx" in out and "psi" in out
    assert [i.name for i in session(tmp_path / "s.onnx").get_inputs()] == ["w", "psi", "noise_strength"]
    assert main(["export", str(tmp_path / "missing.safetensors"), "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "no such model file" in capsys.readouterr().err


def test_bicycle_gan_with_object_colours_exports_the_generator_and_says_so(tiny, tmp_path):
    """A model whose colours per object come after G (trainer.object_colours): the graph is G (the
    translator with the control off), its metadata says the transfer is not in it and carries the
    bank."""
    import onnx
    from trainer.modelfile import load_model, save_model
    tensors, card = load_model(tiny("bicycle"))
    bank = torch.tensor([[0.8, -0.6, -0.6], [-0.6, 0.7, -0.4]])
    path = save_model(tmp_path / "c.safetensors", {**tensors, "region_colours": bank},
                      {**card, "task": "sketch2photo", "object_colours": "transfer"})
    t = inference.load(path)
    assert t.object_colours is not None
    (onnx_path, _), = export_onnx(path, tmp_path / "c.onnx")
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert props["object_colours"].startswith("not in this graph")
    torch.testing.assert_close(torch.tensor(json.loads(props["region_colours"])), bank, atol=1e-6, rtol=0)
    x, z = batch(1, 32, 32), torch.randn(1, 4)
    check("bicycle object colours", onnx_path, {"image": x, "z": z},
          t.run_tensor(x, z=z, mode="eval", object_colours=False))
