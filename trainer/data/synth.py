"""Writing procedural datasets to disk in the layouts the folder readers expect, so that
training reads procedural and user data through the same code.

``gan-trainer data synth NAME --out DIR --n N --size S`` calls :func:`synthesize`; a preset
naming ``data.synth`` gets its dataset from :func:`cached_dataset`, made once per
(name, size, n, seed) and reused.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from PIL import Image

SPLITS = (("train", 0.9), ("val", 0.05), ("test", 0.05))


def split_counts(n: int) -> dict[str, int]:
    """90 / 5 / 5 %, with at least one validation and one test item once n >= 3."""
    val = max(1, round(n * 0.05)) if n >= 3 else 0
    test = max(1, round(n * 0.05)) if n >= 3 else 0
    return {"train": n - val - test, "val": val, "test": test}


def _sketch_item(args):
    seed, size = args
    from trainer.data.sketches import render
    photo, sketch, labels = render(seed, size)
    pair = Image.new("RGB", (2 * size, size))
    pair.paste(sketch, (0, 0))
    pair.paste(photo, (size, 0))
    return pair, labels


def _write_aligned(item_fn: Callable, out: Path, n: int, size: int, seed: int, workers: int, progress=None):
    """Aligned layout: ``out/{train,val,test}/NNNNNN.png`` holding A|B, and ``out/labels.jsonl``
    (ground truth for evaluation; training never reads it)."""
    counts = split_counts(n)
    jobs, names = [], []
    k = 0
    for split, _ in SPLITS:
        (out / split).mkdir(parents=True, exist_ok=True)
        for _ in range(counts[split]):
            jobs.append((seed * 10_000_019 + k, size))
            names.append(f"{split}/{k:06d}.png")
            k += 1
    with open(out / "labels.jsonl", "w") as labels_file:
        with ProcessPoolExecutor(max_workers=workers) if workers > 1 else _Serial() as pool:
            for i, (name, (image, labels)) in enumerate(zip(names, pool.map(item_fn, jobs, chunksize=16))):
                image.save(out / name)
                labels_file.write(json.dumps({"file": name, **labels}) + "\n")
                if progress:
                    progress(i + 1, n)


class _Serial:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, items, chunksize=1):
        return map(fn, items)


def _unpaired_item(args):
    seed, size, style = args
    from trainer.data.sketches import render
    return render(seed, size, style=style)[0], {}


def _write_unpaired(item_fn: Callable, out: Path, n: int, size: int, seed: int, workers: int, progress=None):
    """Unaligned layout: ``trainA/`` shaded photos and ``trainB/`` cartoons of *different* scenes;
    ``testA/`` and ``testB/`` the *same* scenes in both styles, file for file (the hidden
    correspondence that evaluation uses; training reads only trainA and trainB)."""
    counts = split_counts(n)
    n_test = counts["val"] + counts["test"]
    n_train = n - n_test
    jobs, names = [], []
    for k in range(n_train):  # A from even scene seeds, B from odd ones: never the same scene
        jobs.append((seed * 10_000_019 + 2 * k, size, "photo"))
        names.append(f"trainA/{k:06d}.png")
        jobs.append((seed * 10_000_019 + 2 * k + 1, size, "cartoon"))
        names.append(f"trainB/{k:06d}.png")
    for k in range(n_test):
        scene = seed * 10_000_019 + 2 * n_train + k
        jobs += [(scene, size, "photo"), (scene, size, "cartoon")]
        names += [f"testA/{k:06d}.png", f"testB/{k:06d}.png"]
    for d in ("trainA", "trainB", "testA", "testB"):
        (out / d).mkdir(parents=True, exist_ok=True)
    with open(out / "pairs.jsonl", "w") as pairs:
        for k in range(n_test):
            pairs.write(json.dumps({"A": f"testA/{k:06d}.png", "B": f"testB/{k:06d}.png"}) + "\n")
    with ProcessPoolExecutor(max_workers=workers) if workers > 1 else _Serial() as pool:
        for i, (name, (image, _)) in enumerate(zip(names, pool.map(item_fn, jobs, chunksize=16))):
            image.save(out / name)
            if progress:
                progress(min(n, (i + 1) // 2), n)


def _face_item(args):
    seed, size, attrs = args
    from trainer.data.faces import draw_attributes, render
    attrs = attrs if attrs is not None else draw_attributes(seed)
    return render(seed, attrs, size), attrs


def flip_attribute(attrs: dict, name: str) -> dict:
    """The attributes with ``name`` flipped; turning on a hair colour turns the others off."""
    from trainer.data.faces import HAIR
    out = dict(attrs)
    out[name] = not attrs[name]
    if name in HAIR and out[name]:
        for h in HAIR:
            out[h] = h == name
    return out


def _write_faces(item_fn: Callable, out: Path, n: int, size: int, seed: int, workers: int, progress=None):
    """CelebA layout: ``images/NNNNNN.png``, ``list_attr_celeba.txt`` (1/-1), ``list_eval_partition.txt``;
    and for evaluation only (training never reads ``eval/``): ``eval/identities.jsonl`` (identity
    seed and attributes of every image) and, for each test face, every single-attribute change
    rendered as ground truth in ``eval/counterfactuals/NNNNNN_<attribute>.png``."""
    from trainer.data.faces import ATTRIBUTES
    counts = split_counts(n)
    parts = [0] * counts["train"] + [1] * counts["val"] + [2] * counts["test"]
    seeds = [seed * 10_000_019 + k for k in range(n)]
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "eval" / "counterfactuals").mkdir(parents=True, exist_ok=True)
    rows, idents = [], []
    # progress counts the counterfactuals too (one per attribute of each test face), scaled to n: the
    # count reaches n when the last image is written, not while the counterfactuals are still drawn
    work = n + counts["test"] * len(ATTRIBUTES)

    def tick(done):
        if progress:
            progress(n * done // work, n)
    with ProcessPoolExecutor(max_workers=workers) if workers > 1 else _Serial() as pool:
        for k, (image, attrs) in enumerate(pool.map(item_fn, [(s, size, None) for s in seeds], chunksize=16)):
            name = f"{k:06d}.png"
            image.save(out / "images" / name)
            rows.append(f"{name} " + " ".join("1" if attrs[a] else "-1" for a in ATTRIBUTES))
            idents.append({"file": name, "identity_seed": seeds[k], "attributes": attrs, "partition": parts[k]})
            tick(k + 1)
        jobs, names = [], []
        for rec in idents:
            if rec["partition"] == 2:
                for a in ATTRIBUTES:
                    jobs.append((rec["identity_seed"], size, flip_attribute(rec["attributes"], a)))
                    names.append(f"{rec['file'][:-4]}_{a}.png")
        for j, (name, (image, _)) in enumerate(zip(names, pool.map(item_fn, jobs, chunksize=16))):
            image.save(out / "eval" / "counterfactuals" / name)
            tick(n + j + 1)
    (out / "list_attr_celeba.txt").write_text(f"{n}\n{' '.join(ATTRIBUTES)}\n" + "\n".join(rows) + "\n")
    (out / "list_eval_partition.txt").write_text(
        "".join(f"{r['file']} {r['partition']}\n" for r in idents))
    (out / "eval" / "identities.jsonl").write_text("".join(json.dumps(r) + "\n" for r in idents))


def _shape_item(args):
    seed, size, kind = args
    from trainer.data.sketches import render
    return render(seed, size, kinds=[kind], count=1)[0], {}


def _photo_item(args):
    seed, size, _ = args
    from trainer.data.sketches import render
    return render(seed, size)[0], {}


def _expression_item(args):
    seed, size, expression = args
    from trainer.data.faces import draw_attributes, render
    attrs = draw_attributes(seed)
    attrs["Smiling"] = expression == "happy"
    return render(seed, attrs, size, expression=expression), {}


def _write_class_folders(classes, item_fn: Callable, out: Path, n: int, size: int, seed: int, workers: int,
                         progress=None):
    """Class folders: ``train/<class>/NNNNNN.png`` and ``test/<class>/...``, classes in turn."""
    counts = split_counts(n)
    jobs, names = [], []
    for k in range(n):
        cls = classes[k % len(classes)]
        split = "train" if k < counts["train"] else "test"
        (out / split / cls).mkdir(parents=True, exist_ok=True)
        jobs.append((seed * 10_000_019 + k, size, cls))
        names.append(str(Path(split, cls, f"{k:06d}.png")))
    with ProcessPoolExecutor(max_workers=workers) if workers > 1 else _Serial() as pool:
        for i, (name, (image, _)) in enumerate(zip(names, pool.map(item_fn, jobs, chunksize=16))):
            image.save(out / name)
            if progress:
                progress(i + 1, n)


def _write_shapes(*args, **kw):
    from trainer.data.shapes import KINDS
    _write_class_folders(KINDS, *args, **kw)


def _write_photos(*args, **kw):
    _write_class_folders([""], *args, **kw)


def _write_expressions(*args, **kw):
    from trainer.data.faces import EXPRESSIONS
    _write_class_folders(EXPRESSIONS, *args, **kw)


DATASETS = {
    "sketches": (_sketch_item, _write_aligned, "aligned: A = sketch, B = photo"),
    "shapes-unpaired": (_unpaired_item, _write_unpaired, "unaligned: A = shaded photos, B = flat cartoons"),
    "shapes": (_shape_item, _write_shapes, "class folders: one object per photo, by kind"),
    "photos": (_photo_item, _write_photos, "a folder of photos (train/, test/): super-resolution, style content"),
    "expressions": (_expression_item, _write_expressions, "class folders (RaFD-style): faces by expression"),
    "faces": (_face_item, _write_faces, "CelebA attributes layout with counterfactual ground truth"),
}


def synthesize(name: str, out, n: int, size: int, seed: int = 0, workers: int | None = None, progress=None) -> Path:
    """Write procedural dataset ``name`` into ``out`` (created; must be empty or absent)."""
    if name not in DATASETS:
        raise ValueError(f"unknown procedural dataset {name!r}; known: {', '.join(DATASETS)}")
    if n < 1 or size < 8:
        raise ValueError("need --n >= 1 and --size >= 8")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file; choose a new folder")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new folder")
    item_fn, writer, _ = DATASETS[name]
    workers = workers or max(1, min(os.cpu_count() or 1, 8))
    writer(item_fn, out, n, size, seed, workers, progress)
    (out / "dataset.json").write_text(json.dumps({"name": name, "n": n, "size": size, "seed": seed}))
    return out


_reporters: list[Callable[[str, int, int], None]] = []


@contextmanager
def reporting(fn: Callable[[str, int, int], None] | None):
    """Within the block, :func:`cached_dataset` tells ``fn(name, done, total)`` how far it is in
    making a dataset (at the start, after each image and at the end): a job writes it to its status,
    however deep in a method the dataset is asked for. ``None`` reports nowhere."""
    if fn is None:
        yield
        return
    _reporters.append(fn)
    try:
        yield
    finally:
        _reporters.remove(fn)


def _report(name: str, done: int, total: int) -> None:
    for fn in list(_reporters):
        fn(name, done, total)


# a dataset whose drawing changed gets a new version, so that a cached copy of the old one is not reused
VERSIONS = {"faces": 2, "expressions": 2}  # 2: stochastic detail (pores, freckles, hair strands)


def cache_dir() -> Path:
    base = os.environ.get("GAN_STUDIO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gan-studio")
    return Path(base) / "datasets"


def cached_dataset(name: str, n: int, size: int, seed: int = 0, log=print) -> Path:
    """The folder of procedural dataset ``name``, made on first use (atomically: a half-written
    folder is never taken for a finished one)."""
    version = VERSIONS.get(name, 1)
    root = cache_dir() / (f"{name}-{size}px-{n}-seed{seed}" + (f"-v{version}" if version > 1 else ""))
    if (root / "dataset.json").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    if log:
        log(f"making procedural dataset {name} ({n} images, {size}px) in {root}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    from trainer.progress import Progress
    bar = Progress(n, desc=name, unit="img", enabled=log is not None)

    def progress(i, total):
        bar.update(i - bar.n)
        _report(name, i, total)
    try:
        _report(name, 0, n)
        synthesize(name, tmp, n, size, seed, progress=progress)
        bar.close()
        try:
            tmp.rename(root)
        except OSError:  # another process finished first
            if not (root / "dataset.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
