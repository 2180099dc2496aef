"""StyleGAN models as rosinality/stylegan2-pytorch checkpoints: a ``.pt`` dict
``{"g_ema": state_dict, "latent_avg": w}`` (``latent_avg`` of shape (style_dim,), as its
``convert_weight.py`` writes it). The state dict holds the ``noises.noise_N`` buffers, so
``randomize_noise=False`` in the reference draws with the model's own noise maps."""
from __future__ import annotations

from pathlib import Path

import torch

from trainer.exporters import ExportRefused, ReferenceExport, net_state
from trainer.nets.stylegan import CHANNELS, channels
from trainer.nets import build
from trainer.translator import build_net


def reference_channels(size: int, channel_multiplier: int) -> dict[int, int]:
    """rosinality's Generator's channels per resolution up to ``size``."""
    return {r: c * (channel_multiplier if r >= 64 else 1) for r, c in CHANNELS.items() if r <= size}


def refusal(args: dict) -> str | None:
    size, cm = int(args.get("size", 256)), int(args.get("channel_multiplier", 2))
    ours = channels(cm, args.get("channel_max", 512), args.get("channel_base", 0))
    ours = {r: c for r, c in ours.items() if r <= size}
    ref = reference_channels(size, cm)
    if ours != ref:
        diff = ", ".join(f"{r} px: {ours[r]} (reference {ref[r]})" for r in sorted(ref) if ours[r] != ref[r])
        how = f"channel_base {args['channel_base']}" if args.get("channel_base") else \
            f"channel_max {args.get('channel_max', 512)}"
        return (f"a StyleGAN generator with a channel table of its own ({how}: {diff}); rosinality's "
                f"Generator has 512 channels up to 32 px, then 256, 128, ... times channel_multiplier, "
                "so its keys' shapes differ")
    return None


def plan(tensors: dict, card: dict, out: Path) -> ReferenceExport:
    spec = card["nets"]["G"]
    a = spec["args"]
    if spec["name"] != "stylegan_G":
        raise ExportRefused(f"refused: generator {spec['name']!r} has no equivalent in rosinality/stylegan2-pytorch")
    why = refusal(a)
    if why:
        raise ExportRefused(f"refused: {why}. Export it to ONNX instead (--onnx FILE), or keep the model file")
    state = net_state(tensors, card, "G")
    with torch.device("meta"):  # the ToRGBs output_skips_from leaves out: rosinality's Generator adds them
        left_out = build("stylegan_G", **a).left_out_to_rgbs()
    state.update({k: torch.zeros_like(state[k]) for n in left_out for k in (f"{n}.conv.weight", f"{n}.bias")})
    style_dim = int(a.get("style_dim", 512))
    if "latent_avg" in tensors:
        latent_avg = tensors["latent_avg"].detach().reshape(-1).contiguous()
    elif next(iter(state.values())).is_meta:
        latent_avg = torch.empty(style_dim, device="meta")
    else:  # the mean w the studio uses for a model without one: 4096 mapped latents, seed 0
        g = build_net(card, tensors, "G", "cpu").eval()
        with torch.no_grad():
            latent_avg = g.mean_latent(4096, torch.Generator().manual_seed(0)).reshape(-1)
    ctor = [f"size={a.get('size', 256)}", f"style_dim={style_dim}", f"n_mlp={a.get('n_mlp', 8)}",
            f"channel_multiplier={a.get('channel_multiplier', 2)}"]
    if float(a.get("lr_mlp", 0.01)) != 0.01:
        ctor.append(f"lr_mlp={a['lr_mlp']}")
    if list(a.get("blur_kernel", [1, 3, 3, 1])) != [1, 3, 3, 1]:
        ctor.append(f"blur_kernel={list(a['blur_kernel'])}")
    options = f"Generator({', '.join(ctor)}); load_state_dict(ckpt['g_ema'])"
    if style_dim == 512 and int(a.get("n_mlp", 8)) == 8 and len(ctor) == 4:
        options = (f"python generate.py --size {a.get('size', 256)} --channel_multiplier "
                   f"{a.get('channel_multiplier', 2)} --ckpt {out.name}   (or {options})")
    return ReferenceExport({out: {"g_ema": state, "latent_avg": latent_avg}}, {}, options)
