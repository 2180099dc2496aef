"""``gan-trainer`` (also ``python -m trainer``): train, resume, export, inspect, import, translate,
and write procedural datasets."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _errors():
    from trainer.config import ConfigError
    from trainer.data.imageio import ImageError
    from trainer.importers import CheckpointImportError
    from trainer.modelfile import ModelFileError
    from trainer.run import NonFiniteLoss
    from trainer.evaluation import EvaluationError
    return (EvaluationError, ConfigError, ImageError, ModelFileError, CheckpointImportError, NonFiniteLoss, FileNotFoundError,
            FileExistsError, ValueError)


def cmd_train(args) -> int:
    from trainer import config, run
    cfg = config.load(args.preset, args.set)
    run_dir = Path(args.run_dir) if args.run_dir else run.new_run_dir(cfg, args.runs_root)
    run.train(cfg, run_dir, progress=not args.no_progress)
    return 0


def cmd_resume(args) -> int:
    from trainer import run
    run.resume(args.run_dir, args.set, progress=not args.no_progress)
    return 0


def cmd_presets(args) -> int:
    from trainer import config
    for name in config.list_presets():
        raw = config.read_toml(config.preset_path(name))
        print(f"{name:24s} {raw.get('method', '?'):10s} {raw.get('description', '')}")
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
    import torch
    from trainer.rundir import RunDir
    from trainer.run import export_run
    dtype = torch.float16 if args.fp16 else torch.int8 if args.int8 else None
    path = export_run(RunDir(args.run_dir), args.output, dtype=dtype)
    print(f"wrote {path}")
    return 0


def cmd_inspect(args) -> int:
    import json
    from trainer.modelfile import format_card, read_card
    card = read_card(args.model)
    print(json.dumps(card, indent=1) if args.json else format_card(card))
    return 0


def cmd_import(args) -> int:
    from trainer.importers import import_checkpoint
    options = {k: v for k, v in (("direction", args.direction), ("domains", args.domains)) if v}
    path = import_checkpoint(args.checkpoint, args.output, kind=args.kind, **options)
    print(f"wrote {path}")
    return 0


def _inputs(items) -> list[Path]:
    from trainer.data.imageio import IMAGE_EXTENSIONS
    out = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            out.append(p)
    return out


def cmd_translate(args) -> int:
    from trainer import inference
    from trainer.data.imageio import ImageError
    from trainer.device import resolve_device
    from trainer.progress import Progress
    translator = inference.load(args.model, resolve_device(args.device))
    controls = dict(c.split("=", 1) for c in args.control)
    from trainer.config import parse_value
    controls = {k: parse_value(v) for k, v in controls.items()}
    out_dir = Path(args.output)
    if not translator.needs_image:
        if args.inputs:
            print("error: this model generates from seeds and takes no input images; use --count", file=sys.stderr)
            return 2
        out_dir.mkdir(parents=True, exist_ok=True)
        first = int(controls.pop("seed", 0))
        bar = Progress(args.count, desc="sample", unit="img")
        for seed in range(first, first + args.count):
            translator.run(None, seed=seed, **controls).save(out_dir / f"seed{seed:06d}.png")
            bar.update(1)
        bar.close()
        print(f"wrote {args.count} samples (seeds {first}..{first + args.count - 1}) into {out_dir}")
        return 0
    inputs = _inputs(args.inputs)
    if not inputs:
        print("error: no input images found", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    bar = Progress(len(inputs), desc="translate", unit="img")
    used = set()
    for path in inputs:
        try:
            image = translator.run(path, **controls)
            name = path.stem
            while name in used:
                name += "_"
            used.add(name)
            image.save(out_dir / f"{name}.png")
        except ImageError as e:
            failed += 1
            print(f"\nfailed: {e}", file=sys.stderr)
        bar.update(1)
    bar.close()
    print(f"translated {len(inputs) - failed} of {len(inputs)} images into {out_dir}"
          + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


def cmd_demo(args) -> int:
    """A short end-to-end tour: procedural data, a tiny pix2pix run, a translation."""
    from trainer import config, run
    from trainer.data.sketches import render
    out = Path(args.out)
    cfg = config.load("pix2pix-sketches", ["data.image_size=64", "data.synth_n=400", "train.steps=60",
                                           "train.batch_size=4", "train.sample_every=30",
                                           "train.checkpoint_every=30", "train.log_every=10", "train.decay_steps=0"])
    run_dir = out / "run"
    run.train(cfg, run_dir)
    sketch = render(12345, 128)[1]
    sketch.save(out / "sketch.png")
    from trainer import inference
    inference.load(run_dir / "model.safetensors").run(sketch).save(out / "photo.png")
    print(f"demo done: samples in {run_dir / 'samples'}, model {run_dir / 'model.safetensors'}, "
          f"translated {out / 'sketch.png'} -> {out / 'photo.png'}")
    return 0


def cmd_eval(args) -> int:
    from trainer.evaluation import evaluate, format_report, save_report, write_into_card
    out = Path(args.output or f"eval-{Path(args.model).stem}.json")
    picture = Path(args.picture) if args.picture else out.with_suffix(".png")
    picture.unlink(missing_ok=True)
    report = evaluate(args.model, data=args.data, n=args.n, device=args.device, progress=not args.no_progress,
                      picture=picture)
    print(format_report(report))
    out = save_report(report, out)
    print(f"wrote {out}" + (f" and {picture}" if picture.is_file() else ""))
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gan-trainer", description="GAN Studio's engine: train and run GANs.")
    p.add_argument("--log", metavar="FILE", help="append all output to FILE (the studio's job.log)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a preset or TOML configuration")
    t.add_argument("preset", help="preset name (see `gan-trainer presets`) or a .toml file")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.steps=500")
    t.add_argument("--run-dir", help="run directory (default: RUNS_ROOT/<preset>-<time>)")
    t.add_argument("--runs-root", default="runs")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(fn=cmd_train)

    r = sub.add_parser("resume", help="continue a run at its last checkpoint")
    r.add_argument("run_dir")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override, e.g. train.steps=5000 to train longer")
    r.add_argument("--no-progress", action="store_true")
    r.set_defaults(fn=cmd_resume)

    sub.add_parser("presets", help="list the presets").set_defaults(fn=cmd_presets)

    d = sub.add_parser("data", help="datasets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    s = dsub.add_parser("synth", help="write a procedural dataset")
    s.add_argument("name", help="sketches, shapes-unpaired, shapes, faces or expressions")
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=int, default=1000)
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(fn=cmd_synth)

    e = sub.add_parser("export", help="export a run's generator as a model file")
    e.add_argument("run_dir")
    e.add_argument("-o", "--output", required=True)
    size = e.add_mutually_exclusive_group()
    size.add_argument("--fp16", action="store_true", help="store weights as float16 (half the size)")
    size.add_argument("--int8", action="store_true", help="store weights as int8 with a scale per output "
                      "channel, the rest as float16 (about a quarter of the size)")
    e.set_defaults(fn=cmd_export)

    i = sub.add_parser("inspect", help="print a model file's card")
    i.add_argument("model")
    i.add_argument("--json", action="store_true")
    i.set_defaults(fn=cmd_inspect)

    im = sub.add_parser("import", help="convert a reference checkpoint (.pth, .ckpt, .pt) into a model file")
    im.add_argument("checkpoint")
    im.add_argument("-o", "--output", required=True)
    im.add_argument("--kind", default="auto", help="auto, pix2pix, cyclegan, stargan")
    im.add_argument("--domains", nargs="+", help="StarGAN domain names, in the generator's order")
    im.add_argument("--direction", choices=["AtoB", "BtoA"])
    im.set_defaults(fn=cmd_import)

    tr = sub.add_parser("translate", help="translate image files and folders with a model file")
    tr.add_argument("model")
    tr.add_argument("inputs", nargs="*", help="images or folders (none for models that sample from seeds)")
    tr.add_argument("--count", type=int, default=8, help="samples to write for seed-based models (seed, seed+1, ...)")
    tr.add_argument("-o", "--output", required=True, help="output folder (created)")
    tr.add_argument("--device", default="auto")
    tr.add_argument("--control", action="append", default=[], metavar="NAME=VALUE",
                    help="a model control, e.g. mode=deterministic or seed=3")
    tr.set_defaults(fn=cmd_translate)

    va = sub.add_parser("eval", help="score a model file against ground truth (metrics of its task, as JSON)")
    va.add_argument("model")
    va.add_argument("--data", help="a dataset folder with ground truth (default: held-out procedural data)")
    va.add_argument("--n", type=int, help="test items (default per task: sketches 500, faces 200, "
                                          "unpaired 200, style 1000 samples, superres 100)")
    va.add_argument("-o", "--output", help="JSON report (default: eval-<model>.json)")
    va.add_argument("--picture", metavar="PNG", help="where the task's picture goes (attributes: inputs, edits "
                                                     "and their ground truth; style: mixing grid and noise); "
                                                     "default: the report's name with .png")
    va.add_argument("--device", default="cpu")
    va.add_argument("--write-card", action="store_true", help="also store the metrics in the model file's card")
    va.add_argument("--no-progress", action="store_true")
    va.set_defaults(fn=cmd_eval)

    ev = sub.add_parser("evaluator", help="the classifiers that score generated images")
    evsub = ev.add_subparsers(dest="evaluator_command", required=True)
    et = evsub.add_parser("train", help="train an evaluator on real procedural images; scores it on held-out ones")
    et.add_argument("dataset", help="sketches, faces or shapes-unpaired")
    et.add_argument("-o", "--output", help="default: assets/evaluators/DATASET.safetensors")
    et.add_argument("--n", type=int, default=20000, help="training images")
    et.add_argument("--held-out", type=int, default=2000, help="held-out images for the accuracy in the card")
    et.add_argument("--steps", type=int, default=3000)
    et.add_argument("--batch-size", type=int, default=64)
    et.add_argument("--width", type=int, default=32)
    et.add_argument("--input-size", type=int, help="image size it reads (default: the dataset's, 64 for all three)")
    et.add_argument("--device", default="auto")
    et.add_argument("--workers", type=int, default=0, help="processes drawing images (0: one per core)")
    et.set_defaults(fn=cmd_evaluator_train)

    dm = sub.add_parser("demo", help="a one-minute tour: data, training, translation")
    dm.add_argument("--out", default="demo-output")
    dm.set_defaults(fn=cmd_demo)
    return p


def redirect_output(path) -> None:
    """Append this process's stdout and stderr (Python's and native code's) to ``path``: how the
    studio keeps a detached job's log in its run directory."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.log:
        redirect_output(args.log)
    try:
        return args.fn(args)
    except _errors() as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
