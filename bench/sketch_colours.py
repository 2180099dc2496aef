"""Do the objects of one generated scene get colours of their own (issue 31, item 3)? For a
BicycleGAN sketch2photo model (default the bundled one): the fraction of held-out two- and
three-object scenes whose objects get distinct hues (:mod:`trainer.evaluation.object_hues`), real
photos against the model's outputs for seeds 0-7; then, with ``--fit N``, the same for the code
*fitted* to each of N scenes' real photo (Adam on z, L1 to the photo weighted towards the objects):
whether any code makes the generator paint the objects differently (a model with per-object codes
gets no code map there: the fit is of the scene code alone). ``--grid FILE`` saves sketch | photo |
seeds 0-7 (| fitted code) for the first scenes.

    python bench/sketch_colours.py --n 100 --fit 24 --grid /work/tmp/colours/grid.png

Results: docs/sketch-colours.md.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from PIL import Image, ImageDraw


def fitted_codes(translator, sketches, photos, masks, steps: int = 100, lr: float = 0.1, restart: int = 0):
    """Codes (N, nz) that make G(sketch, z) match each real photo: Adam from the fitted Gaussian's
    mean (``restart`` > 0: from one of its draws), L1 weighted 1 on the objects and 0.1 elsewhere."""
    from trainer.data.transforms import to_tensor
    from trainer.translator import set_norm_mode
    G = translator.G
    set_norm_mode(G, "eval")
    size = translator.image_size
    x = torch.stack([to_tensor(translator.sketch_input(s, True, "model").resize((size, size), Image.BICUBIC))
                     for s in sketches])
    y = torch.stack([to_tensor(p) for p in photos])
    w = 0.1 + torch.stack([torch.from_numpy(m).sum(0).clamp(0, 1) for m in masks])[:, None]
    mean, tril = translator.latent_fit if translator.latent_fit is not None else (torch.zeros(G.nz), torch.eye(G.nz))
    start = mean.expand(len(sketches), -1).clone()
    if restart:
        start += torch.randn(len(sketches), G.nz, generator=torch.Generator().manual_seed(restart)) @ tril.T
    z = start.requires_grad_(True)
    for p in G.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        loss = ((G(x, z) - y).abs() * w).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = G(x, z.detach()).clamp(-1, 1)
    return z.detach(), [np.asarray(o) for o in out.add(1).mul(127.5).round().byte().permute(0, 2, 3, 1)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="assets/models/sketch2photo.safetensors")
    ap.add_argument("--n", type=int, default=100, help="scenes of each object count")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--fit", type=int, default=0, help="scenes of each count whose code is fitted to the photo")
    ap.add_argument("--grid", help="save a picture of the first scenes here")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from trainer.evaluation.object_hues import distinct_hue_rates, distinct_hues, held_out_scenes, scene_hues
    from trainer.inference import load
    t = load(args.model)
    report = {"seeded": distinct_hue_rates(t, n=args.n, seeds=args.seeds)}
    fitted = {}
    if args.fit:
        report["fitted"] = {}
        for count in (2, 3):
            scenes = list(held_out_scenes(count, max(args.fit, 4)))
            # a copy of its own: run_array's cached kernels are inference tensors, which autograd refuses
            _, outs = fitted_codes(load(args.model), *zip(*scenes))
            fitted[count] = (scenes, outs)
            decided = [d for d in (distinct_hues(scene_hues(o, m)) for o, (_, _, m) in zip(outs, scenes))
                       if d is not None]
            report["fitted"][count] = {"model": float(np.mean(decided)) if decided else None, "n": len(decided)}
    print(json.dumps(report, indent=1))
    if args.grid:
        rows = []
        for count in (2, 3):
            scenes, outs = fitted.get(count, (list(held_out_scenes(count, 4)), None))
            for k, (sketch, photo, _) in enumerate(scenes[:4]):
                cells = [np.asarray(sketch), np.asarray(photo)]
                cells += [t.run_array(sketch, seed=s, resolution="training", output_size="model")
                          for s in range(args.seeds)]
                rows.append(np.concatenate(cells + ([outs[k]] if outs else []), 1))
        grid = np.concatenate(rows, 0)
        picture = Image.new("RGB", (grid.shape[1], grid.shape[0] + 16), (255, 255, 255))
        draw = ImageDraw.Draw(picture)
        names = ["sketch", "real photo"] + [f"seed {s}" for s in range(args.seeds)] + (["fitted code"] if fitted else [])
        for i, name in enumerate(names):
            draw.text((i * t.image_size + 4, 2), name, fill=(0, 0, 0))
        picture.paste(Image.fromarray(grid), (0, 16))
        picture.save(args.grid)


if __name__ == "__main__":
    main()
