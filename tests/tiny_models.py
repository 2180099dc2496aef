"""Tiny random-weight model files (32 px) for GUI tests: fast and deterministic."""
from __future__ import annotations

import torch

from trainer.modelfile import save_model
from trainer.nets import build

DOMAINS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]


DATASET = {"pix2pix": "sketches", "cyclegan": "shapes-unpaired", "stargan": "faces", "stylegan": "faces",
           "srgan": "photos"}


def _save(path, nets: dict, card: dict):
    tensors = {f"{name}.{k}": v for name, (_, _, net) in nets.items() for k, v in net.state_dict().items()}
    card = {"image_size": 32, "channels": 3, "value_range": [-1, 1],
            "nets": {name: {"name": n, "args": a} for name, (n, a, _) in nets.items()},
            "training": {"preset": "test", "steps": 0, "dataset": DATASET[card["method"]]}, **card}
    save_model(path, tensors, card)
    return path


def _net(name, **args):
    torch.manual_seed(0)
    return name, args, build(name, **args)


def pix2pix(path, task="sketch2photo"):
    return _save(path, {"G": _net("unet", input_nc=3, output_nc=3, num_downs=5, ngf=8, norm="batch",
                                  use_dropout=True)},
                 {"method": "pix2pix", "task": task, "direction": "AtoB", "inference": {"mode": "paper"}})


def cyclegan(path):
    args = dict(input_nc=3, output_nc=3, ngf=8, norm="instance", use_dropout=False, n_blocks=2)
    return _save(path, {"G_A": _net("resnet", **args), "G_B": _net("resnet", **args)},
                 {"method": "cyclegan", "task": "photo2photo", "directions": ["AtoB", "BtoA"]})


def stargan(path):
    return _save(path, {"G": _net("stargan_G", conv_dim=8, c_dim=len(DOMAINS), repeat_num=1)},
                 {"method": "stargan", "task": "attributes", "domains": DOMAINS,
                  "exclusive_groups": [DOMAINS[:3]], "classes": []})


def stylegan(path):
    name, args, g = _net("stylegan_G", size=32, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=32,
                         channel_base=256)
    tensors = {f"G.{k}": v for k, v in g.state_dict().items()}
    with torch.no_grad():
        tensors["latent_avg"] = g.mean_latent(256, torch.Generator().manual_seed(0))
    save_model(path, tensors, {"method": "stylegan", "task": "style", "image_size": 32, "channels": 3,
                               "value_range": [-1, 1], "nets": {"G": {"name": name, "args": args}},
                               "training": {"preset": "test", "steps": 0, "dataset": "faces"},
                               "n_latent": g.n_latent, "layer_resolutions": g.layer_resolutions()})
    return path


def srresnet(path):
    return _save(path, {"G": _net("srresnet", scale=4, n_blocks=1, ngf=8)},
                 {"method": "srgan", "task": "superres"})
