"""CelebA attribute files, class folders, the unaligned layout and the image pool."""
import pytest
import torch
from PIL import Image

from trainer.data.attributes import AttributeDataset, AttributeFileError, parse_attr_file
from trainer.data.folder import FolderDataset
from trainer.data.unaligned import UnalignedDataset
from trainer.image_pool import ImagePool

HEADER = "Black_Hair Blond_Hair Brown_Hair Male Young Smiling"


def write_celeba(root, rows):
    (root / "images").mkdir(parents=True)
    lines = [str(len(rows)), HEADER]
    for i, values in enumerate(rows):
        Image.new("RGB", (40, 50), (i * 10, 0, 0)).save(root / "images" / f"{i:06d}.jpg")
        lines.append(f"{i:06d}.jpg " + " ".join(values))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return root


def test_parse_attribute_file(tmp_path):
    root = write_celeba(tmp_path / "c", [["1", "-1", "-1", "1", "1", "-1"], ["-1", "1", "-1", "-1", "1", "1"]])
    names, rows = parse_attr_file(root / "list_attr_celeba.txt", ["Blond_Hair", "Male"])
    assert names == ["Blond_Hair", "Male"]
    assert rows == [("000000.jpg", [False, True]), ("000001.jpg", [True, False])]


@pytest.mark.parametrize("text, words", [
    ("two\n" + HEADER + "\n", "line 1"),
    ("1\n" + HEADER + "\na.jpg 1 -1 1\n", "line 3"),
    ("1\n" + HEADER + "\na.jpg 1 -1 1 1 yes 1\n", "line 3: attribute values"),
    ("2\n" + HEADER + "\na.jpg 1 -1 1 1 1 1\n", "2 images but 1 rows"),
])
def test_malformed_attribute_files_name_the_line(tmp_path, text, words):
    (tmp_path / "a.txt").write_text(text)
    with pytest.raises(AttributeFileError, match=words):
        parse_attr_file(tmp_path / "a.txt")


def test_unknown_selected_attribute(tmp_path):
    (tmp_path / "a.txt").write_text("0\n" + HEADER + "\n")
    with pytest.raises(AttributeFileError, match="no attribute Bald"):
        parse_attr_file(tmp_path / "a.txt", ["Bald"])


def test_attribute_dataset_crops_and_labels(tmp_path):
    rows = [["1", "-1", "-1", "1", "1", "-1"]] * 12
    root = write_celeba(tmp_path / "c", rows)
    ds = AttributeDataset(root, selected_attrs=["Black_Hair", "Male"], image_size=16, crop_size=30)
    item = ds[(0, 1)]
    assert item["image"].shape == (3, 16, 16)
    assert item["label"].tolist() == [1.0, 1.0]
    assert len(ds) + len(AttributeDataset(root, phase="test", image_size=16)) == 12


def test_class_folders(tmp_path):
    for cls in ("happy", "angry"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.new("RGB", (20, 20)).save(tmp_path / cls / f"{i}.png")
    ds = FolderDataset(tmp_path, image_size=8)
    assert ds.classes == ["angry", "happy"] and len(ds) == 4
    assert ds[(3, 0)]["class_index"].item() == 1 and ds[(3, 0)]["image"].shape == (3, 8, 8)


def test_unaligned_layout(tmp_path):
    for d, n in (("trainA", 3), ("trainB", 5)):
        (tmp_path / d).mkdir()
        for i in range(n):
            Image.new("RGB", (20, 20), (40 * i, 0, 0)).save(tmp_path / d / f"{i}.png")
    ds = UnalignedDataset(tmp_path, image_size=16, load_size=18)
    assert len(ds) == 5
    item = ds[(4, 99)]
    assert item["A"].shape == (3, 16, 16) and item["A_path"].endswith("1.png")
    picks = {ds[(0, s)]["B_path"] for s in range(40)}
    assert len(picks) > 2  # B paired at random
    assert ds[(2, None)]["B_path"].endswith("2.png")  # serial for evaluation


def test_image_pool_behaviour():
    pool = ImagePool(pool_size=3, seed=0)
    first = torch.arange(3).float().view(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: the new images come back
    new = torch.arange(100, 300).float().view(200, 1, 1, 1)
    out = pool.query(new)
    old = (out != new).sum().item()
    assert 60 < old < 140  # about half the time a stored image is returned
    assert len(pool.images) == 3
    empty = ImagePool(0)
    assert torch.equal(empty.query(new), new)
    state = pool.state_dict()
    other = ImagePool(3, seed=5)
    other.load_state_dict(state)
    assert torch.equal(other.query(new[:20]), pool.query(new[:20]))


def test_synth_faces_writes_the_celeba_layout_and_counterfactuals(tmp_path):
    import json

    import numpy as np

    from trainer.data.faces import ATTRIBUTES, render
    from trainer.data.synth import synthesize
    out = synthesize("faces", tmp_path / "f", n=20, size=32, workers=1)
    names, rows = parse_attr_file(out / "list_attr_celeba.txt")
    assert names == list(ATTRIBUTES) and len(rows) == 20
    ds = AttributeDataset(out, image_size=32)  # the partition file gives the splits
    test = AttributeDataset(out, phase="test", image_size=32)
    assert len(ds) == 18 and len(test) == 1
    idents = [json.loads(line) for line in (out / "eval" / "identities.jsonl").read_text().splitlines()]
    rec = next(r for r in idents if r["partition"] == 2)
    cf = sorted((out / "eval" / "counterfactuals").glob("*.png"))
    assert len(cf) == len(ATTRIBUTES)
    smile = rec["attributes"] | {"Smiling": not rec["attributes"]["Smiling"]}
    expect = np.asarray(render(rec["identity_seed"], smile, 32))
    got = np.asarray(Image.open(out / "eval" / "counterfactuals" / f"{rec['file'][:-4]}_Smiling.png"))
    assert np.array_equal(expect, got)


def test_synth_expressions_writes_class_folders(tmp_path):
    from trainer.data.faces import EXPRESSIONS
    from trainer.data.synth import synthesize
    out = synthesize("expressions", tmp_path / "e", n=12, size=16, workers=1)
    ds = FolderDataset(out, image_size=16)
    assert ds.classes == sorted(EXPRESSIONS) and len(ds) == 10
    assert len(FolderDataset(out, phase="test", image_size=16)) == 2


def test_missing_split_falls_back_to_train_not_to_split_folders(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split / "cat").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / split / "cat" / "0.png")
    assert FolderDataset(tmp_path, phase="val", image_size=8).classes == ["cat"]
