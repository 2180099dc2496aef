"""The model library's one-line method and card summary, from the card alone."""
from pathlib import Path

from studio.library import ModelEntry


def card(nz=None, metrics=None):
    args = {"input_nc": 3, "output_nc": 3, "num_downs": 7, "ngf": 32}
    if nz is not None:
        args["nz"] = nz
    return {"method": "pix2pix", "task": "sketch2photo", "image_size": 128, "nets": {"G": {"name": "unet", "args": args}},
            "training": {"preset": "bicyclegan-sketches", "steps": 28000, "seconds": 7703.0, "dataset": "sketches"},
            "eval": {"metrics": metrics or {}}}


def test_a_pix2pix_generator_with_a_latent_code_is_named_bicyclegan():
    assert ModelEntry(Path("a.safetensors"), card(nz=16), "bundled").method == "bicyclegan"
    assert ModelEntry(Path("a.safetensors"), card(nz=0), "bundled").method == "pix2pix"
    assert ModelEntry(Path("a.safetensors"), card(), "bundled").method == "pix2pix"
    assert ModelEntry(Path("a.safetensors"), {"method": "stargan"}, "user").method == "stargan"


def test_summary_shows_the_models_own_scores_not_the_references():
    metrics = {"n": 500, "fid": 5.64, "saturation_output": 0.402, "saturation_real": 0.368, "saturation_ratio": 1.09,
               "edge_f1": 0.718, "edge_f1_real": 0.728, "l1_to_photo": 0.189, "object_accuracy": 0.802,
               "object_accuracy_real": 0.958, "evaluator_held_out_accuracy": 0.962}
    text = ModelEntry(Path("m.safetensors"), card(nz=16, metrics=metrics), "bundled").summary()
    assert text.splitlines()[0] == "bicyclegan · sketch2photo · 128 px"
    assert "bicyclegan-sketches, 28000 steps, 128 min on sketches" in text
    assert "object_accuracy 0.802" in text and "fid 5.64" in text
    assert "_real" not in text and "held_out" not in text


def test_summary_says_where_the_latent_codes_are_drawn_from():
    plain = ModelEntry(Path("m.safetensors"), card(nz=16), "bundled").summary()
    fitted = ModelEntry(Path("m.safetensors"), {**card(nz=16), "latent_prior": {"name": "posterior", "images": 2000}},
                        "bundled").summary()
    assert "codes:" not in plain
    assert "codes: a Gaussian fitted to 2000 training photos' codes" in fitted.splitlines()


def _card_file(path, card_json: str):
    import torch
    from safetensors.torch import save_file
    save_file({"G.w": torch.zeros(2)}, str(path), metadata={"gan_studio": card_json})
    return path


def test_an_unreadable_file_in_the_models_folder_is_listed_never_fatal(tmp_path):
    from studio.library import scan
    from tests.tiny_models import pix2pix
    pix2pix(tmp_path / "good.safetensors")
    _card_file(tmp_path / "list.safetensors", "[1, 2, 3]")
    _card_file(tmp_path / "huge.safetensors", '{"method": "pix2pix", "task": "sketch2photo", "image_size": 100000}')
    (tmp_path / "text.safetensors").write_text("hello")
    logged = []
    entries = {e.name: e for e in scan(tmp_path, "user", log=logged.append)}
    assert set(entries) == {"good", "list", "huge", "text"}
    assert not entries["good"].unreadable and entries["good"].method == "pix2pix"
    for name, words in (("list", "JSON list"), ("huge", "image_size"), ("text", "not a model file")):
        e = entries[name]
        assert e.unreadable and e.method == "unreadable" and words in e.error
        assert e.summary().startswith("unreadable: ") and words in e.summary()
        assert e.page in ("photo",)  # a page that shows the reason when chosen, never a crash
    assert len(logged) == 3


def test_card_text_is_shown_as_plain_text_never_markup():
    from PySide6.QtGui import Qt

    from studio.library import plain_text
    hostile = {"method": "<img src='http://example.com/x.png'>", "task": "<b>bold</b> &lt;",
               "image_size": 64, "training": {"preset": "<a href='x'>click</a>", "steps": 1}}
    text = ModelEntry(Path("m.safetensors"), hostile, "user").summary()
    assert not Qt.mightBeRichText(text)
    assert "click" in text and "bold" in text
    assert not Qt.mightBeRichText(plain_text("<b>x</b>\nsecond line"))
    assert plain_text("plain\n<b>later lines stay as they are</b>").endswith("<b>later lines stay as they are</b>")
    odd = ModelEntry(Path("m.safetensors"), {"method": "pix2pix", "training": [1, 2]}, "user").summary()
    assert "pix2pix" in odd  # a card odd beyond the checks: still a summary
