"""Style generation (StyleGAN): samples against real faces, and what style mixing takes from whom.

- ``fid``: in-domain Frechet distance of ``n`` samples (psi 1, seeds from ``EVAL_SEED``) to ``n``
  real faces, in the ``faces`` evaluator's features; ``fid_real_vs_real`` between two real sets of
  the same size is the floor that sample size allows.
- ``face_rate`` and ``attributes``: how often the evaluator finds a face and each attribute in the
  samples, next to the same frequencies in the real faces.
- ``mixing``: ``pairs`` images whose layers below ``crossover`` (the 4 and 8 px ones) take the
  source seed's w and the rest the style seed's. ``coarse_follows_source``: how often the face's
  roll, width and height read closer to the source's than the style's; ``hair_follows_style``
  (pairs whose two hair colours differ) and ``skin_follows_style``: the same for the colours.
  ``ideal``: the same measures on real faces mixed by hand (the source seed's geometry, the style
  seed's colours and hair colour; ``trainer.data.faces.render``'s ``colours_seed``), what a perfect
  split scores under the evaluator's reading errors.
- ``noise``: ``pairs`` seeds each drawn with two noise seeds; ``attributes_unchanged``: how often
  the evaluator's hair colour and four attributes all read the same (noise must change stochastic
  detail only), ``pixel_change`` the mean L1 between the two (0..1 units).
With ``picture`` a PNG is written: the 3x3 mixing grid at the coarse crossover (top row: the
style seeds, left column: the source seeds), then a row of one seed under six noise seeds.
"""
from __future__ import annotations

import numpy as np

from trainer.evaluation import EvaluationError, bar
from trainer.evaluation.attributes import picture_rows
from trainer.evaluators import Evaluator
from trainer.evaluators.specs import EVAL_SEED, FACE_BINARY, HAIR_CLASSES
from trainer.images import with_caption
from trainer.metrics import frechet_distance, mean_l1

COARSE = ("roll", "width", "height")


def real_faces(n: int, size: int, seed: int):
    from trainer.data.faces import draw_attributes, render
    return [np.asarray(render(seed + k, draw_attributes(seed + k), size)) for k in range(n)]


def frequencies(pred: dict) -> dict:
    faces = pred["face"] == 1
    out = {h: float(np.mean(pred["hair"][faces] == i)) if faces.any() else 0.0 for i, h in enumerate(HAIR_CLASSES)}
    out.update({a: float(np.mean(pred[a][faces] == 1)) if faces.any() else 0.0 for a in FACE_BINARY})
    return out


def mixing_measures(p_src: dict, p_sty: dict, p_mix: dict) -> dict:
    """How often the mixes' roll, width and height read closer to the source's than the style's
    (each, and their mean ``coarse_follows_source``), the hair colour reads the style's (pairs whose
    hair colours differ; NaN if none do) and the skin reads closer to the style's. Each in 0..1."""
    def closer(head, to, other):
        return np.abs(p_mix[head] - to[head]) < np.abs(p_mix[head] - other[head])
    differ = p_src["hair"] != p_sty["hair"]
    return {"coarse_follows_source": float(np.mean([closer(h, p_src, p_sty) for h in COARSE])),
            **{f"{h}_follows_source": float(closer(h, p_src, p_sty).mean()) for h in COARSE},
            "hair_follows_style": float(np.mean(p_mix["hair"][differ] == p_sty["hair"][differ]))
            if differ.any() else float("nan"),
            "skin_follows_style": float(closer("skin", p_sty, p_src).mean())}


def ideal_mixes(pairs: int, size: int, seed: int):
    """``pairs`` real (source, style, hand-made mix) faces: the mix has the source's geometry and
    attributes but the style's colours and hair colour."""
    from trainer.data.faces import HAIR, draw_attributes, render
    out = ([], [], [])
    for k in range(pairs):
        s, t = seed + 2 * k, seed + 2 * k + 1
        a, b = draw_attributes(s), draw_attributes(t)
        mixed = {**a, **{h: b[h] for h in HAIR}}
        for images, image in zip(out, (render(s, a, size), render(t, b, size), render(s, mixed, size, colours_seed=t))):
            images.append(np.asarray(image))
    return out


def mixing_rows(sources, styles, mixes) -> list[list[np.ndarray]]:
    """The style-mixing grid of Karras et al. 2019 (StyleGAN, fig. 3) as rows of uint8 HWC arrays:
    a white corner and the style images on top, then each source image followed by its mixes.
    ``mixes[i][j]``: source i with style j's layers. Raises ValueError when the counts disagree."""
    if len(mixes) != len(sources) or any(len(row) != len(styles) for row in mixes):
        raise ValueError(f"mixing grid: {len(sources)} sources x {len(styles)} styles need as many rows of "
                         f"mixes, got {[len(row) for row in mixes]}")
    blank = np.full_like(np.asarray(sources[0]), 255)
    return [[blank, *styles]] + [[source, *row] for source, row in zip(sources, mixes)]


def mixing_picture(translator, crossover: int, psi: float = 1.0):
    """The 3x3 style-mixing grid with its sources and styles, and a row of noise variations."""
    sources, styles = [EVAL_SEED + 2 * k for k in range(3)], [EVAL_SEED + 2 * k + 1 for k in range(3)]
    rows = mixing_rows([translator.run_array(seed=s, psi=psi) for s in sources],
                       [translator.run_array(seed=t, psi=psi) for t in styles],
                       [[translator.run_array(seed=s, style_seed=t, crossover=crossover, psi=psi) for t in styles]
                        for s in sources])
    rows.append([translator.run_array(seed=sources[0], psi=psi, noise_seed=k) for k in range(6)])
    return with_caption(picture_rows(rows), f"Top: style seeds. Left: source seeds. Inside: the source's layers "
                                             f"below {crossover}, the style's from {crossover} on. Bottom: the first "
                                             f"source under six noise seeds.")


def evaluate(translator, data=None, n=None, progress=True, evaluator="faces", pairs=200, psi=1.0, picture=None,
             **_):
    if data is not None:
        raise EvaluationError("style evaluation compares with procedural faces; --data is not used")
    n = n or 1000
    size = translator.image_size
    ev = Evaluator.load(evaluator)
    b = bar(n + 5 * pairs, "style", progress)
    samples = []
    for k in range(n):
        samples.append(translator.run_array(seed=EVAL_SEED + k, psi=psi, noise_seed=k))
        b.update()
    real = real_faces(n, size, EVAL_SEED + 10_000_000)
    real2 = real_faces(n, size, EVAL_SEED + 20_000_000)
    crossover = translator.G.coarse_crossover()
    src, sty, mix = [], [], []
    for k in range(pairs):
        s, t = EVAL_SEED + 2 * k, EVAL_SEED + 2 * k + 1
        src.append(translator.run_array(seed=s, psi=psi))
        sty.append(translator.run_array(seed=t, psi=psi))
        mix.append(translator.run_array(seed=s, style_seed=t, crossover=crossover, psi=psi))
        b.update(3)
    noisy = []
    for k in range(pairs):
        noisy.append([translator.run_array(seed=EVAL_SEED + k, psi=psi, noise_seed=j) for j in (1, 2)])
        b.update(2)
    b.close()
    if picture:
        mixing_picture(translator, crossover, psi).save(picture)
    p_n1, p_n2 = ev.predict([a for a, _ in noisy]), ev.predict([b_ for _, b_ in noisy])
    same = np.all([p_n1[h] == p_n2[h] for h in ("hair", *FACE_BINARY)], 0)
    pred_s, feat_s = ev.predict(samples, with_features=True)
    pred_r, feat_r = ev.predict(real, with_features=True)
    ideal = mixing_measures(*(ev.predict(x) for x in ideal_mixes(pairs, size, EVAL_SEED + 30_000_000)))
    return {"n": n, "psi": psi, "fid": frechet_distance(feat_s, feat_r),
            "fid_real_vs_real": frechet_distance(ev.features(real2), feat_r),
            "face_rate": float(np.mean(pred_s["face"] == 1)), "face_rate_real": float(np.mean(pred_r["face"] == 1)),
            "attributes": frequencies(pred_s), "attributes_real": frequencies(pred_r),
            "mixing": {"pairs": pairs, "crossover": crossover,
                       **mixing_measures(ev.predict(src), ev.predict(sty), ev.predict(mix)), "ideal": ideal},
            "noise": {"pairs": pairs, "attributes_unchanged": float(same.mean()),
                      "pixel_change": float(np.mean([mean_l1(a, b_) for a, b_ in noisy]))},
            "evaluator_held_out_accuracy": ev.accuracy}
