"""Image decoding never crashes: every mode converted, broken files reported by name."""
import io

import numpy as np
import pytest
from PIL import Image

from trainer.data.imageio import ImageError, image_from_array, open_image, scan_images


def save(im, path, **kw):
    im.save(path, **kw)
    return path


def test_modes_become_8bit_rgb(tmp_path):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    cases = {
        "cmyk.jpg": rgb.convert("CMYK"),
        "gray.png": rgb.convert("L"),
        "one_bit.png": rgb.convert("1"),
        "palette.png": rgb.convert("P"),
        "rgba.png": rgb.convert("RGBA"),
        "la.png": rgb.convert("LA"),
    }
    for name, im in cases.items():
        out = open_image(save(im, tmp_path / name))
        assert out.mode == "RGB" and out.size == (30, 20), name


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    arr = np.full((8, 8), 40000, dtype=np.uint16)
    path = save(Image.fromarray(arr), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")
    out = np.asarray(open_image(path))
    assert abs(int(out[0, 0, 0]) - round(40000 / 65535 * 255)) <= 1


def test_alpha_is_composited_on_white(tmp_path):
    im = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert np.asarray(open_image(save(im, tmp_path / "clear.png")))[0, 0].tolist() == [255, 255, 255]
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 0] * 256)
    pal.info["transparency"] = 0
    assert np.asarray(open_image(save(pal, tmp_path / "pal.png", transparency=0)))[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = save(im, tmp_path / "rotated.jpg", exif=exif.tobytes())
    assert open_image(path).size == (20, 40)


def test_broken_files_raise_clear_errors(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    good = io.BytesIO()
    Image.new("RGB", (64, 64), "blue").save(good, format="PNG")
    (tmp_path / "truncated.png").write_bytes(good.getvalue()[:60])
    for name, words in (("empty.png", "empty"), ("text.jpg", "not an image"), ("truncated.png", "truncated"),
                        ("missing.png", "no such file")):
        with pytest.raises(ImageError, match=words) as e:
            open_image(tmp_path / name)
        assert name in str(e.value)


def test_pixel_limit_refuses_bombs(tmp_path):
    path = save(Image.new("RGB", (100, 100)), tmp_path / "big.png")
    with pytest.raises(ImageError, match="decompression bomb"):
        open_image(path, max_pixels=5000)


def test_scan_reports_each_skip_and_a_total(tmp_path):
    for i in range(3):
        save(Image.new("RGB", (8, 8), (i, 0, 0)), tmp_path / f"ok{i}.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.docx").write_bytes(b"xx")
    (tmp_path / "labels.txt").write_text("ignored quietly")
    lines = []
    report = scan_images(tmp_path, log=lines.append)
    assert [p.name for p in report.images] == ["ok0.png", "ok1.png", "ok2.png"]
    assert len(report.skipped) == 2
    assert any("empty.jpg" in line for line in lines) and any("notes.docx" in line for line in lines)
    assert lines[-1].endswith("3 images, 2 skipped")


def test_folder_without_images_is_an_error_naming_it(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ImageError, match=str(tmp_path)):
        scan_images(tmp_path, log=None)
    with pytest.raises(ImageError, match="no such folder"):
        scan_images(tmp_path / "nope", log=None)


@pytest.mark.parametrize("array, expected", [
    (np.full((4, 5), 200, np.uint8), (200, 200, 200)),
    (np.full((4, 5, 1), 7, np.uint8), (7, 7, 7)),
    (np.full((4, 5, 3), 0.5, np.float32), (128, 128, 128)),  # floats in [0, 1]
    (np.ones((4, 5), bool), (255, 255, 255)),
    (np.full((4, 5, 3), 9, np.int64), (9, 9, 9)),
    (np.dstack([np.zeros((4, 5, 3), np.uint8), np.zeros((4, 5), np.uint8)]), (255, 255, 255)),  # alpha 0: white
])
def test_image_from_array_any_usual_array(array, expected):
    im = image_from_array(array)
    assert im.mode == "RGB" and im.size == (5, 4) and im.getpixel((2, 1)) == expected


@pytest.mark.parametrize("array, message", [
    (np.full((4, 5, 3), 200.0), r"float image array must hold values in \[0, 1\], got 200 to 200 \(pass uint8 for 0-255"),
    (np.full((4, 5), np.nan, np.float32), "NaN or infinite"),
    (np.full((4, 5), 300, np.int32), "integer image array must hold values in 0-255, got 300 to 300"),
    (np.zeros((4, 5, 2), np.uint8), r"shape \(4, 5, 2\): expected"),
    (np.zeros((0, 5), np.uint8), "no pixels"),
    (np.zeros((4, 5), complex), "dtype complex128"),
])
def test_image_from_array_names_what_is_wrong(array, message):
    with pytest.raises(ImageError, match=message):
        image_from_array(array)


def test_image_from_array_hints_and_slack():
    import torch
    with pytest.raises(ImageError, match="numpy array, got torch.Tensor .for torch tensors in .-1, 1. use run_tensor"):
        image_from_array(torch.rand(8, 8, 3))
    with pytest.raises(ImageError, match="numpy array, got builtins.list"):
        image_from_array([[0, 1], [1, 0]])
    with pytest.raises(ImageError, match=r"channels first\? pass a.transpose\(1, 2, 0\)"):
        image_from_array(np.zeros((3, 16, 16), np.uint8))
    a = np.full((4, 4), 0.5, np.float32)
    a[0, 0], a[0, 1] = 1.0000001, -1e-7  # rounding outside [0, 1] is clipped
    im = image_from_array(a)
    assert im.getpixel((0, 0)) == (255, 255, 255) and im.getpixel((1, 0)) == (0, 0, 0)
    with pytest.raises(ImageError, match=r"pass \(x \+ 1\) / 2 for values in \[-1, 1\]"):
        image_from_array(np.full((4, 4), -0.5, np.float32))
    with pytest.raises(ImageError, match="got 0.5 to 1.01"):
        image_from_array(np.where(a > 1, 1.01, 0.5).astype(np.float32))


def test_scan_notes_images_too_large_to_train_from_quickly(tmp_path):
    """A usable image over LARGE_SIDE px is kept but named: it is decoded in full at every step."""
    from trainer.data.imageio import LARGE_SIDE, scan_images
    Image.new("RGB", (LARGE_SIDE + 100, 8), "red").save(tmp_path / "wide.png")
    Image.new("RGB", (64, 64), "blue").save(tmp_path / "small.png")
    said = []
    report = scan_images(tmp_path, log=said.append)
    assert [p.name for p in report.images] == ["small.png", "wide.png"]
    assert report.large == [(tmp_path / "wide.png", (LARGE_SIDE + 100, 8))]
    assert len(said) == 1 and f"wide.png, {LARGE_SIDE + 100}x8" in said[0] and "shrinking them first" in said[0]


def test_a_large_training_image_is_reduced_once_and_trains_the_same(tmp_path):
    """Over LARGE_SIDE px, a loader that resizes gets the image reduced once (each half of a pair
    on its own) and cached; what it trains on matches the full decode within a grey level; smaller
    images are untouched."""
    from trainer.data import imageio
    from trainer.data.aligned import AlignedDataset
    from trainer.data.imageio import LARGE_SIDE, open_image_to_resize
    side = LARGE_SIDE + 104
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    half = np.stack([np.broadcast_to(ramp[None, :], (side, side)), np.broadcast_to(ramp[:, None], (side, side)),
                     np.full((side, side), 90, np.float32)], -1).astype(np.uint8)
    (tmp_path / "train").mkdir()
    pair = np.concatenate([half, 255 - half], 1)
    Image.fromarray(pair).save(tmp_path / "train" / "big.png")
    Image.fromarray(half[::64, ::64]).save(tmp_path / "small.png")
    small = open_image_to_resize(tmp_path / "small.png", 16)
    assert np.array_equal(np.asarray(small), np.asarray(open_image(tmp_path / "small.png")))
    imageio._reduced.clear()
    reduced = open_image_to_resize(tmp_path / "train" / "big.png", 143, pair=True)
    factor = side // (4 * 143)
    assert reduced.size == (2 * (side // factor), side // factor) and len(imageio._reduced) == 1
    a = np.asarray(reduced).astype(int)
    assert np.abs(a[:, : a.shape[1] // 2] + a[:, a.shape[1] // 2:] - 255).max() <= 1  # the halves never mix
    again = open_image_to_resize(tmp_path / "train" / "big.png", 143, pair=True)
    assert np.array_equal(np.asarray(again), a) and len(imageio._reduced) == 1
    loaded = AlignedDataset(tmp_path, image_size=128, log=None)[(0, None)]["A"]
    exact = np.asarray(open_image(tmp_path / "train" / "big.png").crop((0, 0, side, side)).resize((128, 128),
                                                                                                    Image.BICUBIC))
    assert np.abs((loaded.permute(1, 2, 0).numpy() + 1) * 127.5 - exact).max() <= 1.5
    imageio._reduced.clear()
