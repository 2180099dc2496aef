"""``gan-trainer`` (also ``python -m trainer``): train, resume, export, inspect, import, translate,
and write procedural datasets.

Parsing the command line imports no torch: the commands import what they need, and the method
registry (which lists the ``import --kind`` and ``export --format`` values) is read only when a
command or a help text needs it. Exit codes: 0 done, 1 some inputs failed, 2 an error (one line,
no traceback), 130 interrupted, 141 the reader of stdout went away.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from trainer.api import INFERENCE_PRECISIONS
from trainer.errors import USER_ERRORS

#: what a command reports as one line with exit code 2 (any ValueError is a refusal with a reason)
ERRORS = (*USER_ERRORS, FileNotFoundError, FileExistsError, ValueError)
PRECISION_CHOICES = (*INFERENCE_PRECISIONS, "off")  # inference precisions; off is fp32


def import_kinds() -> dict[str, str]:
    """``gan-trainer import --kind`` values -> their help (from the methods' import hooks)."""
    from trainer.conversion import kinds
    return kinds()


def export_formats() -> tuple[str, ...]:
    """``gan-trainer export --format`` values (from the methods' export hooks)."""
    from trainer import registry
    return tuple(registry.export_formats())


class _Later(Sequence):
    """Choices read on first use (``in``, iteration), so that building the parser imports nothing."""

    def __init__(self, read):
        self._read, self._items = read, None

    def _all(self) -> tuple:
        if self._items is None:
            self._items = tuple(self._read())
        return self._items

    def __getitem__(self, i):
        return self._all()[i]

    def __len__(self) -> int:
        return len(self._all())

    def __contains__(self, value) -> bool:
        return value in self._all()


class _LaterHelp(argparse.Action):
    """An option whose help text is made on first use (``help_from()``)."""

    def __init__(self, *args, help_from=None, **kwargs):
        self._help_from = help_from
        super().__init__(*args, **kwargs)

    @property
    def help(self):
        return self._help_from()

    @help.setter
    def help(self, value):
        pass

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)


def cmd_train(args) -> int:
    from trainer.rundir import catch_early_stop
    with catch_early_stop():  # a stop while torch loads: the run directory still says "stopped"
        from trainer import registry, run
        cfg = registry.load_config(args.preset, args.set)
        run_dir = Path(args.run_dir) if args.run_dir else run.new_run_dir(cfg, args.runs_root)
        run.train(cfg, run_dir, progress=not args.no_progress)
    return 0


def cmd_resume(args) -> int:
    from trainer.rundir import catch_early_stop
    with catch_early_stop():
        from trainer import run
        run.resume(args.run_dir, args.set, progress=not args.no_progress)
    return 0


def cmd_presets(args) -> int:
    """The presets of every preset folder (and those methods ship), grouped by the method that
    reads each (an older pix2pix preset with a latent code is listed under bicyclegan)."""
    from trainer import registry
    from trainer.config import ConfigError
    groups: dict[str, list[tuple[str, str]]] = {name: [] for name in registry.METHODS}
    unread: list[tuple[str, str]] = []
    for name in registry.all_presets():
        try:
            raw = registry.read_preset(name)
            method = registry.method_of_config(raw).name
        except ConfigError as e:
            unread.append((name, f"(not readable: {e})"))
            continue
        groups[method].append((name, str(raw.get("description", ""))))
    first = True
    for method, presets in groups.items():
        if not presets:
            continue
        cls = registry.METHODS[method]
        print(("" if first else "\n") + f"{method} ({cls.task})")
        first = False
        for name, description in presets:
            print(f"  {name:24s} {description}")
    if unread:
        print(("" if first else "\n") + "unknown method")
        for name, why in unread:
            print(f"  {name:24s} {why}")
    return 0


def cmd_synth(args) -> int:
    from trainer.data.synth import synthesize
    from trainer.progress import Progress
    bar = Progress(args.n, desc=args.name, unit="img")
    synthesize(args.name, args.out, args.n, args.size, seed=args.seed,
               progress=lambda i, n: bar.update(i - bar.n))
    bar.close()
    print(f"wrote {args.n} {args.name} images ({args.size}px) to {args.out}")
    return 0


def cmd_export(args) -> int:
    if args.format or args.onnx:
        return cmd_export_other(args)
    import torch
    from trainer.rundir import RunDir
    from trainer.run import export_run
    dtype = torch.float16 if args.fp16 else torch.int8 if args.int8 else None
    if args.output:
        check_output_name("-o", args.output, (".safetensors",), "a model file",
                          "; --format writes a reference checkpoint, --onnx an ONNX graph")
        check_replaceable_model("-o", args.output)
    if Path(args.run_dir).is_file():
        raise ValueError(f"{args.run_dir}: a file, not a run folder (export writes a run's generator as a model file; "
                         "--format and --onnx also take a model file)")
    path = export_run(RunDir(args.run_dir), args.output, dtype=dtype)
    print(f"wrote {path}")
    return 0


def check_output_name(option: str, path, suffixes: tuple, what: str, hint: str = "") -> None:
    """ValueError (nothing written) when ``path`` is a folder or lacks one of ``suffixes``."""
    path = Path(path)
    names = " or ".join(f"NAME{s}" for s in suffixes)
    if path.is_dir():
        raise ValueError(f"{option} {path}: a folder; {what} is written as {names} (nothing written{hint})")
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"{option} {path}: {what} needs the {' or '.join(suffixes)} suffix, e.g. "
                         f"{path.with_suffix(suffixes[0]).name if path.name else names} (nothing written{hint})")


def check_replaceable_model(option: str, path) -> None:
    """ValueError (nothing written) when ``path`` exists and is not a model file: a model file is
    replaced, anything else a user keeps under that name is not."""
    from trainer.modelfile import read_card
    path = Path(path)
    if path.is_file():
        try:
            read_card(path)
        except (ValueError, OSError):
            raise ValueError(f"{option} {path}: a file that is not a model file is there; move it or choose "
                             "another name (nothing written)") from None


def cmd_export_other(args) -> int:
    """``export --format`` (a reference checkpoint) and ``--onnx``, from a model file or a run."""
    if args.fp16 or args.int8:
        raise ValueError("--fp16 and --int8 apply to model files; reference checkpoints and ONNX graphs are float32")
    if args.onnx:
        check_output_name("--onnx", args.onnx, (".onnx",), "an ONNX graph")
    if args.format:
        if args.format not in args.formats:
            args.parser.error(f"argument --format: invalid choice: {args.format!r} (choose from "
                              f"{', '.join(map(repr, args.formats))})")
        if not args.output:
            raise ValueError(f"--format {args.format}: name the checkpoint to write with -o FILE")
        check_output_name("-o", args.output, (".pth", ".pt", ".ckpt"), "a reference checkpoint")
        from trainer.conversion import export_reference
        done = export_reference(args.run_dir, args.output, args.format)
        for path in [*done.files, *done.notes]:
            print(f"wrote {path}")
        print(f"reference: {done.options}")
    elif args.output:
        raise ValueError("-o names a model file (with --format: a reference checkpoint); --onnx names its own file")
    if args.onnx:
        from trainer.onnx_export import export_onnx
        for path, doc in export_onnx(args.run_dir, args.onnx, latent=args.latent):
            print(f"wrote {path}")
            print("\n".join(f"  {k}: {v}" for k, v in doc.items()))
    return 0


def format_controls(controls) -> str:
    """A model's controls as lines: name, kind, allowed values, default, what it does."""
    if not controls:
        return "controls     none"
    lines = ["controls:"]
    for c in controls:
        notes = [c.help] if c.help else []
        if c.group:
            notes.append("exclusive with " + ", ".join(o.name for o in controls if o.group == c.group and o is not c))
        if c.active_when:
            notes.append("acts when " + ", ".join(f"{k} is {' or '.join(map(str, v))}"
                                                  for k, v in c.active_when.items()))
        lines.append(f"  {c.name:16s} {c.kind:7s} {c.allowed()}; default {c.default!r}")
        lines += [f"  {'':16s} {'':7s} {n}" for n in notes]
    return "\n".join(lines)


def cmd_inspect(args) -> int:
    import json
    from trainer.modelfile import ModelFileError, format_card, read_card
    card = read_card(args.model)
    if args.json:
        print(json.dumps(card, indent=1))
        return 0
    from trainer.api import method_label
    print(format_card(card, method_label(card)))
    if card.get("kind") != "evaluator" and card.get("method") and not args.no_controls:
        from trainer import inference
        try:
            translator = inference.load(args.model, "cpu", args.precision)
        except (ModelFileError, ValueError, KeyError) as e:
            print(f"controls     unavailable ({e})")
        else:
            print(f"{'precision':12s} {translator.precision_note} on the CPU")
            print(format_controls(translator.controls))
    return 0


def cmd_import(args) -> int:
    from trainer.conversion import import_checkpoint
    exclusive = None if args.exclusive is None else (args.exclusive or True)  # bare --exclusive: all domains
    options = {k: v for k, v in (("direction", args.direction), ("domains", args.domains), ("exclusive", exclusive),
                                 ("image_size", args.image_size)) if v is not None}
    check_output_name("-o", args.output, (".safetensors",), "a model file")
    check_replaceable_model("-o", args.output)
    path = import_checkpoint(args.checkpoint, args.output, kind=args.kind, **options)
    print(f"wrote {path}")
    return 0


def _note_a_long_native_run(path, max_pixels: int) -> None:
    """Say so before an image of more than 16 native tiles runs (minutes on a CPU), and the faster way."""
    from PIL import Image
    try:
        with Image.open(path) as im:  # the header only
            w, h = im.size
    except Exception:  # noqa: BLE001 -- the translation itself reports an unreadable file
        return
    if w * h > 16 * max_pixels:
        print(f"\nnote: {Path(path).name} is {w}x{h}: at its own size it runs in about {-(-w * h // max_pixels)} tiles, "
              "which takes a while; --control resolution=training is much faster", file=sys.stderr)


def parse_controls(items) -> dict:
    """``--control NAME=VALUE`` items as {name: value}, values read as TOML (numbers, true/false)."""
    from trainer.config import parse_value
    controls = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--control {item!r}: expected NAME=VALUE, e.g. seed=3 (see `gan-trainer inspect MODEL` "
                             "for the model's controls)")
        controls[name.strip()] = parse_value(value.strip())
    return controls


def _inputs(items, out_dir: Path | None = None) -> list[tuple[Path, Path]]:
    """(file, its path relative to the folder given, or its name) for each input image; a folder's
    images inside ``out_dir`` (the translations of an earlier run into a subfolder) are left out."""
    from trainer.data.imageio import folder_images
    out = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += [(q, q.relative_to(p)) for q in folder_images(p, out_dir)]
        else:
            out.append((p, Path(p.name)))
    return out


def cmd_translate(args) -> int:
    from trainer import inference
    from trainer.controls import SEED_MAX, ControlError
    from trainer.device import resolve_device
    from trainer.progress import Progress
    from trainer.data.imageio import ImageError, open_image, output_names, save_output, translation_refusal
    controls = parse_controls(args.control)
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"-o {out_dir}: a file, not a folder; -o names the folder the translations go into")
    translator = inference.load(args.model, resolve_device(args.device), args.precision)
    translator.check_controls(controls)  # refused before anything is written: names the allowed values
    print(f"precision {translator.precision_note}", file=sys.stderr)

    def refused(inputs, names) -> bool:
        why = translation_refusal(inputs, out_dir, names)
        if why:
            print(f"error: -o {why}", file=sys.stderr)
        return bool(why)
    if not translator.needs_image:
        if args.inputs:
            print("error: this model generates from seeds and takes no input images; use --count", file=sys.stderr)
            return 2
        if args.count < 1:
            print(f"error: --count {args.count}: at least 1", file=sys.stderr)
            return 2
        seed = next((c for c in translator.controls if c.name == "seed"), None)
        first = translator.check_controls({"seed": controls.pop("seed", 0)})["seed"] if seed else 0
        if seed and first + args.count - 1 > (seed.maximum if seed.maximum is not None else SEED_MAX):
            raise ControlError(f"seeds {first}..{first + args.count - 1}: beyond the seed's range "
                                         f"({seed.allowed()}); lower seed or --count")
        if refused([], [f"seed{seed:06d}.png" for seed in range(first, first + args.count)]):
            return 2
        out_dir.mkdir(parents=True, exist_ok=True)
        bar = Progress(args.count, desc="sample", unit="img")
        for seed in range(first, first + args.count):
            save_output(translator.run(None, seed=seed, **controls), out_dir / f"seed{seed:06d}.png")
            bar.update(1)
        bar.close()
        print(f"wrote {args.count} samples (seeds {first}..{first + args.count - 1}) into {out_dir}")
        return 0
    found = _inputs(args.inputs, out_dir)
    if not found:
        print("error: no input images found", file=sys.stderr)
        return 2
    inputs = [path for path, _ in found]
    names = output_names(rel for _, rel in found)
    if refused(inputs, names):
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    from trainer.domain_check import input_warning, judges
    judge = judges(translator.card)
    bar = Progress(len(inputs), desc="translate", unit="img")
    native = any(c.name == "resolution" for c in translator.controls) and \
        translator.check_controls(controls).get("resolution") == "native"
    for path, name in zip(inputs, names):
        try:
            if native:
                _note_a_long_native_run(path, translator.max_pixels)
            image = translator.run(path, **controls)
            if judge:  # a bundled face model on a photo of something else: say so, translate anyway
                warning = input_warning(translator.card, open_image(path))
                if warning:
                    print(f"\nwarning: {Path(path).name}: {warning}", file=sys.stderr)
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
            save_output(image, out_dir / name)
        except ImageError as e:
            failed += 1
            print(f"\nfailed: {e}", file=sys.stderr)
        except Exception as e:  # an unforeseen failure on one image: the others are still translated
            failed += 1
            print(f"\nfailed: {path}: {type(e).__name__}: {e}", file=sys.stderr)
        bar.update(1)
    bar.close()
    print(f"translated {len(inputs) - failed} of {len(inputs)} images into {out_dir}"
          + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


def cmd_demo(args) -> int:
    """A short end-to-end tour: procedural data, a tiny pix2pix run, a translation."""
    from trainer import inference, registry, run
    from trainer.data.sketches import render
    out = Path(args.out)
    cfg = registry.load_config("pix2pix-sketches", ["data.image_size=64", "data.synth_n=400", "train.steps=60",
                                           "train.batch_size=4", "train.sample_every=30",
                                           "train.checkpoint_every=30", "train.log_every=10", "train.decay_steps=0"])
    run_dir = run.new_run_dir(cfg, out, "run")  # run, run-2, ...: a second demo keeps the first
    run.train(cfg, run_dir)
    sketch = render(12345, 128)[1]
    sketch.save(out / "sketch.png")
    inference.load(run_dir / "model.safetensors").run(sketch).save(out / "photo.png")
    print(f"demo done: samples in {run_dir / 'samples'}, model {run_dir / 'model.safetensors'}, "
          f"translated {out / 'sketch.png'} -> {out / 'photo.png'}")
    return 0


def cmd_eval(args) -> int:
    from trainer.scoring import evaluate, format_report, save_report, write_into_card
    out = Path(args.output or f"eval-{Path(args.model).stem}.json")
    check_output_name("-o", out, (".json",), "the report (JSON)",
                      "; its picture goes beside it as NAME.png, or where --picture says")
    picture = Path(args.picture) if args.picture else out.with_suffix(".png")
    check_output_name("--picture", picture, (".png",), "the picture")
    # written now or not at all (methods without a picture): a file from before is not reported as this run's
    before = picture.stat().st_mtime_ns if picture.is_file() else None
    sketches = {k: v for k, v in (("sketch_size", args.sketch_size), ("stroke_width", args.stroke_width),
                                  ("controls", parse_controls(args.control)),
                                  ("pairs", args.pairs)) if v}  # sketch2photo only; pairs: style only
    report = evaluate(args.model, data=args.data, n=args.n, device=args.device, progress=not args.no_progress,
                      picture=picture, precision=args.precision, **sketches)
    print(format_report(report))
    if "precision" in report:
        print(f"precision {report['precision']}")
    out = save_report(report, out)
    wrote_picture = picture.is_file() and picture.stat().st_mtime_ns != before
    print(f"wrote {out}" + (f" and {picture}" if wrote_picture else ""))
    if args.write_card:
        write_into_card(args.model, report)
        print(f"stored the metrics in {args.model}'s card")
    return 0


def cmd_evaluator_train(args) -> int:
    from trainer.evaluators.training import train
    train(args.dataset, args.output, n_train=args.n, n_held_out=args.held_out, steps=args.steps,
          batch_size=args.batch_size, width=args.width, device=args.device, workers=args.workers,
          input_size=args.input_size)
    return 0


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more (else a usage error naming the value)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be 1 or more")
    return value


def output_file(text: str) -> str:
    """An argparse type: a file path that is not an existing folder."""
    if Path(text).expanduser().is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name, such as {Path(text) / 'net.safetensors'}")
    return str(Path(text).expanduser())


def procedural_training_options(parser, output: str, items: str, n: int, held_out: int, batch: int, width: int,
                                width_help: str, steps: int = 3000) -> None:
    """The options of a net trained on procedural images and scored on held-out ones."""
    parser.add_argument("-o", "--output", type=output_file, help=f"default: {output}")
    parser.add_argument("--n", type=positive_int, default=n, help=f"training {items} (default: {n})")
    parser.add_argument("--held-out", type=positive_int, default=held_out,
                        help=f"held-out {items} for the scores in the card (default: {held_out})")
    parser.add_argument("--steps", type=positive_int, default=steps, help=f"optimiser steps (default: {steps})")
    parser.add_argument("--batch-size", type=positive_int, default=batch, help=f"{items} per step (default: {batch})")
    parser.add_argument("--width", type=positive_int, default=width, help=f"{width_help} (default: {width})")
    parser.add_argument("--workers", type=int, default=0, help=f"processes drawing {items} (0: one per core)")


def cmd_segmenter_train(args) -> int:
    from trainer.object_segmenter import train
    train(args.output, n_train=args.n, n_held_out=args.held_out, steps=args.steps, batch_size=args.batch_size,
          width=args.width, workers=args.workers)
    return 0


def lower_priority(n: int) -> None:
    """This process at a CPU priority ``n`` steps lower (0..19), before torch starts its threads
    (they inherit it)."""
    if os.name == "posix":
        os.nice(n)
    elif n > 0:  # Windows: one class below normal
        import ctypes
        ctypes.windll.kernel32.SetPriorityClass(ctypes.windll.kernel32.GetCurrentProcess(), 0x4000)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gan-trainer", description="GAN Studio's engine: train and run GANs.")
    p.add_argument("--log", metavar="FILE", help="append all output to FILE (the studio's job.log)")
    p.add_argument("--nice", type=int, default=0, metavar="N", choices=range(20),
                   help="lower this process's CPU priority by N, 0 to 19 (POSIX nice; on Windows N > 0 is below "
                        "normal): the studio starts its jobs with 10 so that drawing stays live beside them")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a preset or TOML configuration")
    t.add_argument("preset", help="preset name (see `gan-trainer presets`) or a .toml file")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.steps=500")
    t.add_argument("--run-dir", help="run directory (default: RUNS_ROOT/<preset>-<time>)")
    t.add_argument("--runs-root", default="runs", help="folder of new run directories (default: runs)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    t.set_defaults(fn=cmd_train)

    r = sub.add_parser("resume", help="continue a run at its last checkpoint")
    r.add_argument("run_dir", help="the run directory to continue")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override, e.g. train.steps=5000 to train longer")
    r.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    r.set_defaults(fn=cmd_resume)

    sub.add_parser("presets", help="list the presets").set_defaults(fn=cmd_presets)

    d = sub.add_parser("data", help="datasets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    s = dsub.add_parser("synth", help="write a procedural dataset")
    from trainer.data.synth import DATASETS
    s.add_argument("name", help=", ".join(DATASETS))
    s.add_argument("--out", required=True, help="output folder (must be empty or new)")
    s.add_argument("--n", type=positive_int, default=1000, help="number of images (or pairs) (default: 1000)")
    s.add_argument("--size", type=int, default=128, help="image size in pixels (default: 128)")
    s.add_argument("--seed", type=int, default=0, help="seed of the first image (default: 0)")
    s.set_defaults(fn=cmd_synth)

    e = sub.add_parser("export", help="export a run's generator as a model file")
    e.add_argument("run_dir", help="the run directory to export (with --format or --onnx: a run or a model file)")
    e.add_argument("-o", "--output", help="the model file to write (.safetensors)")
    size = e.add_mutually_exclusive_group()
    size.add_argument("--fp16", action="store_true", help="store weights as float16 (half the size)")
    size.add_argument("--int8", action="store_true", help="store weights as int8 with a scale per output "
                      "channel, the rest as float16 (about a quarter of the size)")
    e.add_argument("--format", metavar="FORMAT",
                   help="write -o as the reference code's checkpoint: junyanz (junyanz/pytorch-CycleGAN-and-pix2pix),"
                        " stargan (yunjey/stargan), rosinality (stylegan2-pytorch), or another format a method "
                        "declares; models it cannot build are refused")
    e.add_argument("--onnx", metavar="FILE", help="write the generator as an ONNX graph (a CycleGAN pair: "
                   "FILE_AtoB.onnx and FILE_BtoA.onnx); needs pip install 'gan-studio[onnx]'")
    e.add_argument("--latent", choices=["z", "w"], default="z",
                   help="StyleGAN's ONNX input: z (N, style_dim) or per-layer w (N, n_latent, style_dim)")
    e.set_defaults(fn=cmd_export, parser=e, formats=_Later(export_formats))

    i = sub.add_parser("inspect", help="print a model file's card and its controls (name, kind, allowed "
                                       "values, default)")
    i.add_argument("model", help="a model file (.safetensors)")
    i.add_argument("--json", action="store_true", help="print the card alone, as JSON")
    i.add_argument("--no-controls", action="store_true", help="do not load the model to list its controls")
    i.add_argument("--precision", default="auto", choices=PRECISION_CHOICES,
                   help="the inference precision to report (default: auto, what translate and the studio use)")
    i.set_defaults(fn=cmd_inspect)

    im = sub.add_parser("import", help="convert a reference checkpoint (.pth, .ckpt, .pt) into a model file")
    im.add_argument("checkpoint", help="the reference checkpoint (loaded as tensors only, never as code)")
    im.add_argument("-o", "--output", required=True, help="the model file to write (.safetensors)")
    im.add_argument("--kind", default="auto", choices=_Later(import_kinds), metavar="KIND", action=_LaterHelp,
                    help_from=lambda: "; ".join(f"{k}: {v}" for k, v in import_kinds().items()).replace("%", "%%"))
    im.add_argument("--domains", nargs="+", metavar="DOMAIN",
                    help="StarGAN: domain names, in the generator's order (default: the CelebA five, else "
                         "domain_0, domain_1, ...)")
    im.add_argument("--exclusive", nargs="*", metavar="DOMAIN",
                    help="StarGAN: domains that are one category, at most one on at a time (e.g. RaFD's "
                         "expressions); bare --exclusive: all the domains")
    im.add_argument("--image-size", type=int, metavar="PX",
                    help="StarGAN: the image size the generator was trained at (default: 128)")
    im.add_argument("--direction", choices=["AtoB", "BtoA"],
                    help="pix2pix: the direction the generator translates (default: from train_opt.txt, else AtoB)")
    im.set_defaults(fn=cmd_import)

    tr = sub.add_parser("translate", help="translate image files and folders with a model file")
    tr.add_argument("model", help="a model file (.safetensors)")
    tr.add_argument("inputs", nargs="*", help="images or folders (none for models that sample from seeds)")
    tr.add_argument("--count", type=int, default=8, help="samples to write for seed-based models (seed, seed+1, ...)")
    tr.add_argument("-o", "--output", required=True, help="output folder (created)")
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    tr.add_argument("--precision", default="auto", choices=PRECISION_CHOICES,
                    help="auto (default: bf16 where the hardware computes it and the model's output holds "
                         "within 2/255 of fp32, else fp32), fp32 (off), bf16, fp16 (GPU)")
    tr.add_argument("--control", action="append", default=[], metavar="NAME=VALUE",
                    help="a model control, e.g. mode=deterministic or seed=3 (repeatable; `gan-trainer inspect "
                         "MODEL` lists them with their ranges)")
    tr.set_defaults(fn=cmd_translate)

    va = sub.add_parser("eval", help="score a model file against ground truth (metrics of its task, as JSON)")
    va.add_argument("model", help="a model file (.safetensors)")
    va.add_argument("--data", help="a dataset folder with ground truth (default: held-out procedural data)")
    va.add_argument("--n", type=positive_int, help="test items (default per task: sketches 500, faces 200, "
                                          "unpaired 200, style 1000 samples, superres 100)")
    va.add_argument("--pairs", type=positive_int, help="style: mixing pairs and noise pairs (default: 200)")
    va.add_argument("-o", "--output", help="JSON report (default: eval-<model>.json)")
    va.add_argument("--picture", metavar="PNG", help="where the task's picture goes (attributes: inputs, edits "
                                                     "and their ground truth; style: mixing grid and noise); "
                                                     "default: the report's name with .png")
    va.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:N or mps (default: cpu)")
    va.add_argument("--precision", default="fp32", choices=PRECISION_CHOICES,
                    help="fp32 (default, so that scores compare across machines), auto, bf16, fp16 (GPU)")
    va.add_argument("--write-card", action="store_true", help="also store the metrics in the model file's card")
    va.add_argument("--no-progress", action="store_true", help="no progress bar")
    va.add_argument("--sketch-size", type=int, metavar="PX", help="sketch2photo: render the held-out sketches "
                    "at PX (e.g. 512, the studio's canvas); scored at the model's size")
    va.add_argument("--stroke-width", type=float, metavar="PX", help="sketch2photo: draw the held-out sketches' "
                    "lines PX wide (at --sketch-size) instead of each scene's own 1 to 4 %% of the side")
    va.add_argument("--control", action="append", default=[], metavar="NAME=VALUE",
                    help="sketch2photo: a model control for every sketch, e.g. strokes=false (repeatable)")
    va.set_defaults(fn=cmd_eval)

    ev = sub.add_parser("evaluator", help="the classifiers that score generated images")
    evsub = ev.add_subparsers(dest="evaluator_command", required=True)
    et = evsub.add_parser("train", help="train an evaluator on real procedural images; scores it on held-out ones")
    et.add_argument("dataset", help="sketches, faces or shapes-unpaired")
    procedural_training_options(et, "assets/evaluators/DATASET.safetensors", "images", 20000, 2000, 64, 32,
                                "channels of the first layer")
    et.add_argument("--input-size", type=int, help="image size it reads (default: the dataset's, 64 for all three)")
    et.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    et.set_defaults(fn=cmd_evaluator_train)

    sg = sub.add_parser("segmenter", help="the net that finds the objects of a sketch (per-object colours)")
    sgsub = sg.add_subparsers(dest="segmenter_command", required=True)
    st = sgsub.add_parser("train", help="train it on procedural sketches; scores it on held-out ones")
    procedural_training_options(st, "assets/segmenters/sketches.safetensors", "sketches", 8000, 600, 16, 8,
                                "channels of the U-Net's first level", steps=8000)
    st.set_defaults(fn=cmd_segmenter_train)

    dm = sub.add_parser("demo", help="a one-minute tour: data, training, translation")
    dm.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    dm.set_defaults(fn=cmd_demo)
    return p


def redirect_output(path) -> None:
    """Append this process's stdout and stderr (Python's and native code's) to ``path``: how the
    studio keeps a detached job's log in its run directory."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as e:
        raise ValueError(f"--log {path}: cannot write it ({e.strerror or e})") from None
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)


def _stdout_to_devnull() -> None:
    """After a broken pipe (``gan-trainer presets | head -1``): point stdout at /dev/null so that
    the interpreter's last flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def main(argv=None) -> int:
    """Run one command; exit codes: 0 done, 1 some inputs failed, 2 an error (one line, no
    traceback), 130 interrupted, 141 the reader of stdout went away (a closed pipe)."""
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
        return 141


def _off_the_bar() -> str:
    """A line break before a last message on a terminal, where a progress bar may hold the line."""
    return "\n" if sys.stderr.isatty() else ""


def _main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "fn", None) is cmd_translate and not any(e.startswith("-") for e in extra):
        args.inputs += extra  # inputs after an option (translate M -o out/ a.png): argparse's nargs="*" stops there
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.log:
        try:
            redirect_output(args.log)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if args.nice:
        lower_priority(args.nice)
    try:
        return args.fn(args)
    except ERRORS as e:
        print(f"{_off_the_bar()}error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{_off_the_bar()}interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
