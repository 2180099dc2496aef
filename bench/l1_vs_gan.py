"""The pix2pix paper's central claim on our data: with colours a sketch leaves open, L1 alone
learns their average (a muddy, desaturated answer) and L1 + cGAN picks a saturated colour near
one of the real ones. Same preset, same data, same steps; only ``model.lambda_gan`` differs.

Compare two trained models (a pix2pix run of the preset and an L1-only run of it; --gan also takes
the bundled BicycleGAN, assets/models/sketch2photo.safetensors):

    gan-trainer train sketch2photo --run-dir runs/pix2pix
    gan-trainer train sketch2photo --set model.lambda_gan=0 --run-dir runs/pix2pix-l1
    python bench/l1_vs_gan.py --gan runs/pix2pix/model.safetensors \\
                              --l1 runs/pix2pix-l1/model.safetensors

or train both here (short runs for a quick look; the figures above need the full preset):

    python bench/l1_vs_gan.py --train --steps 2000 --size 64 --out runs/l1-vs-gan

Prints, for each model on the same held-out sketches: saturation of the outputs against the real
photos', in-domain FID, object accuracy, and edge agreement; writes the reports as JSON.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROWS = [("saturation_output", "saturation of outputs"), ("saturation_real", "saturation of real photos"),
        ("saturation_ratio", "outputs / real"), ("fid", "in-domain FID (lower is better)"),
        ("object_accuracy", "object accuracy"), ("objects_found", "objects found"),
        ("extra_objects", "extra objects per output"), ("edge_f1", "edge agreement F1"), ("l1_to_photo", "L1 to the photo")]


def train_pair(out: Path, steps: int, size: int, threads: int) -> dict[str, Path]:
    from trainer import config, registry, run
    models = {}
    for name, lambda_gan in (("l1", 0.0), ("gan", 1.0)):
        overrides = [f"train.steps={steps}", f"train.decay_steps={steps // 2}", f"data.image_size={size}",
                     f"model.lambda_gan={lambda_gan}", f"train.threads={threads}",
                     f"train.checkpoint_every={max(1, steps // 4)}", f"train.sample_every={max(1, steps // 4)}"]
        run.train(registry.load_config("sketch2photo", overrides), out / name)
        models[name] = out / name / "model.safetensors"
    return models


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gan", help="an L1 + cGAN pix2pix model file")
    p.add_argument("--l1", help="the same preset trained with model.lambda_gan=0")
    p.add_argument("--train", action="store_true", help="train both here first")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default="runs/l1-vs-gan")
    p.add_argument("--n", type=int, default=500, help="held-out sketches")
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.train:
        models = train_pair(out, args.steps, args.size, args.threads)
    elif args.gan and args.l1:
        models = {"l1": Path(args.l1), "gan": Path(args.gan)}
    else:
        p.error("give --gan and --l1 model files, or --train")
    from trainer.scoring import evaluate
    reports = {name: evaluate(path, n=args.n) for name, path in models.items()}
    print(f"\n{'':34s}{'L1 only':>12s}{'L1 + cGAN':>12s}")
    for key, label in ROWS:
        a, b = (reports[m]["metrics"].get(key, float("nan")) for m in ("l1", "gan"))
        print(f"{label:34s}{a:12.4f}{b:12.4f}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "l1_vs_gan.json").write_text(json.dumps(reports, indent=1) + "\n")
    print(f"\nwrote {out / 'l1_vs_gan.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
