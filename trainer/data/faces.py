"""Procedural faces with CelebA-named attributes and known counterfactuals.

A face is an identity (face shape, skin tone, eye, nose and mouth geometry, background,
clothes, small pose and position jitter), drawn from its own seed, plus attributes:
Black_Hair, Blond_Hair, Brown_Hair (exclusive; none of them gives grey hair), Male, Young,
Eyeglasses, Smiling, and optionally an expression (RaFD-style classes). Every random number
is drawn from the identity seed before the attributes are looked at, so rendering the same
identity with other attributes changes only what those attributes draw: that rendering is
the ground truth of an attribute edit.

Stochastic detail (skin pores, freckles on some faces, hair strands) comes from a random stream of
its own, ``detail_seed`` (by default the identity seed): the same identity and attributes can be
rendered with other detail, which changes nothing an attribute or the face's geometry describes.
That is what StyleGAN's noise inputs should learn to control (Karras et al. 2019, section 3.2).
"""
from __future__ import annotations

import colorsys
import dataclasses
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ATTRIBUTES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young", "Eyeglasses", "Smiling")
HAIR = ("Black_Hair", "Blond_Hair", "Brown_Hair")
EXCLUSIVE_GROUPS = [list(HAIR)]
EXPRESSIONS = ("neutral", "happy", "surprised", "angry")
HAIR_RGB = {"Black_Hair": (0.07, 0.06, 0.06), "Blond_Hair": (0.93, 0.8, 0.45), "Brown_Hair": (0.42, 0.24, 0.1),
            None: (0.72, 0.72, 0.74)}
SUPERSAMPLE = 2


def _rgb(h, s, v):
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _scale(rgb, f):
    return tuple(max(0, min(255, int(round(c * f)))) for c in rgb)


def _mix(a, b, t):
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))


@dataclass
class Identity:
    """Everything about a face that attributes do not change."""
    cx: float
    cy: float
    a: float  # face half-width (fraction of the image)
    b: float  # face half-height
    jaw: float  # jaw narrowing (0.75 .. 0.92)
    roll: float  # degrees
    yaw: float  # horizontal shift of the features
    skin: tuple
    background: tuple
    background2: tuple
    clothes: tuple
    eye_dx: float
    eye_y: float
    eye_rx: float
    eye_ry: float
    iris: tuple
    brow_tilt: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lips: tuple
    hair_volume: float
    hair_length: float
    wrinkle_jitter: tuple
    stubble_seed: int

    @classmethod
    def draw(cls, seed: int) -> "Identity":
        r = random.Random(seed)
        return cls(
            cx=0.5 + r.uniform(-0.03, 0.03), cy=0.52 + r.uniform(-0.025, 0.025),
            a=r.uniform(0.19, 0.23), b=r.uniform(0.25, 0.29), jaw=r.uniform(0.74, 0.9),
            roll=r.uniform(-7, 7), yaw=r.uniform(-0.02, 0.02),
            skin=_rgb(r.uniform(0.04, 0.09), r.uniform(0.25, 0.6), r.uniform(0.38, 0.96)),
            background=_rgb(r.random(), r.uniform(0.15, 0.55), r.uniform(0.45, 0.9)),
            background2=_rgb(r.random(), r.uniform(0.15, 0.55), r.uniform(0.3, 0.8)),
            clothes=_rgb(r.random(), r.uniform(0.3, 0.8), r.uniform(0.25, 0.85)),
            eye_dx=r.uniform(0.075, 0.095), eye_y=r.uniform(-0.045, -0.025),
            eye_rx=r.uniform(0.032, 0.042), eye_ry=r.uniform(0.016, 0.024),
            iris=r.choice([(70, 45, 25), (40, 90, 160), (60, 110, 60), (30, 25, 20), (110, 80, 40)]),
            brow_tilt=r.uniform(-0.008, 0.008), nose_len=r.uniform(0.07, 0.1), nose_w=r.uniform(0.025, 0.04),
            mouth_y=r.uniform(0.12, 0.15), mouth_w=r.uniform(0.05, 0.075),
            lips=_rgb(r.uniform(0.97, 1.02), r.uniform(0.35, 0.55), r.uniform(0.45, 0.7)),
            hair_volume=r.uniform(0.04, 0.08), hair_length=r.uniform(0.2, 0.32),
            wrinkle_jitter=tuple(r.uniform(-0.01, 0.01) for _ in range(6)), stubble_seed=r.randrange(2 ** 31))


def default_attributes() -> dict:
    return {k: False for k in ATTRIBUTES}


def draw_attributes(seed: int) -> dict:
    """A plausible mix: hair colour black/brown/blond/grey, half male, mostly young."""
    r = random.Random(seed ^ 0x5EED)
    attrs = default_attributes()
    hair = r.choices([*HAIR, None], weights=[0.3, 0.25, 0.3, 0.15])[0]
    if hair:
        attrs[hair] = True
    attrs["Male"] = r.random() < 0.5
    attrs["Young"] = r.random() < 0.7
    attrs["Eyeglasses"] = r.random() < 0.3
    attrs["Smiling"] = r.random() < 0.5
    return attrs


def normalise(attrs: dict) -> dict:
    """Fill missing attributes with False and check the exclusive hair group."""
    out = default_attributes()
    unknown = set(attrs) - set(ATTRIBUTES)
    if unknown:
        raise ValueError(f"unknown attribute(s) {', '.join(sorted(unknown))}; known: {', '.join(ATTRIBUTES)}")
    out.update({k: bool(v) for k, v in attrs.items()})
    if sum(out[h] for h in HAIR) > 1:
        raise ValueError("at most one of Black_Hair, Blond_Hair, Brown_Hair can be set")
    return out


FRECKLED = 0.35  # the share of identities with freckles


def _detail(layer: Image.Image, skin: tuple, hair: tuple, identity_seed: int, detail_seed: int,
            box: tuple, R: int) -> None:
    """Pores on the skin, freckles over the cheeks and nose (some identities) and hair strands,
    drawn in place on ``layer`` (RGBA, before rotation) and only over pixels of exactly the skin or
    hair colour. Where freckles go and every pore and strand follow ``detail_seed``; whether a face
    has freckles, and how many, is part of the identity (a stream of its own, so the identity's
    other draws are unchanged)."""
    cx, cy, a, b = box
    has_freckles = random.Random(identity_seed * 7919 + 17).random() < FRECKLED
    count = random.Random(identity_seed * 7919 + 29).randint(14, 30)
    rng = np.random.default_rng(detail_seed + 0x51DE)
    px = np.asarray(layer).copy()
    rgb = px[..., :3].astype(np.int16)
    skin_mask = np.all(rgb == np.asarray(skin, np.int16), -1) & (px[..., 3] > 0)
    hair_mask = np.all(rgb == np.asarray(hair, np.int16), -1) & (px[..., 3] > 0)
    out = px[..., :3].astype(np.float32)
    # pores: fine multiplicative grain on the skin
    grain = np.asarray(Image.fromarray((rng.random((R, R)) * 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(R * 0.003)), np.float32) / 255 - 0.5
    out[skin_mask] *= (1 + 0.22 * grain[skin_mask])[:, None]
    marks = Image.new("L", (R, R), 0)
    d = ImageDraw.Draw(marks)
    if has_freckles:  # over the cheeks and the bridge of the nose
        for _ in range(count):
            x = cx + rng.uniform(-0.75, 0.75) * a
            y = cy + rng.uniform(-0.05, 0.3) * b
            r = R * rng.uniform(0.005, 0.009)
            d.ellipse((x - r, y - r, x + r, y + r), fill=int(rng.uniform(120, 200)))
    freckle = np.asarray(marks, np.float32)[..., None] / 255 * skin_mask[..., None]
    out = out * (1 - 0.45 * freckle)
    strands = Image.new("L", (R, R), 0)
    d = ImageDraw.Draw(strands)
    for _ in range(60):  # hair strands: thin curved lines, darker or lighter than the hair
        x0, y0 = cx + rng.uniform(-1.2, 1.2) * a, cy + rng.uniform(-1.3, 0.9) * b
        dx, dy = rng.normal(0, 0.12) * a, rng.uniform(0.15, 0.4) * b
        d.line([(x0, y0), (x0 + dx * 0.5 + rng.normal(0, 0.03) * a, y0 + dy * 0.5), (x0 + dx, y0 + dy)],
               fill=int(rng.choice([70, 255])), width=1)
    s_arr = np.asarray(strands, np.float32) / 255
    lighter = s_arr > 0.6
    touched = (s_arr > 0) & hair_mask
    light, dark = touched & lighter, touched & ~lighter
    out[light] = out[light] * 1.1 + 28  # visible on black hair too
    out[dark] *= 0.75
    px[..., :3] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    layer.paste(Image.fromarray(px, "RGBA"))


COLOURS = ("skin", "background", "background2", "clothes", "iris", "lips")  # the Identity fields that are colours


def render(identity_seed: int, attributes: dict | None = None, size: int = 64, expression: str | None = None,
           detail_seed: int | None = None, colours_seed: int | None = None):
    """Render identity ``identity_seed`` with ``attributes`` (dict of name -> bool) as an RGB image
    of ``size`` x ``size``; ``detail_seed`` (default: the identity seed) draws the stochastic
    detail. ``colours_seed``: the skin, background, clothes, iris and lip colours of that identity
    instead (the hair colour is an attribute): a style mix drawn by hand, the face's geometry from
    one seed and its colours from another, which is what StyleGAN's crossover at the coarse/middle
    boundary aims at (Karras et al. 2019, figure 3). Raises ValueError for unknown attributes, two
    hair colours or an unknown expression."""
    ident = Identity.draw(identity_seed)
    if colours_seed is not None:
        other = Identity.draw(colours_seed)
        ident = dataclasses.replace(ident, **{c: getattr(other, c) for c in COLOURS})
    attrs = normalise(attributes if attributes is not None else draw_attributes(identity_seed))
    if expression is None:
        expression = "happy" if attrs["Smiling"] else "neutral"
    if expression not in EXPRESSIONS:
        raise ValueError(f"unknown expression {expression!r}; known: {', '.join(EXPRESSIONS)}")
    R = size * SUPERSAMPLE
    px = lambda v: v * R  # noqa: E731
    hair_name = next((h for h in HAIR if attrs[h]), None)
    hair = tuple(int(c * 255) for c in HAIR_RGB[hair_name])
    male, young = attrs["Male"], attrs["Young"]

    # background: a soft vertical gradient
    y = np.linspace(0, 1, R, dtype=np.float32)[:, None, None]
    bg = np.asarray(ident.background, np.float32) * (1 - y) + np.asarray(ident.background2, np.float32) * y
    canvas = Image.fromarray(np.broadcast_to(bg, (R, R, 3)).astype(np.uint8), "RGB")

    layer = Image.new("RGBA", (R, R), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    cx, cy, a, b = px(ident.cx), px(ident.cy), px(ident.a), px(ident.b)
    skin = ident.skin if young else _mix(ident.skin, (200, 190, 185), 0.25)

    # shoulders and neck
    d.ellipse((cx - px(0.42), cy + b * 0.95, cx + px(0.42), cy + b * 0.95 + px(0.5)), fill=ident.clothes)
    d.rectangle((cx - a * 0.42, cy + b * 0.5, cx + a * 0.42, cy + b * 1.1), fill=_scale(skin, 0.85))

    # long hair falls behind the face
    if not male:
        top = cy - b - px(ident.hair_volume)
        d.rounded_rectangle((cx - a - px(0.06), top, cx + a + px(0.06), cy + b * 0.4 + px(ident.hair_length)),
                            radius=int(a * 0.9), fill=hair)
    # ears
    for s in (-1, 1):
        d.ellipse((cx + s * a - px(0.025), cy - px(0.03), cx + s * a + px(0.025), cy + px(0.05)), fill=_scale(skin, 0.92))
    # face: an upper half-ellipse and a narrower jaw
    jaw = ident.jaw * (1.1 if male else 0.95)
    d.chord((cx - a, cy - b, cx + a, cy + b * 0.6), 180, 360, fill=skin)
    d.polygon([(cx - a, cy - b * 0.2), (cx + a, cy - b * 0.2), (cx + a * jaw, cy + b * 0.55),
               (cx + a * 0.35, cy + b), (cx - a * 0.35, cy + b), (cx - a * jaw, cy + b * 0.55)], fill=skin)
    d.ellipse((cx - a * 0.45, cy + b * 0.75, cx + a * 0.45, cy + b * 1.04), fill=skin)
    # stubble / beard shadow for men
    if male:
        rng = np.random.default_rng(ident.stubble_seed)
        beard = Image.new("L", (R, R), 0)
        bd = ImageDraw.Draw(beard)
        bd.polygon([(cx - a * jaw, cy + b * 0.35), (cx + a * jaw, cy + b * 0.35), (cx + a * jaw, cy + b * 0.55),
                    (cx + a * 0.35, cy + b), (cx - a * 0.35, cy + b), (cx - a * jaw, cy + b * 0.55)], fill=150)
        noise = Image.fromarray((rng.random((R, R)) * 90).astype(np.uint8))
        beard = Image.fromarray(np.minimum(np.asarray(beard), 60 + np.asarray(noise)).astype(np.uint8))
        layer.paste(Image.new("RGBA", (R, R), _scale(hair if hair_name else (90, 90, 90), 0.55) + (255,)),
                    mask=beard.filter(ImageFilter.GaussianBlur(R * 0.004)))
        d = ImageDraw.Draw(layer)
    # hair on top of the head (both), short sides for men, a fringe for women
    hv = px(ident.hair_volume)
    d.chord((cx - a * 1.05, cy - b - hv, cx + a * 1.05, cy - b * 0.05 + hv * 0.3), 180, 360, fill=hair)
    if male:
        for s in (-1, 1):
            xa, xb = sorted((cx + s * a * 1.02, cx + s * a * 0.86))
            d.rectangle((xa, cy - b * 0.55, xb, cy - b * 0.05), fill=hair)
    else:
        d.pieslice((cx - a * 1.1, cy - b * 1.05 - hv, cx + a * 0.3, cy - b * 0.35), 0, 180, fill=hair)

    # features, shifted by yaw
    fx = cx + px(ident.yaw)
    ex, ey, erx, ery = px(ident.eye_dx), cy + px(ident.eye_y), px(ident.eye_rx), px(ident.eye_ry)
    if expression == "surprised":
        ery *= 1.4
    squint = 0.7 if expression == "happy" else 1.0
    if not young:
        erx *= 0.92
    brow_w = px(0.012 if male else 0.006)
    brow_lift = {"surprised": 0.025, "angry": -0.01}.get(expression, 0.0)
    for s in (-1, 1):
        x0 = fx + s * ex
        d.ellipse((x0 - erx, ey - ery * squint, x0 + erx, ey + ery * squint), fill=(245, 245, 240))
        ir = ery * 0.95 * squint
        d.ellipse((x0 - ir, ey - ir, x0 + ir, ey + ir), fill=ident.iris)
        d.ellipse((x0 - ir * 0.45, ey - ir * 0.45, x0 + ir * 0.45, ey + ir * 0.45), fill=(15, 15, 15))
        by = ey - ery - px(0.022 + brow_lift)
        inner_drop = px(0.012) if expression == "angry" else 0.0
        outer, inner = (x0 + s * erx * 1.2, by + px(ident.brow_tilt)), (x0 - s * erx * 1.2, by + inner_drop)
        d.line([outer, (x0, by - px(0.006)), inner], fill=_scale(hair if hair_name else (80, 80, 80), 0.8),
               width=max(1, int(brow_w)), joint="curve")
        if not young:  # eye bags and crow's feet
            d.arc((x0 - erx, ey, x0 + erx, ey + ery * 2.6), 20, 160, fill=_scale(skin, 0.72), width=max(1, int(px(0.005))))
            for k in (-1, 0, 1):
                d.line([(x0 + s * erx * 1.15, ey + k * ery * 0.6), (x0 + s * (erx * 1.15 + px(0.02)), ey + k * ery * 0.9)],
                       fill=_scale(skin, 0.7), width=max(1, int(px(0.004))))
    # nose
    nl, nw = px(ident.nose_len), px(ident.nose_w)
    d.line([(fx + nw * 0.2, ey + ery), (fx + nw * 0.5, ey + nl), (fx - nw * 0.4, ey + nl + px(0.006))],
           fill=_scale(skin, 0.72), width=max(1, int(px(0.007))))
    # mouth
    my, mw = cy + px(ident.mouth_y), px(ident.mouth_w)
    lips = ident.lips if not male else _mix(ident.lips, skin, 0.5)
    lip_w = max(2, int(px(0.012)))
    if expression == "happy":
        d.chord((fx - mw, my - px(0.04), fx + mw, my + px(0.035)), 0, 180, fill=lips)
        d.chord((fx - mw * 0.82, my - px(0.028), fx + mw * 0.82, my + px(0.02)), 0, 180, fill=(250, 250, 245))
        for s in (-1, 1):  # raised cheeks
            d.arc((fx + s * mw - px(0.03), my - px(0.06), fx + s * mw + px(0.03), my + px(0.01)),
                  30 if s > 0 else 90, 90 if s > 0 else 150, fill=_scale(skin, 0.8), width=max(1, int(px(0.004))))
    elif expression == "surprised":
        d.ellipse((fx - mw * 0.45, my - px(0.03), fx + mw * 0.45, my + px(0.035)), fill=lips)
        d.ellipse((fx - mw * 0.3, my - px(0.018), fx + mw * 0.3, my + px(0.024)), fill=(60, 20, 20))
    elif expression == "angry":
        d.arc((fx - mw * 0.9, my, fx + mw * 0.9, my + px(0.05)), 200, 340, fill=lips, width=lip_w)
    else:
        d.line([(fx - mw, my), (fx, my + px(0.004)), (fx + mw, my)], fill=lips, width=lip_w, joint="curve")
    # wrinkles of age
    if not young:
        w = ident.wrinkle_jitter
        line_w = max(1, int(px(0.006)))
        for k in range(3):
            yy = cy - b * 0.55 + px(0.025) * k + px(w[k])
            d.arc((fx - a * 0.55, yy, fx + a * 0.55, yy + px(0.03)), 200, 340, fill=_scale(skin, 0.7), width=line_w)
        for s in (-1, 1):
            d.line([(fx + s * (nw * 0.8 + px(0.015)), ey + nl * 0.8),
                    (fx + s * (mw + px(0.012 + w[3 + s])), my + px(0.02))], fill=_scale(skin, 0.72), width=line_w)
    # glasses
    if attrs["Eyeglasses"]:
        gw = max(2, int(px(0.011)))
        frame = (25, 25, 30)
        gr = erx * 1.5
        for s in (-1, 1):
            x0 = fx + s * ex
            d.rounded_rectangle((x0 - gr, ey - gr * 0.8, x0 + gr, ey + gr * 0.8), radius=int(gr * 0.4), outline=frame,
                                width=gw)
            d.line([(x0 + s * gr, ey - gr * 0.3), (cx + s * a, ey - gr * 0.2)], fill=frame, width=gw)
        d.line([(fx - ex + gr, ey - gr * 0.2), (fx + ex - gr, ey - gr * 0.2)], fill=frame, width=gw)

    _detail(layer, skin, hair, identity_seed, identity_seed if detail_seed is None else detail_seed, (cx, cy, a, b), R)
    layer = layer.rotate(ident.roll, resample=Image.BICUBIC, center=(cx, cy))
    canvas.paste(layer, mask=layer.getchannel("A"))
    return canvas.resize((size, size), Image.LANCZOS)
